-- The relay no longer marks every row it publishes (an UPDATE of each event, a new row version, a
-- row lock and two index entries). It reads the outbox in (xid, seq) order and keeps its place in
-- payments.outbox_relay: every row up to that place is published. A row's xid is its transaction's
-- id; once every transaction older than the oldest one still running has ended
-- (pg_snapshot_xmin), no row can appear before that point any more, so the relay never skips a
-- late commit. Rows already in the outbox share this migration's xid; the place starts before
-- the first one not yet published (the ones after it that were published go out again, which
-- every consumer absorbs).
ALTER TABLE payments.outbox ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX outbox_relay_idx ON payments.outbox (xid, seq);
DROP INDEX payments.outbox_unpublished_idx;

CREATE TABLE payments.outbox_relay (
    id         BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    xid        xid8 NOT NULL,
    seq        BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO payments.outbox_relay (xid, seq) VALUES (
    pg_current_xact_id(),
    coalesce((SELECT min(seq) - 1 FROM payments.outbox WHERE published_at IS NULL), (SELECT max(seq) FROM payments.outbox), 0)
);

-- published_at is set only on rows the old relay published; the rest are published once the
-- relay's place is past them (shown as their created_at: the relay sends within a fraction of a
-- second, and a consumer that acts on a row it was also sent is idempotent).
CREATE OR REPLACE VIEW payments.payment_events AS
    SELECT o.event_id, o.event_type, o.merchant_id, o.payload, o.created_at,
           CASE WHEN o.published_at IS NOT NULL THEN o.published_at
                WHEN (o.xid, o.seq) <= (r.xid, r.seq) THEN o.created_at END AS published_at,
           o.seq
    FROM payments.outbox o CROSS JOIN payments.outbox_relay r;
