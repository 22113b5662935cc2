-- The transactional outbox, the relay's place in it and the Idempotency-Key store of one service
-- schema: the one definition every service uses (gateway_common.events, gateway_common.idempotency
-- read and write these tables by these names). {schema} is the service's schema, quoted.
--
-- Forward only and idempotent: in a new schema it creates the tables; in a schema whose earlier
-- migrations created them (services that predate this template) it brings them to the same end
-- state without touching a row. Every statement says what it converges.

CREATE TABLE IF NOT EXISTS {schema}.outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    merchant_id  UUID NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set only by the relay of before the (xid, seq) place; kept for the published views.
    published_at TIMESTAMPTZ,
    -- The writing transaction's id: the relay reads in (xid, seq) order, behind pg_snapshot_xmin.
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id()
);
ALTER TABLE {schema}.outbox ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id();
-- Event ids are random and every consumer is idempotent by event id: a UNIQUE index on them
-- checked nothing that can happen, at the cost of a random b-tree insert per event.
ALTER TABLE {schema}.outbox DROP CONSTRAINT IF EXISTS outbox_event_id_key;
CREATE INDEX IF NOT EXISTS outbox_relay_idx ON {schema}.outbox (xid, seq);
DROP INDEX IF EXISTS {schema}.outbox_unpublished_idx;

-- Every outbox row up to (xid, seq) is published; one row, locked by the relay that publishes.
CREATE TABLE IF NOT EXISTS {schema}.outbox_relay (
    id         BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    xid        xid8 NOT NULL,
    seq        BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- A new schema starts before every row. An existing place is never moved (that would skip or
-- repeat events); a missing one starts before every row too (consumers absorb a repeat).
INSERT INTO {schema}.outbox_relay (xid, seq) VALUES ('0'::xid8, 0) ON CONFLICT (id) DO NOTHING;

-- Idempotency-Key answers, kept 24 hours. A NULL fingerprint (rows from before keyed
-- fingerprints) replays without the mismatch check.
CREATE TABLE IF NOT EXISTS {schema}.idempotency_keys (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT,
    response_status INT,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
ALTER TABLE {schema}.idempotency_keys ALTER COLUMN fingerprint DROP NOT NULL;
-- The pruner deletes expired keys a bounded batch at a time; without this index each batch
-- was a scan of the whole table until enough expired rows turned up.
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_idx ON {schema}.idempotency_keys (expires_at);
