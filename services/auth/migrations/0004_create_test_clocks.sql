-- Per-merchant test clocks (test mode): how far a merchant's clock runs ahead of real time.
-- A merchant without a row runs on real time; reset deletes its row. Every service judges that
-- merchant's scheduled work (bank answers, refunds, authentication timeouts, webhook retries,
-- endpoint disabling) against auth.merchant_now(merchant_id), through its own schedule columns.
CREATE TABLE auth.test_clocks (
    merchant_id    UUID PRIMARY KEY REFERENCES auth.merchants (id),
    -- At most 100 years ahead in all (each advance is at most 10 years, checked by the API).
    offset_seconds BIGINT NOT NULL CHECK (offset_seconds > 0 AND offset_seconds <= 3153600000),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Published on purpose for the services that keep schedules: the clocked merchants (few; a due
-- query joins them to its per-merchant index, so merchants on real time keep the plain due index).
CREATE VIEW auth.merchant_clocks AS
    SELECT merchant_id, offset_seconds FROM auth.test_clocks;
GRANT SELECT ON auth.merchant_clocks TO svc_payments, svc_refunds, svc_webhooks;

-- A merchant's "now": the database's now() plus its clock's offset (0 without one).
CREATE FUNCTION auth.merchant_now(merchant UUID) RETURNS TIMESTAMPTZ
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT now() + coalesce(
            (SELECT c.offset_seconds FROM auth.merchant_clocks c WHERE c.merchant_id = merchant), 0
        ) * interval '1 second'
    $$;
GRANT EXECUTE ON FUNCTION auth.merchant_now(UUID) TO svc_payments, svc_refunds, svc_webhooks;
