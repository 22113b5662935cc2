"""/payments/stats reads per-day totals the triggers keep, equal to a scan after every write path."""

from __future__ import annotations

import concurrent.futures

import psycopg
from payments import bank_schedule
from payments.bank import BankConfig

CONFIG = BankConfig(test_mode=True, test_delay_ms=0, test_success=True)


def _scanned(admin_conn) -> dict:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT merchant_id::text, (created_at AT TIME ZONE 'UTC')::date, status, method, count(*), sum(amount) "
            "FROM payments.payments GROUP BY 1, 2, 3, 4"
        )
        return {tuple(row[:4]): (row[4], int(row[5])) for row in cur.fetchall()}


def _kept(admin_conn) -> dict:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT merchant_id::text, day, status, method, sum(n)::bigint, sum(amount)::bigint "
            "FROM payments.daily_totals GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0"
        )
        return {tuple(row[:4]): (row[4], int(row[5])) for row in cur.fetchall()}


def test_daily_totals_follow_every_write_path(client, headers, db, admin_conn):
    assert _kept(admin_conn) == _scanned(admin_conn)
    order = client.post("/api/v1/orders", json={"amount": 5000}, headers=headers).get_json()
    bodies = [
        {"amount": 1000, "method": "upi", "vpa": "success@upi"},  # group commit
        {"amount": 2500, "method": "upi", "vpa": "failure@upi"},
        {"amount": 700, "method": "card", "card": {"number": "4111111111111111", "expiry_month": 12,
                                                   "expiry_year": 2031, "cvv": "123"}},
        {"order_id": order["id"], "method": "upi", "vpa": "a@okaxis"},  # with an order
    ]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda b: client.post("/api/v1/payments", json=b, headers=headers), bodies * 6))
    assert {r.status_code for r in created} == {201}, [r.get_json() for r in created]
    assert _kept(admin_conn) == _scanned(admin_conn)
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
    assert _kept(admin_conn) == _scanned(admin_conn)
    bank_schedule.process_payments(db, CONFIG, [r.get_json()["id"] for r in created])
    assert _kept(admin_conn) == _scanned(admin_conn)
    # A capture changes no total; a rolled-back change leaves them as they were; a delete takes its rows out.
    captured = next(r.get_json()["id"] for r in created if r.get_json()["method"] == "card")
    client.post(f"/api/v1/payments/{captured}/capture", json={}, headers=headers)
    conn = psycopg.connect(admin_conn.info.dsn)
    with conn.cursor() as cur:
        cur.execute("UPDATE payments.payments SET status = 'failed' WHERE status = 'success' AND NOT captured")
    conn.rollback()
    conn.close()
    assert _kept(admin_conn) == _scanned(admin_conn)
    with admin_conn.cursor() as cur:
        cur.execute(
            "DELETE FROM payments.payments WHERE id IN (SELECT id FROM payments.payments WHERE status = 'failed' "
            "AND order_id IS NULL AND id NOT IN (SELECT payment_id FROM payments.applied_refunds) LIMIT 2)"
        )
    assert _kept(admin_conn) == _scanned(admin_conn)


def test_stats_equal_the_kept_totals_and_do_not_read_the_payments_table(client, headers, admin_conn):
    before = client.get("/api/v1/payments/stats", headers=headers).get_json()
    conn = psycopg.connect(admin_conn.info.dsn)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE payments.payments IN ACCESS EXCLUSIVE MODE")
        future = pool.submit(lambda: client.get("/api/v1/payments/stats", headers=headers))
        try:
            response = future.result(timeout=10)
        finally:
            conn.rollback()
        assert response.status_code == 200
        assert response.get_json() == before
    finally:
        pool.shutdown(wait=True)
        conn.close()
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'success'), coalesce(sum(amount) FILTER "
            "(WHERE status = 'success'), 0) FROM payments.payments WHERE merchant_id = %s",
            (headers["X-Merchant-Id"],),
        )
        total, success, amount = cur.fetchone()
    assert (before["total_transactions"], before["successful_transactions"], before["total_amount"]) == (
        total, success, amount)


def test_concurrent_writers_keep_the_totals_exact(client, headers, db, admin_conn):
    bodies = [{"amount": 100 + i, "method": "upi", "vpa": "success@upi"} for i in range(64)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        first = list(pool.map(lambda b: client.post("/api/v1/payments", json=b, headers=headers), bodies[:32]))
        bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
        ids = [r.get_json()["id"] for r in first]
        # Bank batches answer in parallel while more payments arrive.
        answers = [pool.submit(bank_schedule.process_payments, db, CONFIG, ids[i::8]) for i in range(8)]
        more = list(pool.map(lambda b: client.post("/api/v1/payments", json=b, headers=headers), bodies[32:]))
        assert sum(a.result() for a in answers) == 32
    assert {r.status_code for r in first + more} == {201}
    assert _kept(admin_conn) == _scanned(admin_conn)
