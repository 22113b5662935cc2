-- Refunds, the per-payment refund balance that keeps the invariant, the outbox and idempotency keys.

-- One row per refunded payment, locked FOR UPDATE while a refund is created: the
-- CHECK makes "refunds never exceed the payment" a property of the database.
CREATE TABLE refunds.payment_balances (
    payment_id     TEXT PRIMARY KEY CHECK (payment_id ~ '^pay_[A-Za-z0-9]{16}$'),
    merchant_id    UUID NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount > 0),
    refunded_total BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (refunded_total >= 0 AND refunded_total <= amount)
);

CREATE TABLE refunds.refunds (
    id           TEXT PRIMARY KEY CHECK (id ~ '^rfnd_[A-Za-z0-9]{16}$'),
    payment_id   TEXT NOT NULL REFERENCES refunds.payment_balances (payment_id),
    merchant_id  UUID NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount >= 1),
    reason       TEXT CHECK (length(reason) <= 255),
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ,
    -- Durable schedule: when processing is due, and when a sweeper should next look
    -- at the row (bumped as a lease when claimed, NULL once processed).
    due_at       TIMESTAMPTZ NOT NULL,
    next_run_at  TIMESTAMPTZ,
    CHECK ((status = 'processed') = (processed_at IS NOT NULL)),
    CHECK (status = 'pending' OR next_run_at IS NULL)
);
CREATE INDEX refunds_merchant_created_idx ON refunds.refunds (merchant_id, created_at DESC, id DESC);
CREATE INDEX refunds_payment_created_idx ON refunds.refunds (payment_id, created_at DESC, id DESC);
CREATE INDEX refunds_due_idx ON refunds.refunds (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE refunds.outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    merchant_id  UUID NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished_idx ON refunds.outbox (seq) WHERE published_at IS NULL;

CREATE TABLE refunds.idempotency_keys (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    response_status INT,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
