"""Events published by a relay whose handle_events task was lost are picked up from the outbox views."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest
from gateway_common.events import make_event
from gateway_common.reconcile import ReconcileConfig, scan
from webhooks import service
from webhooks.reconcile import SOURCES, Reconciler


@pytest.fixture(scope="module")
def superuser(database_url):
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


def publish(conn, schema: str, event: dict, age_seconds: float) -> None:
    """Write an outbox row as the producer's relay leaves it: published, but no task was ever sent."""
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {schema}.outbox (event_id, event_type, merchant_id, payload, created_at, published_at) "
            "VALUES (%s, %s, %s, %s, now() - %s * interval '1 second', now() - %s * interval '1 second')",
            (event["id"], event["event"], event["merchant_id"], json.dumps(event), age_seconds, age_seconds - 0.1),
        )


def deliveries(db, event_ids: list[str]) -> dict[str, int]:
    with db.transaction() as tx:
        tx.cursor.execute(
            "SELECT event_id, count(*) AS n FROM webhooks.deliveries WHERE event_id = ANY(%s) GROUP BY event_id",
            (event_ids,),
        )
        return {row["event_id"]: row["n"] for row in tx.cursor.fetchall()}


def received(db, event_ids: list[str]) -> set[str]:
    with db.transaction() as tx:
        tx.cursor.execute("SELECT event_id FROM webhooks.received_events WHERE event_id = ANY(%s)", (event_ids,))
        return {row["event_id"] for row in tx.cursor.fetchall()}


def test_published_events_without_a_task_are_delivered_once(db, harness, merchant, receivers, url_of, superuser):
    # Other suites in the same run leave outbox rows in this database: handle those first, so
    # the counts below are about this test's events only.
    drain = Reconciler(db, harness.cfg, harness.collector, ReconcileConfig(min_age_seconds=0, max_age_seconds=3600))
    while drain.step():
        harness.collector.take()
    harness.collector.take()
    secret = service.get_config(db, merchant).secret
    server = receivers(secret)
    service.update_config(db, harness.cfg, merchant, url_of(server))
    no_url_merchant = str(uuid.uuid4())

    lost = [
        make_event("payment.success", merchant, {"payment": {"id": "pay_Rc12Cd34Ef56Gh78", "amount": 100}}),
        make_event("payment.failed", merchant, {"payment": {"id": "pay_Rc22Cd34Ef56Gh78", "amount": 200}}),
    ]
    lost_refund = make_event(
        "refund.processed", merchant, {"refund": {"id": "rfnd_Rc12Cd34Ef56Gh78", "payment_id": "pay_Rc12Cd34Ef56Gh78"}}
    )
    no_url = make_event("payment.success", no_url_merchant, {"payment": {"id": "pay_Rc32Cd34Ef56Gh78"}})
    too_recent = make_event("payment.success", merchant, {"payment": {"id": "pay_Rc42Cd34Ef56Gh78"}})
    too_old = make_event("payment.success", merchant, {"payment": {"id": "pay_Rc52Cd34Ef56Gh78"}})
    via_task = make_event("payment.created", merchant, {"payment": {"id": "pay_Rc62Cd34Ef56Gh78"}})
    # The reader goes forward in seq order and waits at the first row younger than min_age, so
    # the rows are written in time order, as a real outbox has them: these now, then min_age passes.
    for event in lost:
        publish(superuser, "payments", event, age_seconds=0.1)
    publish(superuser, "refunds", lost_refund, age_seconds=0.1)
    publish(superuser, "payments", no_url, age_seconds=0.1)
    publish(superuser, "payments", too_old, age_seconds=2 * 3600)
    publish(superuser, "payments", via_task, age_seconds=0.1)
    # This one's task did arrive: it was handled already and must not be handled again.
    (task_delivery,) = service.handle_events(db, harness.cfg, [via_task], harness.collector)
    harness.deliver_collected()
    time.sleep(2.5)
    publish(superuser, "payments", too_recent, age_seconds=0.1)

    reconciler = Reconciler(db, harness.cfg, harness.collector, ReconcileConfig(min_age_seconds=2, max_age_seconds=3600))
    assert reconciler.step() == 4  # the two payments, the refund, and the merchant without a URL
    outcomes = harness.deliver_collected()
    assert outcomes == ["success"] * 3

    all_ids = [e["id"] for e in [*lost, lost_refund, no_url, too_recent, too_old, via_task]]
    assert deliveries(db, all_ids) == {lost[0]["id"]: 1, lost[1]["id"]: 1, lost_refund["id"]: 1, via_task["id"]: 1}
    assert received(db, all_ids) == {lost[0]["id"], lost[1]["id"], lost_refund["id"], no_url["id"], via_task["id"]}
    arrived = [json.loads(r.body) for r in server.state.requests if r.status == 200]
    assert sorted(e["id"] for e in arrived) == sorted([lost[0]["id"], lost[1]["id"], lost_refund["id"], via_task["id"]])
    assert next(e for e in arrived if e["id"] == lost[0]["id"])["data"] == lost[0]["data"]

    # A second step finds nothing: no new deliveries, no claims.
    assert reconciler.step() == 0
    assert harness.collector.take() == []
    assert deliveries(db, all_ids) == {lost[0]["id"]: 1, lost[1]["id"]: 1, lost_refund["id"]: 1, via_task["id"]: 1}
    assert task_delivery


