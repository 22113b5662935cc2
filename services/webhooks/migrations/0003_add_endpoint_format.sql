-- The body format of an endpoint's deliveries: the gateway's own envelope, or Razorpay's
-- ({"entity": "event", "account_id", "event", "contains", "payload", "created_at"}, Razorpay's event names).
ALTER TABLE webhooks.endpoints
    ADD COLUMN format TEXT NOT NULL DEFAULT 'gateway' CHECK (format IN ('gateway', 'razorpay'));
