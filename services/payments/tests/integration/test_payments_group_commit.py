"""Concurrent payment inserts of one process share a commit (writer.PaymentWriter), each written once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from gateway_common.db import Database, PoolSettings
from gateway_common.errors import ServiceUnavailableError
from gateway_common.events import make_event
from gateway_common.ids import new_id
from payments import service
from payments.models import Payment
from payments.schemas import payment_body
from payments.writer import writer_for

UPI = {"amount": 1000, "currency": "INR", "method": "upi", "vpa": "group@upi"}


@contextmanager
def inserts_held(database_url: str) -> Iterator[None]:
    """Hold every INSERT into payments.payments until the block ends (a table lock in another session)."""
    conn = psycopg.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE payments.payments IN SHARE ROW EXCLUSIVE MODE")
        yield
    finally:
        conn.rollback()
        conn.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def run_in_threads(calls: list[Callable[[], object]]) -> tuple[list[threading.Thread], list]:
    """Start each call in a thread; results (or the exception raised) land in the list, in order."""
    results: list = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        try:
            results[i] = call()
        except Exception as error:  # the test asserts on it
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    return threads, results


def blocked_insert_waiting(admin_conn) -> bool:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO payments.payments %'"
        )
        return cur.fetchone()[0] > 0


def test_payments_created_during_a_write_are_written_together_each_once(db, merchants, admin_conn, database_url):
    writer = writer_for(db)
    with inserts_held(database_url):
        first, first_result = run_in_threads([lambda: service.create_payment(db, merchants["test"], UPI)])
        wait_until(lambda: blocked_insert_waiting(admin_conn), "the first write waits for the lock")
        queued, results = run_in_threads([lambda: service.create_payment(db, merchants["test"], UPI)] * 10)
        wait_until(lambda: len(writer._queue) == 10, "ten payments wait for the write in flight")
        assert all(r is None for r in results), "nobody is answered before the commit holding their payment"
    for t in first + queued:
        t.join(10)
    ids = [p.id for p in first_result + results]
    assert len(set(ids)) == 11
    with admin_conn.cursor() as cur:
        cur.execute("SELECT id, status FROM payments.payments WHERE id = ANY(%s)", (ids,))
        assert dict(cur.fetchall()).keys() == set(ids)
        cur.execute(
            "SELECT payload -> 'data' -> 'payment' ->> 'id', array_agg(event_type ORDER BY seq), min(xid::text) "
            "FROM payments.outbox WHERE payload -> 'data' -> 'payment' ->> 'id' = ANY(%s) GROUP BY 1",
            (ids,),
        )
        events = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
    assert {pid: ev[0] for pid, ev in events.items()} == {pid: ["payment.created", "payment.pending"] for pid in ids}
    # The ten queued payments went in one transaction, after (and apart from) the first.
    assert len({events[p.id][1] for p in results}) == 1
    assert events[first_result[0].id][1] != events[results[0].id][1]


def _new_payment(merchant_id: str, payment_id: str):
    """What create_payment builds for a plain UPI payment, with the id given."""
    payment = Payment(
        id=payment_id, merchant_id=merchant_id, order_id=None, amount=1000, currency="INR", method="upi",
        status="pending", vpa="group@upi", card_network=None, card_last4=None, error_code=None,
        error_description=None, captured=False, captured_at=None, amount_refunded=0,
        created_at=service._now(), updated_at=service._now(),
    )
    data = {"payment": payment_body(payment)}
    events = [make_event("payment.created", merchant_id, data), make_event("payment.pending", merchant_id, data)]
    return payment, service.build_instrument({"method": "upi", "vpa": "group@upi"}), events


def test_a_payment_the_database_refuses_fails_alone_in_its_batch(db, merchants, admin_conn, database_url):
    writer = writer_for(db)
    good = [_new_payment(merchants["test"], new_id("pay_")) for _ in range(4)]
    bad = _new_payment(merchants["test"], "pay_not-a-valid-id")  # the table's id check refuses it
    with inserts_held(database_url):
        first, _ = run_in_threads([lambda: service.create_payment(db, merchants["test"], UPI)])
        wait_until(lambda: blocked_insert_waiting(admin_conn), "the first write waits for the lock")
        batch = [good[0], good[1], bad, good[2], good[3]]
        threads, results = run_in_threads([lambda args=args: writer.write(*args) for args in batch])
        wait_until(lambda: len(writer._queue) == 5, "the five payments wait for the write in flight")
    for t in first + threads:
        t.join(10)
    assert isinstance(results[2], psycopg.IntegrityError)
    assert [results[i] for i in (0, 1, 3, 4)] == [None] * 4
    with admin_conn.cursor() as cur:
        cur.execute("SELECT id FROM payments.payments WHERE id = ANY(%s)", ([p.id for p, _, _ in batch],))
        assert {r[0] for r in cur.fetchall()} == {p.id for p, _, _ in good}
        cur.execute(
            "SELECT count(*) FROM payments.outbox WHERE payload -> 'data' -> 'payment' ->> 'id' = ANY(%s)",
            ([p.id for p, _, _ in batch],),
        )
        assert cur.fetchone()[0] == 2 * len(good)


def test_a_lone_payment_is_written_at_once_and_the_writer_is_free_again(db, merchants, admin_conn):
    payment = service.create_payment(db, merchants["test"], UPI)
    writer = writer_for(db)
    assert not writer._writing and writer._queue == []
    with admin_conn.cursor() as cur:
        cur.execute("SELECT status FROM payments.payments WHERE id = %s", (payment.id,))
        assert cur.fetchone() is not None


def test_an_unreachable_database_is_the_answer_and_nothing_waits_forever(merchants):
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none", pool=PoolSettings(max_size=2))
    with pytest.raises(ServiceUnavailableError):
        service.create_payment(unreachable, merchants["test"], UPI)
    # The failed write handed nothing on: the next one is tried (and fails) the same way.
    with pytest.raises(ServiceUnavailableError):
        service.create_payment(unreachable, merchants["test"], UPI)
    assert writer_for(unreachable)._writing is False
