"""make seed-demo: fill the documented test merchant with realistic history, fast.

    python -m tools.seed_demo --payments 1000000 --deliveries 1000000 [--days 90] [--database-url URL]

Adds (does not replace) payments over the last ``--days`` days to the test merchant
(550e8400-e29b-41d4-a716-446655440000) of the database at DATABASE_URL: UPI and card, successful
and failed, most successes captured, some partly or fully refunded, about half paying an order,
and webhook deliveries of their events (delivered, a few failed after five attempts).

Rows are generated inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``), so Python
formats nothing; every attribute of payment ``i`` is a hash of (run salt, i), so the deliveries,
written on a second connection in parallel, describe the same payments. The rows go through the
services' own tables, constraints and triggers: ``payments.status_counts`` and
``payments.daily_totals`` are kept by the statement triggers on payments.payments (an
``INSERT ... SELECT`` fires them like any insert), refunds are in ``refunds.refunds`` with their
``refunds.payment_balances`` row, each processed refund is in ``payments.applied_refunds`` and in
the payment's ``amount_refunded``; every order has its payment (paid when it succeeded).

What is deliberately not written: nothing is left pending or processing (the running workers
would pick it up, send webhooks and move money), and no outbox rows (the relay would publish a
million old events; published outbox rows are pruned after a day anyway). Each delivery's event is
stored in ``webhooks.events`` too (the Events API lists them; those past the 30 days' retention are
pruned by the running webhooks worker, as live ones would be).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from gateway_common.config import DEFAULT_DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent
TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
DEMO_WEBHOOK_URL = "https://demo.example.com/webhooks"

# u(k): a uniform [0, 1) number for payment i, independent for each k, the same on every connection.
_U = "((hashint8extended(i, %(salt)s::bigint + {k}) & 2147483647)::float8 / 2147483648.0)"


def _u(k: int) -> str:
    return _U.format(k=k)


def _id(column: str, k: int) -> str:
    """16 hex digits that stand for (salt, k, column): a 64-bit hash, unique in practice (a clash aborts the seed)."""
    return f"lpad(to_hex(hashint8extended({column}, %(salt)s::bigint * 1000 + {k})), 16, '0')"


# One row per payment i: every column the payments, orders and refunds rows need. ``source`` is a
# FROM item with a column ``i`` (and ``carry``, columns passed through); ``%(n)s``, ``%(days)s``,
# ``%(salt)s`` are parameters, the rest fixed text. Payment i's created_at grows with i, so rows
# come out in time order without a sort. (OFFSET 0 keeps each level a subquery of its own: the
# planner would otherwise inline every expression at each place it is used, computing it again.)
def payment_rows(source: str = "generate_series(0, %(n)s::bigint - 1) AS i", carry: str = "") -> str:
    """Return the SELECT of the payments' generated columns."""
    more = f"{carry}, " if carry else ""
    return f"""
SELECT {more}i, p_id, o_id, created_at, amount, method, status, captured, refund,
       CASE WHEN refund > 0 THEN 'rfnd_' || {_id('i', 103)} END AS r_id,
       CASE WHEN method = 'upi' THEN 'user' || (i %% 99991) || (ARRAY['@okaxis', '@okhdfcbank', '@ybl', '@paytm'])[1 + (i %% 4)] END AS vpa,
       CASE WHEN method = 'card' THEN (ARRAY['visa', 'mastercard', 'rupay', 'amex'])[1 + (i %% 4)] END AS card_network,
       CASE WHEN method = 'card' THEN lpad((i %% 10000)::text, 4, '0') END AS card_last4,
       CASE WHEN status = 'failed' THEN CASE WHEN method = 'card' THEN 'CARD_DECLINED' ELSE 'PAYMENT_FAILED' END END AS error_code
FROM (
    SELECT {more}i, p_id, o_id, created_at, amount, method, status, captured,
           CASE WHEN captured AND u_refund < 0.08
                THEN CASE WHEN u_refund < 0.04 THEN amount ELSE greatest(1, (amount * (0.1 + 8 * u_refund))::bigint) END
                ELSE 0 END AS refund
    FROM (
        SELECT {more}i,
               'pay_' || {_id('i', 101)} AS p_id,
               CASE WHEN {_u(6)} < 0.5 THEN 'order_' || {_id('i', 102)} END AS o_id,
               now() - interval '2 minutes'
                 - (%(days)s::float8 * 86400 * (1 - (i + {_u(0)}) / %(n)s::float8)) * interval '1 second' AS created_at,
               (round(1000 * exp({_u(3)} * ln(5000))))::bigint AS amount,
               CASE WHEN u_method < 0.6 THEN 'upi' ELSE 'card' END AS method,
               CASE WHEN u_status < CASE WHEN u_method < 0.6 THEN 0.90 ELSE 0.95 END THEN 'success' ELSE 'failed' END AS status,
               u_status < CASE WHEN u_method < 0.6 THEN 0.90 ELSE 0.95 END AND {_u(5)} < 0.9 AS captured,
               {_u(7)} AS u_refund
        FROM (SELECT {more}i, {_u(1)} AS u_method, {_u(2)} AS u_status FROM {source} OFFSET 0) AS r OFFSET 0
    ) AS a OFFSET 0
) AS b
"""  # noqa: S608 - fixed text; values are parameters


