-- A read-only view of the outbox for consumers that reconcile against it (the webhooks service
-- picks up events whose Celery task was lost). The outbox is indexed on seq only: readers filter
-- on created_at over a recent window and page by seq.
CREATE VIEW refunds.refund_events AS SELECT event_id, event_type, merchant_id, payload, created_at, published_at FROM refunds.outbox;
GRANT SELECT ON refunds.refund_events TO svc_payments, svc_webhooks;