def test_the_task_after_the_reconciler_adds_nothing(db, harness, merchant, receivers, url_of, superuser):
    # min_age 0 here, as the row is back-dated (the reader would otherwise wait at the previous
    # test's too_recent row, which comes first in seq order). Drain what is there first.
    reconciler = Reconciler(db, harness.cfg, harness.collector, ReconcileConfig(min_age_seconds=0))
    while reconciler.step():
        harness.collector.take()
    harness.collector.take()
    server = receivers(service.get_config(db, merchant).secret)
    service.update_config(db, harness.cfg, merchant, url_of(server))
    event = make_event("payment.success", merchant, {"payment": {"id": "pay_Rt12Cd34Ef56Gh78"}})
    publish(superuser, "payments", event, age_seconds=30)
    assert reconciler.step() == 1
    assert harness.deliver_collected() == ["success"]
    # The lost task turns up after all (Redis came back): idempotent by event id.
    assert service.handle_events(db, harness.cfg, [event], harness.collector) == []
    assert harness.collector.take() == []
    assert deliveries(db, [event["id"]]) == {event["id"]: 1}
    assert len(server.state.requests) == 1


def publish_at(conn, event: dict, seq: int, age_seconds: float) -> None:
    """Write a published payments outbox row with a chosen seq (as a late-committing insert leaves it)."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO payments.outbox (seq, event_id, event_type, merchant_id, payload, created_at, published_at) "
            "VALUES (%s, %s, %s, %s, %s, now() - %s * interval '1 second', now() - %s * interval '1 second')",
            (seq, event["id"], event["event"], event["merchant_id"], json.dumps(event), age_seconds, age_seconds - 0.1),
        )
        cur.execute("SELECT setval('payments.outbox_seq_seq', (SELECT max(seq) FROM payments.outbox))")


def next_seq(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(seq), 0) + 1 FROM payments.outbox")
        return cur.fetchone()[0]


def test_the_reader_keeps_its_place_but_waits_for_a_gap_an_open_transaction_may_fill(db, harness, merchant, superuser):
    # min_age 0: earlier tests leave young rows before these back-dated ones (see above).
    rc = ReconcileConfig(min_age_seconds=0, max_age_seconds=3600, gap_grace_seconds=60)
    reconciler = Reconciler(db, harness.cfg, harness.collector, rc)
    while reconciler.step():
        harness.collector.take()
    harness.collector.take()
    service.update_config(db, harness.cfg, merchant, None)

    def event(n: int) -> dict:
        return make_event("payment.success", merchant, {"payment": {"id": f"pay_Gap{n}Cd34Ef56Gh78"}})

    # Seq s is skipped (an insert still open), s + 1 committed 30 s ago.
    s = next_seq(superuser)
    first, late = event(1), event(2)
    publish_at(superuser, first, s + 1, age_seconds=30)
    assert reconciler.step() == 1
    assert reconciler.step() == 0
    # The open insert commits: the reader had waited before the gap, so it still sees it.
    publish_at(superuser, late, s, age_seconds=30)
    assert reconciler.step() == 1
    assert received(db, [first["id"], late["id"]]) == {first["id"], late["id"]}

    # A gap before a row older than the grace is an aborted insert: the reader moves past it.
    t = next_seq(superuser)
    old = event(3)
    publish_at(superuser, old, t + 1, age_seconds=120)
    assert reconciler.step() == 1
    # (Read from just before the gap: rows other suites left unpublished may hold the reader's own
    # place further back, which is right, so the gap rule is checked on one read.)
    result = scan(db, SOURCES[0], t - 1, rc)
    assert (result.hold, result.last, result.found) == (None, t + 1, [])