_DESCRIPTION = {"PAYMENT_FAILED": "The bank could not process the payment", "CARD_DECLINED": "The card was declined by the bank"}

# The payments of this run, generated once into a temporary table that each insert reads.
CREATE_ROWS = f"CREATE TEMPORARY TABLE seed_rows ON COMMIT DROP AS {payment_rows()}"

INSERT_ORDERS = """
INSERT INTO payments.orders (id, merchant_id, amount, currency, receipt, notes, status, created_at, updated_at)
SELECT o_id, %(merchant)s, amount, 'INR', 'rcpt_' || i, '{}'::jsonb,
       CASE WHEN status = 'success' THEN 'paid' ELSE 'attempted' END,
       created_at - interval '20 seconds', created_at + interval '3 seconds'
FROM seed_rows WHERE o_id IS NOT NULL
"""

INSERT_PAYMENTS = f"""
INSERT INTO payments.payments (id, merchant_id, order_id, order_ref, amount, currency, method, status, vpa,
    card_network, card_last4, card_expiry_month, card_expiry_year, card_holder_name, bank_outcome,
    bank_error_code, error_code, error_description, captured, captured_at, amount_refunded, bank_due_at,
    next_run_at, created_at, updated_at)
SELECT p_id, %(merchant)s, o_id, o_id, amount, 'INR', method, status, vpa, card_network, card_last4,
       CASE WHEN method = 'card' THEN (1 + i %% 12)::smallint END,
       CASE WHEN method = 'card' THEN (2027 + i %% 5)::smallint END,
       CASE WHEN method = 'card' THEN 'Demo Customer ' || (i %% 997) END,
       status, NULL, error_code,
       CASE error_code WHEN 'CARD_DECLINED' THEN '{_DESCRIPTION["CARD_DECLINED"]}'
                       WHEN 'PAYMENT_FAILED' THEN '{_DESCRIPTION["PAYMENT_FAILED"]}' END,
       captured, CASE WHEN captured THEN created_at + interval '40 seconds' END,
       refund, created_at + interval '7 seconds', NULL, created_at,
       created_at + CASE WHEN captured THEN interval '40 seconds' ELSE interval '7 seconds' END
FROM seed_rows
"""  # noqa: S608

# A refund's balance row, the refund (processed), and its application to the payment.
INSERT_BALANCES = """
INSERT INTO refunds.payment_balances (payment_id, merchant_id, amount, refunded_total, created_at, updated_at)
SELECT p_id, %(merchant)s, amount, refund, created_at + interval '1 hour', created_at + interval '1 hour'
FROM seed_rows WHERE refund > 0
"""
INSERT_REFUNDS = """
INSERT INTO refunds.refunds (id, payment_id, merchant_id, amount, reason, status, created_at, processed_at, due_at, next_run_at)
SELECT r_id, p_id, %(merchant)s, refund, CASE WHEN refund = amount THEN 'Customer returned the order' ELSE 'Partial return' END,
       'processed', created_at + interval '1 hour', created_at + interval '1 hour 4 seconds',
       created_at + interval '1 hour 4 seconds', NULL
FROM seed_rows WHERE refund > 0
"""
INSERT_APPLIED = """
INSERT INTO payments.applied_refunds (refund_id, payment_id, amount, applied_at)
SELECT r_id, p_id, refund, created_at + interval '1 hour 5 seconds' FROM seed_rows WHERE refund > 0
"""

