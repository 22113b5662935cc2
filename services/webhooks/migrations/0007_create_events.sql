-- Every event of every merchant, whether or not it has an endpoint: the Events API, the live
-- stream and replays read it. Rows come only from events the producers wrote to their outboxes
-- (written here in the same transaction that records them as received) or that this service
-- emits itself (in the transaction of the change they announce), and are kept 30 days.
CREATE TABLE webhooks.events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE CHECK (length(id) <= 64),
    merchant_id UUID NOT NULL,
    type        TEXT NOT NULL CHECK (length(type) <= 64),
    -- The part of the type before its first dot, so `payment.*` reads one index range.
    category    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    -- The exact webhook body ({"id","event","timestamp","data"}) every delivery of it sends.
    body        BYTEA NOT NULL,
    -- The writing transaction: the stream reads in (xid, seq) order behind pg_snapshot_xmin, so a
    -- slow commit is never skipped (the relay's rule).
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX events_merchant_seq_idx ON webhooks.events (merchant_id, seq);
CREATE INDEX events_merchant_type_seq_idx ON webhooks.events (merchant_id, type, seq);
CREATE INDEX events_merchant_category_seq_idx ON webhooks.events (merchant_id, category, seq);
CREATE INDEX events_merchant_xid_idx ON webhooks.events (merchant_id, xid, seq);
-- The pruner deletes the oldest expired events a bounded batch at a time, found by this index
-- (an event reconciled late is stored after younger ones, so seq order is not age order).
CREATE INDEX events_created_at_idx ON webhooks.events (created_at);
