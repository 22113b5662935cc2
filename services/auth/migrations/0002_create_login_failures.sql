-- Failed dashboard logins per account, whatever address they come from: keyed by the merchant id
-- when the email names one, else by a SHA-256 of the lower-cased email (unknown emails are
-- throttled the same way, so the answer does not tell which accounts exist). One fixed window
-- per key: `failures` counts attempts since `window_start` (a success takes back only its own).
CREATE TABLE auth.login_failures (
    account_key  TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    failures     INTEGER NOT NULL CHECK (failures >= 0)
);
CREATE INDEX login_failures_window_idx ON auth.login_failures (window_start);