# Deliveries: delivery j is event k of payment i (k = 0 its final status; with more deliveries than
# payments, also its created, pending and captured events). %(per)s deliveries per payment when
# there are more deliveries than payments; otherwise every (n / m)-th payment has one. The body is
# the event as the webhooks service sends it (compact JSON, the payment's fields in API order),
# written as text: json_build_object costs ten times as much per row.
_TIME = """to_char(({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
_BODY = f"""concat(
    '{{"id":"', e_id, '","event":"', ev_type, '","timestamp":', extract(epoch FROM ev_at)::bigint,
    ',"data":{{"payment":{{"id":"', p_id, '","order_id":', CASE WHEN o_id IS NULL THEN 'null' ELSE '"' || o_id || '"' END,
    ',"merchant_id":"', %(merchant)s::uuid::text, '","amount":', amount, ',"currency":"INR","method":"', method,
    '","status":"', ev_status, '"',
    CASE WHEN method = 'upi' THEN ',"vpa":"' || vpa || '"'
         ELSE ',"card_network":"' || card_network || '","card_last4":"' || card_last4 || '"' END,
    ',"captured":', CASE WHEN ev_captured THEN 'true' ELSE 'false' END,
    ',"captured_at":', CASE WHEN ev_captured THEN '"' || {_TIME.format("created_at + interval '40 seconds'")} || '"' ELSE 'null' END,
    ',"amount_refunded":0,"error_code":', CASE WHEN ev_status = 'failed' THEN '"' || error_code || '"' ELSE 'null' END,
    ',"error_description":', CASE WHEN ev_status <> 'failed' THEN 'null'
        WHEN error_code = 'CARD_DECLINED' THEN '"{_DESCRIPTION["CARD_DECLINED"]}"' ELSE '"{_DESCRIPTION["PAYMENT_FAILED"]}"' END,
    ',"created_at":"', {_TIME.format("created_at")}, '","updated_at":"', {_TIME.format("ev_at")}, '"}}}}}}')"""

DELIVERY_SOURCE = (
    "(SELECT j, CASE WHEN %(per)s > 0 THEN j / %(per)s ELSE (j * %(n)s::bigint) / %(m)s::bigint END AS i, "
    "CASE WHEN %(per)s > 0 THEN j %% %(per)s ELSE 0 END AS k FROM generate_series(0, %(m)s::bigint - 1) AS j) AS d"
)
INSERT_DELIVERIES = f"""
WITH delivered AS (
INSERT INTO webhooks.deliveries (id, merchant_id, endpoint_id, event_id, event_type, payment_id, body, url, status,
    attempts, next_retry_at, last_attempt_at, response_code, response_body, last_error, created_at, updated_at)
SELECT d_id, %(merchant)s::uuid, %(endpoint)s, e_id, ev_type, p_id, convert_to({_BODY}, 'UTF8'),
       %(url)s, CASE WHEN d_ok THEN 'success' ELSE 'failed' END,
       CASE WHEN d_ok THEN 1 + (j %% 50 = 0)::int ELSE 5 END, NULL,
       ev_at + CASE WHEN d_ok THEN interval '1 second' ELSE interval '2 hours' END,
       CASE WHEN d_ok THEN 200 ELSE 503 END, CASE WHEN d_ok THEN 'ok' ELSE 'Service Unavailable' END,
       CASE WHEN d_ok THEN NULL ELSE 'HTTP 503' END, ev_at,
       ev_at + CASE WHEN d_ok THEN interval '1 second' ELSE interval '2 hours' END
FROM (
    SELECT s.*,
           'whlog_' || {_id('j', 104)} AS d_id,
           'evt_' || {_id('j', 105)} AS e_id,
           ((hashint8extended(j, %(salt)s::bigint + 99) & 1023) >= 40) AS d_ok,
           CASE k WHEN 0 THEN 'payment.' || s.status WHEN 1 THEN 'payment.created' WHEN 2 THEN 'payment.pending'
                  ELSE 'payment.captured' END AS ev_type,
           CASE WHEN k IN (1, 2) THEN 'pending' ELSE s.status END AS ev_status,
           k = 3 AND s.captured AS ev_captured,
           s.created_at + CASE k WHEN 0 THEN interval '7 seconds' WHEN 3 THEN interval '40 seconds'
                                 ELSE interval '0 seconds' END AS ev_at
    FROM ({payment_rows(DELIVERY_SOURCE, "j, k")} OFFSET 0) AS s OFFSET 0
) AS x
RETURNING event_id, event_type, created_at, body
)
INSERT INTO webhooks.events (id, merchant_id, type, category, created_at, body)
SELECT event_id, %(merchant)s::uuid, event_type, split_part(event_type, '.', 1), created_at, body
FROM delivered ORDER BY created_at
"""  # noqa: S608


@dataclass
class Timing:
    """Seconds each step took."""

    steps: dict[str, float]

    def add(self, name: str, started: float) -> None:
        self.steps[name] = time.monotonic() - started


def migrate(url: str) -> None:
    """Bring the database up to date and seed the test merchant (``database/manage.py migrate``)."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, str(ROOT / "database" / "manage.py"), "migrate"], env=env, check=True,  # noqa: S603
                   stdout=subprocess.DEVNULL)


