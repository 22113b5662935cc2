-- Several endpoints per merchant. The endpoint that existed (one per merchant) becomes the
-- merchant's default one, which /webhooks/config reads and writes; the others are made through
-- /webhook-endpoints with Standard Webhooks secrets, their own event filters and a status.
ALTER TABLE webhooks.endpoints DROP CONSTRAINT endpoints_merchant_id_key;
ALTER TABLE webhooks.endpoints
    ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN enabled_events TEXT[] NOT NULL DEFAULT '{*}' CHECK (cardinality(enabled_events) BETWEEN 1 AND 32),
    ADD COLUMN description TEXT CHECK (length(description) <= 500),
    ADD COLUMN status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    ADD COLUMN disabled_reason TEXT,
    -- During a rotation the previous secret signs too, until it expires.
    ADD COLUMN previous_secret TEXT CHECK (previous_secret ~ '^whsec_'),
    ADD COLUMN previous_secret_expires_at TIMESTAMPTZ,
    ADD COLUMN deleted_at TIMESTAMPTZ;
-- Every endpoint so far was its merchant's only one (many have no URL): made default before the
-- constraint below judges them.
UPDATE webhooks.endpoints SET is_default = true;
ALTER TABLE webhooks.endpoints ADD CONSTRAINT endpoints_standard_url CHECK (is_default OR url IS NOT NULL);
CREATE UNIQUE INDEX endpoints_one_default_idx ON webhooks.endpoints (merchant_id) WHERE is_default;
CREATE INDEX endpoints_merchant_idx ON webhooks.endpoints (merchant_id) WHERE deleted_at IS NULL;

-- A delivery for an endpoint that is disabled (or deleted) is recorded without an attempt.
ALTER TABLE webhooks.deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE webhooks.deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'success', 'failed', 'disabled'));
