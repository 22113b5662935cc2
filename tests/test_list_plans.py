"""Every list, filter and stats query the API and the dashboard run, EXPLAINed at 200 k rows.

`make seed-demo`'s seeder fills a throwaway database with 200,000 payments and 200,000 webhook
deliveries (plus their orders and refunds, and a second merchant's smaller history), then each
repository function behind a list, a filter, a detail page or the stats runs against it through a
cursor that EXPLAINs every statement before running it. A sequential scan of a big table fails the
test: at 1 M rows it is what made a page take seconds. (The planner's row estimate that a list
answers as an estimated total is itself an EXPLAIN and is not run, so it is not checked.)
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from gateway_common.db import Transaction
from gateway_common.testing import drop_database, url_for_database
from psycopg.rows import dict_row

from tools import seed_demo

ROWS = 200_000
MERCHANT = seed_demo.TEST_MERCHANT_ID
OTHER = "7d1f2c3e-0000-4000-8000-00000000beef"
# A table is big when it holds at least this many rows after seeding (payments, orders, deliveries,
# and the refunds tables at ~13 k). payments.daily_totals is not: it grows with days traded (a few
# thousand rows here), and a sequential scan of it is the planner's right choice.
BIG_ROWS = 10_000


@pytest.fixture(scope="module")
def seeded() -> Iterator[str]:
    """A database with 200 k payments and deliveries of the test merchant, 20 k of another."""
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"gwplans_{secrets.token_hex(4)}"
    url = url_for_database(admin, name)
    started = time.monotonic()
    try:
        seed_demo.seed(url, ROWS, ROWS)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO auth.merchants (id, name, email, password_hash) VALUES (%s, 'Other', 'plans@example.com', 'x')",
                (OTHER,),
            )
            conn.execute("INSERT INTO webhooks.endpoints (id, merchant_id, secret, is_default) "
                         "VALUES ('we_PLANSPLANSPLANS0', %s, 'whsec_x', true)",
                         (OTHER,))
        seed_demo.seed(url, ROWS // 10, ROWS // 10, merchant=OTHER, run_migrations=False)
        print(f"seeded {ROWS:,} + {ROWS // 10:,} payments and deliveries in {time.monotonic() - started:.1f} s")
        yield url
    finally:
        drop_database(admin, name)


class ExplainingCursor:
    """A dict-row cursor that EXPLAINs each statement (with its parameters) before running it."""

    def __init__(self, cursor: psycopg.Cursor, plans: list[tuple[str, Any]]) -> None:
        self._cursor = cursor
        self._plans = plans

    def execute(self, query: Any, params: Any = None) -> ExplainingCursor:
        text = query if isinstance(query, str) else query.as_string(self._cursor.connection)
        if not text.lstrip().upper().startswith("EXPLAIN"):
            self._cursor.execute(f"EXPLAIN (FORMAT JSON) {text}", params)
            row = self._cursor.fetchone()
            plan = next(iter(row.values()))
            self._plans.append((text, json.loads(plan) if isinstance(plan, str) else plan))
        self._cursor.execute(query, params)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def big_tables(url: str) -> set[str]:
    """The services' tables with at least BIG_ROWS rows (by the statistics the seeder's ANALYZE left)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname IN ('payments', 'refunds', 'webhooks') AND c.reltuples >= %s",
            (BIG_ROWS,),
        ).fetchall()
    return {row[0] for row in rows}


def seq_scans(node: dict, big: set[str]) -> list[str]:
    """Relations of the big tables a plan reads with a sequential scan."""
    found = []
    if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in big:
        found.append(node["Relation Name"])
    for child in node.get("Plans", []):
        found += seq_scans(child, big)
    return found


@pytest.fixture(scope="module")
def ids(seeded: str) -> dict[str, str]:
    """Ids in the middle of the test merchant's history, to page and look up from."""
    with psycopg.connect(seeded, row_factory=dict_row) as conn:
        q = conn.execute
        payment = q("SELECT id, order_id FROM payments.payments WHERE merchant_id = %s AND order_id IS NOT NULL "
                    "ORDER BY created_at DESC OFFSET 5000 LIMIT 1", (MERCHANT,)).fetchone()
        refund = q("SELECT id, payment_id FROM refunds.refunds WHERE merchant_id = %s ORDER BY created_at DESC "
                   "OFFSET 500 LIMIT 1", (MERCHANT,)).fetchone()
        delivery = q("SELECT id, payment_id FROM webhooks.deliveries WHERE merchant_id = %s ORDER BY seq DESC "
                     "OFFSET 5000 LIMIT 1", (MERCHANT,)).fetchone()
        event = q("SELECT id, created_at FROM webhooks.events WHERE merchant_id = %s ORDER BY seq DESC "
                  "OFFSET 5000 LIMIT 1", (MERCHANT,)).fetchone()
    return {"payment": payment["id"], "order": payment["order_id"], "refund": refund["id"],
            "refunded_payment": refund["payment_id"], "delivery": delivery["id"], "delivered_payment": delivery["payment_id"],
            "event": event["id"], "event_at": event["created_at"]}