def _connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, application_name="seed-demo")
    # The generated rows (a temporary table) stay in memory; nothing waits for the WAL flush.
    conn.execute("SET temp_buffers = '256MB'")
    conn.execute("SET work_mem = '64MB'")
    conn.execute("SET synchronous_commit = off")
    return conn


def _endpoint(conn: psycopg.Connection, merchant: str) -> tuple[str, str]:
    row = conn.execute("SELECT id, url FROM webhooks.endpoints WHERE merchant_id = %s AND is_default", (merchant,)).fetchone()
    if row is None:
        raise SystemExit(f"merchant {merchant} has no webhook endpoint: run `make migrate` (it seeds one) first")
    return row[0], row[1] or DEMO_WEBHOOK_URL


def seed_payments(url: str, params: dict, timing: Timing) -> None:
    """Orders, payments, refunds and their applications, in one transaction."""
    with _connect(url) as conn, conn.cursor() as cur:
        for name, statement in (
            ("generate", CREATE_ROWS),
            ("orders", INSERT_ORDERS),
            ("payments", INSERT_PAYMENTS),
            ("refund balances", INSERT_BALANCES),
            ("refunds", INSERT_REFUNDS),
            ("applied refunds", INSERT_APPLIED),
        ):
            started = time.monotonic()
            cur.execute(statement, params)
            timing.add(name, started)
        started = time.monotonic()
        conn.commit()
        timing.add("payments commit", started)


def seed_deliveries(url: str, params: dict, timing: Timing) -> None:
    """Webhook deliveries of the payments' events and the events themselves (one each, in the order
    they happened), in one transaction."""
    if params["m"] == 0:
        return
    with _connect(url) as conn, conn.cursor() as cur:
        started = time.monotonic()
        cur.execute(INSERT_DELIVERIES, params)
        conn.commit()
        timing.add("deliveries and events", started)


SEEDED_TABLES = ("payments.orders", "payments.payments", "payments.applied_refunds", "payments.daily_totals",
                 "refunds.refunds", "refunds.payment_balances", "webhooks.deliveries", "webhooks.events")


