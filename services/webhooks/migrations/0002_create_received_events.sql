-- Every event id the service has handled (with or without a webhook URL), written in the same
-- transaction as its deliveries; the reconciler picks up published events that are not here.
CREATE TABLE webhooks.received_events (
    event_id    TEXT PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX received_events_received_at_idx ON webhooks.received_events (received_at);
