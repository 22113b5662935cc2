-- /test/jobs/status (no auth) counts payments by status: a whole-table count grew with history
-- (586 ms at 1 M payments; four polling clients kept PostgreSQL busy). The counts are kept instead,
-- by statement-level triggers in the same transaction as every insert and status change, whichever
-- code path writes. Each status has 16 slots (a backend adds to slot pid % 16), so concurrent
-- writers rarely wait on one counter row; a reader sums the slots.
CREATE TABLE payments.status_counts (
    status TEXT NOT NULL,
    slot   SMALLINT NOT NULL CHECK (slot BETWEEN 0 AND 15),
    n      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (status, slot)
);
INSERT INTO payments.status_counts (status, slot)
SELECT s.status, g.slot
FROM (VALUES ('pending'), ('processing'), ('success'), ('failed')) AS s (status),
     generate_series(0, 15) AS g (slot);

-- Add each status's change to this backend's slot, in status order (so two writers never lock
-- counter rows in opposite orders).
CREATE FUNCTION payments.add_status_counts(deltas JSONB) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    change RECORD;
BEGIN
    FOR change IN
        SELECT key AS status, value::bigint AS delta FROM jsonb_each_text(deltas) WHERE value::bigint <> 0 ORDER BY key
    LOOP
        UPDATE payments.status_counts SET n = n + change.delta
        WHERE status = change.status AND slot = pg_backend_pid() % 16;
    END LOOP;
END $$;

CREATE FUNCTION payments.count_payment_statuses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM payments.add_status_counts(
            (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
                (SELECT status, count(*) AS n FROM new_rows GROUP BY status) AS d));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM payments.add_status_counts(
            (SELECT coalesce(jsonb_object_agg(status, -n), '{}') FROM
                (SELECT status, count(*) AS n FROM old_rows GROUP BY status) AS d));
    ELSE
        PERFORM payments.add_status_counts(
            (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
                (SELECT status, sum(delta) AS n FROM (
                    SELECT o.status AS status, -1 AS delta FROM old_rows o
                    UNION ALL SELECT w.status, 1 FROM new_rows w) AS c
                 GROUP BY status) AS d));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER payments_count_inserted AFTER INSERT ON payments.payments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION payments.count_payment_statuses();
CREATE TRIGGER payments_count_updated AFTER UPDATE ON payments.payments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payments.count_payment_statuses();
CREATE TRIGGER payments_count_deleted AFTER DELETE ON payments.payments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION payments.count_payment_statuses();

-- The payments there are now (taken after the triggers exist, in the same transaction).
UPDATE payments.status_counts AS c SET n = t.n
FROM (SELECT status, count(*) AS n FROM payments.payments GROUP BY status) AS t
WHERE c.status = t.status AND c.slot = 0;