def vacuum(url: str, timing: Timing) -> None:
    """Give the planner the tables' new sizes now, and mark their pages all-visible so the lists'
    index-only scans need no heap visit (autovacuum would do both, minutes later)."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in SEEDED_TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    timing.add("vacuum", started)


def seed(url: str, payments: int, deliveries: int, *, days: int = 90, merchant: str = TEST_MERCHANT_ID,
         run_migrations: bool = True) -> Timing:
    """Add ``payments`` payments and ``deliveries`` deliveries to ``merchant``; return the steps' timings."""
    if payments < 1 and deliveries > 0:
        raise ValueError("deliveries describe payments: seed at least one payment")
    timing = Timing({})
    started = time.monotonic()
    if run_migrations:
        migrate(url)
        timing.add("migrate", started)
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT 1 FROM auth.merchants WHERE id = %s", (merchant,)).fetchone() is None:
            raise SystemExit(f"merchant {merchant} does not exist in this database")
        endpoint, webhook_url = _endpoint(conn, merchant)
    per = -(-deliveries // payments) if payments and deliveries > payments else 0
    params = {"n": payments, "m": deliveries, "per": per, "days": days, "merchant": merchant,
              "endpoint": endpoint, "url": webhook_url, "salt": str(secrets.randbelow(2**40))}
    errors: list[BaseException] = []

    def run(fn: object) -> None:
        try:
            fn(url, params, timing)  # type: ignore[operator]
        except BaseException as error:  # reported by the caller, after both threads end
            errors.append(error)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in (seed_payments, seed_deliveries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    vacuum(url, timing)
    timing.add("total", started)
    return timing


def check(url: str, merchant: str = TEST_MERCHANT_ID) -> dict[str, object]:
    """Compare what the triggers and balances keep with what the rows say (each a whole-table read).

    Returns the figures; every value under ``mismatches`` should be empty.
    """
    with psycopg.connect(url) as conn:
        q = conn.execute
        mismatches: dict[str, object] = {}
        counted = dict(q("SELECT status, count(*) FROM payments.payments GROUP BY 1").fetchall())
        kept = dict(q("SELECT status, sum(n)::bigint FROM payments.status_counts GROUP BY 1 HAVING sum(n) <> 0").fetchall())
        if counted != kept:
            mismatches["status_counts"] = {"rows": counted, "counters": kept}
        rows = q(
            "SELECT (created_at AT TIME ZONE 'UTC')::date, status, method, count(*), sum(amount) "
            "FROM payments.payments WHERE merchant_id = %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", (merchant,)
        ).fetchall()
        totals = q(
            "SELECT day, status, method, sum(n)::bigint, sum(amount) FROM payments.daily_totals WHERE merchant_id = %s "
            "GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3", (merchant,)
        ).fetchall()
        if rows != totals:
            mismatches["daily_totals"] = f"{len(rows)} groups in payments, {len(totals)} in daily_totals, differing"
        bad = q(
            "SELECT count(*) FROM payments.payments p LEFT JOIN (SELECT payment_id, sum(amount) AS s "
            "FROM payments.applied_refunds GROUP BY 1) a ON a.payment_id = p.id "
            "WHERE p.merchant_id = %s AND p.amount_refunded <> coalesce(a.s, 0)", (merchant,)
        ).fetchone()[0]
        if bad:
            mismatches["amount_refunded"] = f"{bad} payments whose amount_refunded is not the sum of applied refunds"
        bad = q(
            "SELECT count(*) FROM refunds.payment_balances b LEFT JOIN (SELECT payment_id, sum(amount) AS s "
            "FROM refunds.refunds GROUP BY 1) r ON r.payment_id = b.payment_id "
            "WHERE b.merchant_id = %s AND b.refunded_total <> coalesce(r.s, 0)", (merchant,)
        ).fetchone()[0]
        if bad:
            mismatches["payment_balances"] = f"{bad} balances that are not the sum of their refunds"
        bad = q(
            "SELECT count(*) FROM refunds.refunds r JOIN payments.payments p ON p.id = r.payment_id "
            "WHERE r.status = 'processed' AND r.merchant_id = %s "
            "AND NOT EXISTS (SELECT 1 FROM payments.applied_refunds a WHERE a.refund_id = r.id)", (merchant,)
        ).fetchone()[0]
        if bad:
            mismatches["applied_refunds"] = f"{bad} processed refunds not applied to their payment"
        bad = q(
            "SELECT count(*) FROM payments.orders o WHERE o.merchant_id = %s AND (o.status = 'paid') <> EXISTS "
            "(SELECT 1 FROM payments.payments p WHERE p.order_ref = o.id AND p.status = 'success')", (merchant,)
        ).fetchone()[0]
        if bad:
            mismatches["orders"] = f"{bad} orders whose status does not match their payments"
        figures = {
            "payments": sum(counted.values()),
            "deliveries": q("SELECT count(*) FROM webhooks.deliveries WHERE merchant_id = %s", (merchant,)).fetchone()[0],
            "events": q("SELECT count(*) FROM webhooks.events WHERE merchant_id = %s", (merchant,)).fetchone()[0],
            "refunds": q("SELECT count(*) FROM refunds.refunds WHERE merchant_id = %s", (merchant,)).fetchone()[0],
            "orders": q("SELECT count(*) FROM payments.orders WHERE merchant_id = %s", (merchant,)).fetchone()[0],
        }
    return {"figures": figures, "mismatches": mismatches}


def main(argv: list[str] | None = None) -> int:
    """Seed, print the timings (and with --check, the consistency check)."""
    parser = argparse.ArgumentParser(prog="python -m tools.seed_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90, help="spread the payments over this many days up to now")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--no-migrate", action="store_true", help="skip `database/manage.py migrate` first")
    parser.add_argument("--check", action="store_true", help="then verify counters, totals and balances (reads every row)")
    args = parser.parse_args(argv)
    if args.payments < 0 or args.deliveries < 0 or not 1 <= args.days <= 3650:
        parser.error("--payments and --deliveries must be >= 0 and --days between 1 and 3650")
    timing = seed(args.database_url, args.payments, args.deliveries, days=args.days, run_migrations=not args.no_migrate)
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timing.steps.items() if name != "total")
    print(f"seed-demo: {args.payments:,} payments and {args.deliveries:,} deliveries for the test merchant "
          f"in {timing.steps['total']:.1f} s ({steps})")
    if args.check:
        result = check(args.database_url)
        print(f"seed-demo check: {result['figures']}; " + ("consistent" if not result["mismatches"] else f"MISMATCHES {result['mismatches']}"))
        return 1 if result["mismatches"] else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
