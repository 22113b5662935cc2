-- A failing endpoint is not hammered: after 5 consecutive failed attempts its circuit opens and
-- only one probe an interval reaches it; after 10 and a long enough run of failures (3 days, or
-- 60 s with the test intervals) it is disabled with the reason "failing".
ALTER TABLE webhooks.endpoints
    ADD COLUMN consecutive_failures INT NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    -- When the current run of failures began (NULL while the endpoint answers).
    ADD COLUMN failing_since TIMESTAMPTZ,
    -- No attempt before this; then one probe (which moves it on) while the circuit is open.
    ADD COLUMN circuit_open_until TIMESTAMPTZ;