def _queries(ids: dict[str, str]) -> list[tuple[str, Any]]:
    from payments import repository as payments
    from refunds import repository as refunds
    from webhooks import repository as webhooks

    page = {"limit": 10, "offset": 0}
    events = {"limit": 10}
    return [
        ("GET /payments", lambda tx: payments.list_payments(tx, MERCHANT, page)),
        ("GET /payments?status=failed", lambda tx: payments.list_payments(tx, MERCHANT, {**page, "status": "failed"})),
        ("GET /payments?method=card", lambda tx: payments.list_payments(tx, MERCHANT, {**page, "method": "card"})),
        ("GET /payments?status=failed&method=upi",
         lambda tx: payments.list_payments(tx, MERCHANT, {**page, "status": "failed", "method": "upi"})),
        ("GET /payments?q=<payment>", lambda tx: payments.list_payments(tx, MERCHANT, {**page, "q": ids["payment"]})),
        ("GET /payments?q=<order>", lambda tx: payments.list_payments(tx, MERCHANT, {**page, "q": ids["order"]})),
        ("GET /payments?starting_after", lambda tx: payments.list_payments(tx, MERCHANT, {**page, "starting_after": ids["payment"]})),
        ("GET /payments?ending_before&status",
         lambda tx: payments.list_payments(tx, MERCHANT, {**page, "ending_before": ids["payment"], "status": "success"})),
        ("GET /payments?offset=1000", lambda tx: payments.list_payments(tx, MERCHANT, {**page, "offset": 1000})),
        ("GET /payments/{id}", lambda tx: payments.get_payment(tx, MERCHANT, ids["payment"])),
        ("GET /payments/stats", lambda tx: payments.totals_by_day(tx, MERCHANT)),
        ("GET /test/jobs/status", lambda tx: payments.count_by_status(tx)),
        ("GET /orders", lambda tx: payments.list_orders(tx, MERCHANT, page)),
        ("GET /orders?starting_after", lambda tx: payments.list_orders(tx, MERCHANT, {**page, "starting_after": ids["order"]})),
        ("GET /orders/{id}", lambda tx: payments.get_order(tx, MERCHANT, ids["order"])),
        ("GET /refunds", lambda tx: refunds.list_refunds(tx, MERCHANT, page)),
        ("GET /refunds?starting_after", lambda tx: refunds.list_refunds(tx, MERCHANT, {**page, "starting_after": ids["refund"]})),
        ("GET /payments/{id}/refunds",
         lambda tx: refunds.list_refunds(tx, MERCHANT, page, payment_id=ids["refunded_payment"])),
        ("GET /payments/{id}/refunds?ending_before",
         lambda tx: refunds.list_refunds(tx, MERCHANT, {**page, "ending_before": ids["refund"]}, payment_id=ids["refunded_payment"])),
        ("GET /refunds/{id}", lambda tx: refunds.get_refund(tx, ids["refund"], MERCHANT)),
        ("GET /webhooks", lambda tx: webhooks.list_deliveries(tx, MERCHANT, page)),
        ("GET /webhooks?starting_after", lambda tx: webhooks.list_deliveries(tx, MERCHANT, {**page, "starting_after": ids["delivery"]})),
        ("GET /webhooks?payment_id", lambda tx: webhooks.list_deliveries(tx, MERCHANT, {**page, "payment_id": ids["delivered_payment"]})),
        ("GET /webhooks?payment_id&ending_before",
         lambda tx: webhooks.list_deliveries(tx, MERCHANT, {**page, "payment_id": ids["delivered_payment"], "ending_before": ids["delivery"]})),
        ("GET /webhooks/{id}", lambda tx: webhooks.get_delivery(tx, MERCHANT, ids["delivery"])),
        ("GET /events", lambda tx: webhooks.list_events(tx, MERCHANT, events)),
        ("GET /events?type=payment.failed", lambda tx: webhooks.list_events(tx, MERCHANT, {**events, "type": "payment.failed"})),
        ("GET /events?type=payment.*", lambda tx: webhooks.list_events(tx, MERCHANT, {**events, "type": "payment.*"})),
        ("GET /events?starting_after", lambda tx: webhooks.list_events(tx, MERCHANT, {**events, "starting_after": ids["event"]})),
        ("GET /events?ending_before&type",
         lambda tx: webhooks.list_events(tx, MERCHANT, {**events, "ending_before": ids["event"], "type": "payment.success"})),
        ("GET /events?created_lte", lambda tx: webhooks.list_events(tx, MERCHANT, {**events, "created_lte": ids["event_at"]})),
        ("GET /events/{id}", lambda tx: (webhooks.get_event(tx, MERCHANT, ids["event"]),
                                         webhooks.event_deliveries(tx, MERCHANT, ids["event"]))),
        ("other merchant: GET /payments", lambda tx: payments.list_payments(tx, OTHER, page)),
        ("other merchant: GET /webhooks", lambda tx: webhooks.list_deliveries(tx, OTHER, page)),
        ("pruner: deliveries past 30 days", lambda tx: webhooks.prune_deliveries(tx, 30, 5000)),
        ("pruner: a disabled endpoint's deliveries beyond those kept", lambda tx: (
            tx.cursor.execute("UPDATE webhooks.endpoints SET status = 'disabled' WHERE merchant_id = %s", (OTHER,)),
            webhooks.prune_disabled_deliveries(tx, 100, 5000))),
        ("pruner: events past 30 days", lambda tx: webhooks.prune_events(tx, 30, 5000)),
        ("deliveries of one endpoint", lambda tx: tx.cursor.execute(
            "SELECT id FROM webhooks.deliveries WHERE endpoint_id = "
            "(SELECT id FROM webhooks.endpoints WHERE merchant_id = %s AND is_default) "
            "ORDER BY seq DESC LIMIT 10", (OTHER,))),
    ]


