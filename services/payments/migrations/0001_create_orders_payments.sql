-- Orders, payments, the outbox and idempotency keys of the payments service.
CREATE TABLE payments.orders (
    id          TEXT PRIMARY KEY CHECK (id ~ '^order_[A-Za-z0-9]{16}$'),
    merchant_id UUID NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount >= 100),
    currency    TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    receipt     TEXT,
    notes       JSONB NOT NULL DEFAULT '{}'::jsonb,
    status      TEXT NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'attempted', 'paid')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_merchant_created_idx ON payments.orders (merchant_id, created_at DESC, id DESC);

CREATE TABLE payments.payments (
    id                TEXT PRIMARY KEY CHECK (id ~ '^pay_[A-Za-z0-9]{16}$'),
    merchant_id       UUID NOT NULL,
    -- The order's id, or (short form) the merchant's own reference when no such order exists.
    order_id          TEXT,
    order_ref         TEXT REFERENCES payments.orders (id),
    amount            BIGINT NOT NULL CHECK (amount >= 100),
    currency          TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    method            TEXT NOT NULL CHECK (method IN ('upi', 'card')),
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'success', 'failed')),
    vpa               TEXT,
    card_network      TEXT CHECK (card_network IN ('visa', 'mastercard', 'amex', 'rupay', 'unknown')),
    card_last4        TEXT CHECK (card_last4 ~ '^[0-9]{4}$'),
    card_expiry_month SMALLINT CHECK (card_expiry_month BETWEEN 1 AND 12),
    card_expiry_year  SMALLINT,
    card_holder_name  TEXT,
    -- What the simulated bank will answer; decided at creation (test instruments, seeded rates).
    bank_outcome      TEXT CHECK (bank_outcome IN ('success', 'failed')),
    bank_error_code   TEXT,
    error_code        TEXT,
    error_description TEXT,
    captured          BOOLEAN NOT NULL DEFAULT false,
    captured_at       TIMESTAMPTZ,
    amount_refunded   BIGINT NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    -- Durable schedule: when the bank answers, and when a sweeper should next look at the row.
    bank_due_at       TIMESTAMPTZ,
    next_run_at       TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (captured = false OR status = 'success'),
    CHECK ((method = 'upi' AND vpa IS NOT NULL) OR (method = 'card' AND card_last4 IS NOT NULL))
);
-- INCLUDE lets the dashboard's stats run as index-only scans over 100,000s of payments.
CREATE INDEX payments_merchant_created_idx ON payments.payments (merchant_id, created_at DESC, id DESC)
    INCLUDE (status, method, amount);
CREATE INDEX payments_merchant_status_idx ON payments.payments (merchant_id, status, created_at DESC, id DESC)
    INCLUDE (amount);
CREATE INDEX payments_merchant_order_idx ON payments.payments (merchant_id, order_id);
CREATE INDEX payments_due_idx ON payments.payments (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE payments.outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    merchant_id  UUID NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished_idx ON payments.outbox (seq) WHERE published_at IS NULL;

CREATE TABLE payments.idempotency_keys (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    response_status INT,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Refund events applied to amount_refunded, so a redelivered event is applied once.
CREATE TABLE payments.applied_refunds (
    refund_id  TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments.payments (id),
    amount     BIGINT NOT NULL CHECK (amount > 0),
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Published on purpose for the refunds service.
CREATE VIEW payments.payments_for_refunds AS
    SELECT id, merchant_id, amount, currency, status, created_at FROM payments.payments;
GRANT SELECT ON payments.payments_for_refunds TO svc_refunds;
