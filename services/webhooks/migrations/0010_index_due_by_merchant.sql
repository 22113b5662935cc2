-- The webhooks sweeper finds the due deliveries of merchants with a test clock (auth.merchant_clocks)
-- by merchant, each against its own offset; merchants on real time keep deliveries_due_idx.
CREATE INDEX deliveries_merchant_due_idx ON webhooks.deliveries (merchant_id, next_retry_at) WHERE status = 'pending';
