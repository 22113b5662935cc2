-- Expose the outbox's seq in the published view, so a reader can page through new events by
-- primary key instead of scanning the whole outbox for a time window on every pass.
CREATE OR REPLACE VIEW payments.payment_events AS
    SELECT event_id, event_type, merchant_id, payload, created_at, published_at, seq FROM payments.outbox;
