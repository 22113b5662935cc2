-- Merchants, their API keys (secret stored as a SHA-256 hash) and dashboard sessions.
CREATE TABLE auth.merchants (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email         TEXT NOT NULL UNIQUE CHECK (position('@' in email) > 1),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE auth.api_keys (
    api_key     TEXT PRIMARY KEY,
    merchant_id UUID NOT NULL REFERENCES auth.merchants (id),
    secret_hash TEXT NOT NULL,
    secret_hint TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_merchant_idx ON auth.api_keys (merchant_id);

CREATE TABLE auth.sessions (
    token_hash  TEXT PRIMARY KEY,
    merchant_id UUID NOT NULL REFERENCES auth.merchants (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX sessions_merchant_idx ON auth.sessions (merchant_id);

-- Published on purpose for the payments service (public checkout: key -> merchant, merchant name).
CREATE VIEW auth.public_merchants AS
    SELECT m.id AS merchant_id, m.name, k.api_key
    FROM auth.merchants m JOIN auth.api_keys k ON k.merchant_id = m.id AND k.revoked_at IS NULL;
GRANT SELECT ON auth.public_merchants TO svc_payments;
