-- Deliveries are kept 30 days (WEBHOOK_DELIVERY_RETENTION_DAYS). The pruner deletes the oldest
-- finished ones a bounded batch at a time, found by this index: without it each batch read the
-- whole table from its oldest seq until enough old rows turned up (and, once none were left, all
-- of it). Pending deliveries are not in it: they are never pruned while they still have attempts.
CREATE INDEX IF NOT EXISTS deliveries_finished_created_at_idx ON webhooks.deliveries (created_at)
    WHERE status <> 'pending';
-- A disabled endpoint keeps only its newest disabled deliveries (WEBHOOK_DISABLED_DELIVERIES_KEPT):
-- the pruner walks them newest first per endpoint, past the ones kept, in this index alone.
CREATE INDEX IF NOT EXISTS deliveries_endpoint_disabled_idx ON webhooks.deliveries (endpoint_id, seq DESC)
    WHERE status = 'disabled';
