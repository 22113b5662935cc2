"""An order is charged at most once: concurrent attempts may all reach the bank, one succeeds."""

from __future__ import annotations

import concurrent.futures

import psycopg
import psycopg.errors
import pytest
from payments import bank_schedule
from payments.bank import BankConfig

CONFIG = BankConfig(test_mode=True, test_delay_ms=0, test_success=True)
ATTEMPTS = 8


def _attempts(client, headers, order_id: str) -> list[str]:
    """Create ATTEMPTS payments for one order at once, as a double-clicking shopper would."""

    def attempt(i: int):
        body = {"order_id": order_id, "method": "upi", "vpa": f"shopper{i}@okaxis"}
        return client.post("/api/v1/payments", json=body, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(ATTEMPTS) as pool:
        responses = list(pool.map(attempt, range(ATTEMPTS)))
    assert {r.status_code for r in responses} == {201}, [r.get_json() for r in responses]
    return [r.get_json()["id"] for r in responses]


def _order_paid_events(admin_conn, order_id: str) -> list[tuple[str, str, str]]:
    """The order.paid events written for an order: (order status, order id, paying payment id)."""
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT payload->'data'->'order'->>'status', payload->'data'->'order'->>'id', "
            "payload->'data'->'payment'->>'id' FROM payments.outbox "
            "WHERE event_type = 'order.paid' AND payload->'data'->'order'->>'id' = %s",
            (order_id,),
        )
        return cur.fetchall()


def _outcomes(admin_conn, order_id: str) -> list[tuple[str, str | None, int]]:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT status, error_code, amount FROM payments.payments WHERE order_ref = %s ORDER BY id", (order_id,)
        )
        return cur.fetchall()


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_attempts_on_one_order_charge_it_once(client, headers, db, admin_conn, round_):
    order = client.post("/api/v1/orders", json={"amount": 50000}, headers=headers).get_json()
    payment_ids = _attempts(client, headers, order["id"])
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
    # Each payment answered by its own worker thread at the same moment (several bank workers).
    with concurrent.futures.ThreadPoolExecutor(ATTEMPTS) as pool:
        done = sum(pool.map(lambda pid: bank_schedule.process_payments(db, CONFIG, [pid]), payment_ids))
    assert done == ATTEMPTS
    outcomes = _outcomes(admin_conn, order["id"])
    charged = sum(amount for status, _, amount in outcomes if status == "success")
    assert charged == order["amount"]
    assert sorted(code for status, code, _ in outcomes if status == "failed") == ["ORDER_ALREADY_PAID"] * (ATTEMPTS - 1)
    assert client.get(f"/api/v1/orders/{order['id']}", headers=headers).get_json()["status"] == "paid"
    # One order.paid, in the transaction that paid it, naming the payment that did.
    with admin_conn.cursor() as cur:
        cur.execute("SELECT id FROM payments.payments WHERE order_ref = %s AND status = 'success'", (order["id"],))
        (winner,) = cur.fetchone()
    assert _order_paid_events(admin_conn, order["id"]) == [("paid", order["id"], winner)]
    # A new attempt on the paid order is refused and creates nothing.
    again = client.post("/api/v1/payments", json={"order_id": order["id"], "method": "upi", "vpa": "x@okaxis"}, headers=headers)
    assert again.status_code == 400 and again.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"
    assert len(_outcomes(admin_conn, order["id"])) == ATTEMPTS


def test_one_batch_holding_several_attempts_of_one_order_settles_one(client, headers, db, admin_conn):
    order = client.post("/api/v1/orders", json={"amount": 20000}, headers=headers).get_json()
    payment_ids = _attempts(client, headers, order["id"])
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
    assert bank_schedule.process_payments(db, CONFIG, payment_ids) == ATTEMPTS
    statuses = [status for status, _, _ in _outcomes(admin_conn, order["id"])]
    assert statuses.count("success") == 1 and statuses.count("failed") == ATTEMPTS - 1
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM payments.outbox WHERE event_type = 'payment.failed' "
            "AND payload->'data'->'payment'->>'order_id' = %s "
            "AND payload->'data'->'payment'->>'error_code' = 'ORDER_ALREADY_PAID'",
            (order["id"],),
        )
        assert cur.fetchone()[0] == ATTEMPTS - 1  # merchants hear why each one failed
    assert len(_order_paid_events(admin_conn, order["id"])) == 1


def test_the_database_refuses_a_second_success_for_an_order(client, headers, db, admin_conn):
    order = client.post("/api/v1/orders", json={"amount": 30000}, headers=headers).get_json()
    first, second = _attempts(client, headers, order["id"])[:2]
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
    bank_schedule.process_payments(db, CONFIG, [first])
    # Whatever path a bug might take, the constraint stands behind the row lock.
    with admin_conn.cursor() as cur, pytest.raises(psycopg.errors.UniqueViolation):
        cur.execute("UPDATE payments.payments SET status = 'success' WHERE id = %s", (second,))


def test_the_earliest_attempt_of_a_batch_is_the_one_that_succeeds(client, headers, db, admin_conn):
    order = client.post("/api/v1/orders", json={"amount": 7000}, headers=headers).get_json()
    first, second, third = (
        client.post(
            "/api/v1/payments", json={"order_id": order["id"], "method": "upi", "vpa": f"try{i}@okaxis"}, headers=headers
        ).get_json()["id"]
        for i in range(3)
    )
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
    assert bank_schedule.process_payments(db, CONFIG, [third, second, first]) == 3
    with admin_conn.cursor() as cur:
        cur.execute("SELECT id FROM payments.payments WHERE order_ref = %s AND status = 'success'", (order["id"],))
        assert cur.fetchall() == [(first,)]
