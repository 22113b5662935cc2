-- A read-only view of the outbox for consumers that reconcile against it (the webhooks service
-- picks up events whose Celery task was lost). The outbox is indexed on seq only: readers filter
-- on created_at over a recent window and page by seq.
CREATE VIEW payments.payment_events AS SELECT event_id, event_type, merchant_id, payload, created_at, published_at FROM payments.outbox;
GRANT SELECT ON payments.payment_events TO svc_webhooks;
