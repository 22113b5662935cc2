-- While an endpoint's circuit is open, the deliveries it holds back wait a long while
-- (WebhookConfig.hold_seconds) instead of coming due again at every probe: a dead endpoint with
-- many pending deliveries made the sweeper claim and put them off again, every one of them, once
-- a probe interval. One of them stays due at the next probe; the rest are marked held, and are
-- released at once when the circuit closes, the endpoint is disabled, deleted, enabled or given a
-- new URL. Found through this index (empty while no circuit is open).
ALTER TABLE webhooks.deliveries ADD COLUMN IF NOT EXISTS held BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS deliveries_held_idx ON webhooks.deliveries (endpoint_id) WHERE held;
