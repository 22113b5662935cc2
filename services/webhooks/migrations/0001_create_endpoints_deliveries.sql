-- Webhook endpoints (one per merchant) and deliveries: one row per (event, endpoint),
-- carrying the exact body bytes to send and its durable retry schedule.
CREATE TABLE webhooks.endpoints (
    id          TEXT PRIMARY KEY CHECK (id ~ '^we_[A-Za-z0-9]{16}$'),
    merchant_id UUID NOT NULL UNIQUE,
    url         TEXT CHECK (url IS NULL OR (length(url) <= 2048 AND url ~* '^https?://')),
    -- Kept readable: the merchant reads it back and every delivery is signed with it.
    secret      TEXT NOT NULL CHECK (secret ~ '^whsec_'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhooks.deliveries (
    seq             BIGSERIAL NOT NULL UNIQUE,
    id              TEXT PRIMARY KEY CHECK (id ~ '^whlog_[A-Za-z0-9]{16}$'),
    merchant_id     UUID NOT NULL,
    endpoint_id     TEXT NOT NULL REFERENCES webhooks.endpoints (id),
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    -- The payment the event is about (a refund's payment for refund events), for the dashboard.
    payment_id      TEXT,
    -- Frozen at creation: every attempt sends these exact bytes.
    body            BYTEA NOT NULL,
    url             TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'success', 'failed')),
    attempts        INT NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 5),
    -- Durable schedule: due when next_retry_at <= now() and no live lease.
    next_retry_at   TIMESTAMPTZ,
    lease_until     TIMESTAMPTZ,
    lease_token     TEXT,
    last_attempt_at TIMESTAMPTZ,
    response_code   INT,
    response_body   TEXT CHECK (length(response_body) <= 1024),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id),
    CHECK ((status = 'pending') = (next_retry_at IS NOT NULL))
);
CREATE INDEX deliveries_merchant_seq_idx ON webhooks.deliveries (merchant_id, seq DESC);
CREATE INDEX deliveries_merchant_payment_idx ON webhooks.deliveries (merchant_id, payment_id, seq DESC)
    WHERE payment_id IS NOT NULL;
CREATE INDEX deliveries_due_idx ON webhooks.deliveries (next_retry_at) WHERE status = 'pending';
