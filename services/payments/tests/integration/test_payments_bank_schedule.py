"""The bank's schedule: answers kept for when they are due, lost ones re-sent after the lease."""

from __future__ import annotations

import time

import pytest
from payments import bank_schedule
from payments.bank import BankConfig


def create(client, headers, vpa="success@upi") -> str:
    response = client.post("/api/v1/payments", json={"amount": 1000, "method": "upi", "vpa": vpa}, headers=headers)
    assert response.status_code == 201
    return response.get_json()["id"]


def sweep(db, config) -> list[tuple[list[str], float]]:
    sent: list[tuple[list[str], float]] = []
    bank_schedule.sweep_due(db, config, lambda ids, countdown: sent.append((list(ids), countdown)))
    return sent


def row(admin_conn, payment_id):
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT status, extract(epoch FROM bank_due_at - updated_at)::float8, "
            "extract(epoch FROM next_run_at - bank_due_at)::float8 FROM payments.payments WHERE id = %s",
            (payment_id,),
        )
        return cur.fetchone()


def final_events(admin_conn, payment_id) -> list[str]:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT event_type FROM payments.outbox WHERE payload->'data'->'payment'->>'id' = %s "
            "AND event_type IN ('payment.success', 'payment.failed')",
            (payment_id,),
        )
        return [r[0] for r in cur.fetchall()]


def test_due_batches_round_delays_up_and_group_them():
    assert bank_schedule.due_batches(["a", "b", "c", "d"], [1000, 5001, 1000, 5099], step_ms=100) == [
        (1.0, ["a", "c"]),
        (5.1, ["b", "d"]),
    ]
    assert bank_schedule.due_batches([], []) == []


def test_the_answer_is_sent_ahead_and_a_lost_one_comes_back_after_the_lease(client, headers, db, admin_conn):
    config = BankConfig(test_mode=True, test_delay_ms=250, test_success=True)
    payment_id = create(client, headers)
    sent = [(ids, countdown) for ids, countdown in sweep(db, config) if payment_id in ids]
    # One task, due when the bank answers (250 ms rounded up to the 100 ms step).
    assert [countdown for _, countdown in sent] == [pytest.approx(0.3)]
    status, delay, lease = row(admin_conn, payment_id)
    assert status == "processing" and delay == pytest.approx(0.25, abs=0.01)
    assert lease == pytest.approx(bank_schedule.LEASE_SECONDS)  # back for the sweeper only if that task is lost
    assert not [ids for ids, _ in sweep(db, config) if payment_id in ids]

    # The task is lost: once the lease runs out, the sweeper sends the answer again, at once.
    with admin_conn.cursor() as cur:
        cur.execute(
            "UPDATE payments.payments SET bank_due_at = now() - interval '11 seconds', "
            "next_run_at = now() - interval '1 second' WHERE id = %s",
            (payment_id,),
        )
    resent = [(ids, countdown) for ids, countdown in sweep(db, config) if payment_id in ids]
    assert [countdown for _, countdown in resent] == [0.0]
    assert row(admin_conn, payment_id)[2] > 0  # under a new lease
    assert bank_schedule.process_payments(db, config, resent[0][0]) >= 1
    # The first task turns up after all: it finds nothing to do.
    assert bank_schedule.process_payments(db, config, sent[0][0]) == 0
    assert row(admin_conn, payment_id)[0] == "success"
    assert final_events(admin_conn, payment_id) == ["payment.success"]


def test_a_task_that_runs_before_the_answer_is_due_is_sent_again_for_then(client, headers, db, admin_conn):
    config = BankConfig(test_mode=True, test_delay_ms=3000, test_success=False)
    payment_id = create(client, headers, vpa="someone@okaxis")
    (ids,) = [ids for ids, _ in sweep(db, config) if payment_id in ids]
    again: list[tuple[list[str], float]] = []
    assert bank_schedule.process_payments(db, config, ids, dispatch=lambda i, c: again.append((i, c))) == 0
    (early_ids, countdown), *_ = again
    assert payment_id in early_ids and 2.0 < countdown <= 3.0
    assert row(admin_conn, payment_id)[0] == "processing"
    assert final_events(admin_conn, payment_id) == []

    with admin_conn.cursor() as cur:
        cur.execute("UPDATE payments.payments SET bank_due_at = now() WHERE id = %s", (payment_id,))
    assert bank_schedule.process_payments(db, config, early_ids) >= 1
    assert row(admin_conn, payment_id)[0] == "failed"
    assert final_events(admin_conn, payment_id) == ["payment.failed"]


def test_the_answer_schedule_gives_batches_when_due_and_keeps_failed_ones():
    now = [100.0]
    schedule = bank_schedule.AnswerSchedule(clock=lambda: now[0])
    schedule.add(["late"], 2.0)
    schedule.add(["soon"], 0.5)
    schedule.add(["also_soon"], 0.5)
    assert schedule.take_due() == []
    now[0] = 100.5
    assert schedule.take_due() == [["soon"], ["also_soon"]]
    assert len(schedule) == 1

    class DatabaseDown:
        def transaction(self):
            raise RuntimeError("database down")

    now[0] = 102.0
    with pytest.raises(RuntimeError):
        schedule.run_due(DatabaseDown(), BankConfig())
    assert schedule.take_due() == []  # kept, for a second later
    now[0] = 102.0 + bank_schedule.ANSWER_RETRY_SECONDS
    assert schedule.take_due() == [["late"]]


def test_scheduled_answers_are_given_when_due(client, headers, db, admin_conn):
    config = BankConfig(test_mode=True, test_delay_ms=200, test_success=True)
    payment_id = create(client, headers)
    schedule = bank_schedule.AnswerSchedule()
    bank_schedule.sweep_due(db, config, schedule.add)
    assert row(admin_conn, payment_id)[0] == "processing"
    deadline = time.monotonic() + 5
    while row(admin_conn, payment_id)[0] == "processing" and time.monotonic() < deadline:
        schedule.run_due(db, config)
        time.sleep(0.02)
    status = row(admin_conn, payment_id)[0]
    assert status == "success"
    with admin_conn.cursor() as cur:
        cur.execute("SELECT extract(epoch FROM updated_at - bank_due_at)::float8 FROM payments.payments WHERE id = %s", (payment_id,))
        late = cur.fetchone()[0]
    assert 0 <= late < 1.0  # answered once due, not a lease later
    assert final_events(admin_conn, payment_id) == ["payment.success"]
