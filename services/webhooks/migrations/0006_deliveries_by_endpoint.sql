-- The deliveries log of one endpoint, newest first (and whatever removes or prunes one endpoint's
-- deliveries): without this index each of those read every delivery of the merchant, or of the
-- whole table (the endpoint_id foreign key had no index). The events work (several endpoints)
-- follows as 0007-0009.
CREATE INDEX IF NOT EXISTS deliveries_endpoint_seq_idx ON webhooks.deliveries (endpoint_id, seq DESC);
