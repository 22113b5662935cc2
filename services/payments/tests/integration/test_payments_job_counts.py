"""/test/jobs/status counts payments by status from kept counters, not from a scan of the table."""

from __future__ import annotations

import concurrent.futures

import psycopg
from payments import bank_schedule
from payments.bank import BankConfig

CONFIG = BankConfig(test_mode=True, test_delay_ms=0, test_success=True)


def _scanned(admin_conn) -> dict[str, int]:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM payments.payments GROUP BY status")
        counts = dict(cur.fetchall())
    return {
        "pending": counts.get("pending", 0),
        "processing": counts.get("processing", 0),
        "completed": counts.get("success", 0),
        "failed": counts.get("failed", 0),
    }


def _reported(client) -> dict[str, int]:
    body = client.get("/api/v1/test/jobs/status").get_json()
    return {k: body[k] for k in ("pending", "processing", "completed", "failed")}


def test_job_counts_follow_every_write_path(client, headers, db, admin_conn):
    assert _reported(client) == _scanned(admin_conn)
    order = client.post("/api/v1/orders", json={"amount": 5000}, headers=headers).get_json()
    bodies = [
        {"amount": 1000, "method": "upi", "vpa": "success@upi"},  # group commit
        {"amount": 1000, "method": "upi", "vpa": "failure@upi"},
        {"order_id": order["id"], "method": "upi", "vpa": "a@okaxis"},  # with an order
        {"order_id": order["id"], "method": "upi", "vpa": "b@okaxis"},
    ]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda b: client.post("/api/v1/payments", json=b, headers=headers), bodies * 4))
    assert {r.status_code for r in created} == {201}
    assert _reported(client) == _scanned(admin_conn)
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
    assert _reported(client) == _scanned(admin_conn)
    bank_schedule.process_payments(db, CONFIG, [r.get_json()["id"] for r in created])
    assert _reported(client) == _scanned(admin_conn)
    # A rolled-back change leaves the counts as they were.
    conn = psycopg.connect(admin_conn.info.dsn)
    with conn.cursor() as cur:
        cur.execute("UPDATE payments.payments SET status = 'failed' WHERE status = 'success' AND NOT captured")
    conn.rollback()
    conn.close()
    assert _reported(client) == _scanned(admin_conn)


def test_job_counts_do_not_read_the_payments_table(client, admin_conn):
    conn = psycopg.connect(admin_conn.info.dsn)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        with conn.cursor() as cur:
            # Nobody can read the table while this is held; the endpoint must not need to.
            cur.execute("LOCK TABLE payments.payments IN ACCESS EXCLUSIVE MODE")
        future = pool.submit(lambda: client.get("/api/v1/test/jobs/status"))
        try:
            response = future.result(timeout=10)
        finally:
            conn.rollback()  # before waiting for the thread: a blocked request must end either way
        assert response.status_code == 200
    finally:
        pool.shutdown(wait=True)
        conn.close()