def test_no_list_or_stats_query_scans_a_big_table(seeded, ids):
    big = big_tables(seeded)
    assert {"payments", "orders", "deliveries", "refunds", "events"} <= big, big
    problems = []
    with psycopg.connect(seeded, row_factory=dict_row) as conn:
        for name, run in _queries(ids):
            plans: list[tuple[str, Any]] = []
            with conn.cursor() as cursor:
                run(Transaction(ExplainingCursor(cursor, plans)))
            conn.rollback()
            assert plans, f"{name} ran no statement"
            for text, plan in plans:
                scanned = seq_scans(plan[0]["Plan"], big)
                if scanned:
                    problems.append(f"{name}: Seq Scan on {', '.join(scanned)}\n  {text}")
    assert not problems, "\n".join(problems)


def test_the_seeded_aggregates_are_consistent(seeded):
    result = seed_demo.check(seeded)
    assert result["mismatches"] == {}
    assert result["figures"]["payments"] == ROWS + ROWS // 10
    assert result["figures"]["deliveries"] == ROWS
    assert result["figures"]["events"] == ROWS  # one event per delivery (one endpoint)


def _schedule_queries() -> list[tuple[str, Any]]:
    from payments import repository as payments
    from refunds import repository as refunds
    from webhooks import repository as webhooks

    return [
        ("bank sweeper: due payments", lambda tx: payments.claim_due(tx, 500, 10)),
        ("refunds sweeper: due refunds", lambda tx: refunds.claim_due(tx, 200, 30)),
        ("webhooks sweeper: due deliveries", lambda tx: webhooks.claim_due(tx, 200, 60)),
    ]


@pytest.mark.parametrize("clocked", [False, True], ids=["no test clock", "another merchant's test clock"])
def test_the_sweepers_due_queries_use_indexes_with_and_without_test_clocks(seeded, clocked):
    big = big_tables(seeded)
    problems = []
    with psycopg.connect(seeded, row_factory=dict_row) as conn:
        for name, run in _schedule_queries():
            if clocked:
                conn.execute("INSERT INTO auth.test_clocks (merchant_id, offset_seconds) VALUES (%s, 86400)", (OTHER,))
            plans: list[tuple[str, Any]] = []
            with conn.cursor() as cursor:
                run(Transaction(ExplainingCursor(cursor, plans)))
            conn.rollback()
            for text, plan in plans:
                scanned = seq_scans(plan[0]["Plan"], big)
                if scanned:
                    problems.append(f"{name}: Seq Scan on {', '.join(scanned)}\n  {text}")
    assert not problems, "\n".join(problems)
