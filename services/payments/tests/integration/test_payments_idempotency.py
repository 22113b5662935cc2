"""Idempotency-Key on the POSTs that create or change money."""

from __future__ import annotations

import concurrent.futures
import uuid


def test_same_key_replays_the_first_answer(client, headers, admin_conn):
    key = f"k-{uuid.uuid4()}"
    body = {"amount": 1000, "method": "upi", "vpa": "a@b", "order_id": "ref-1"}
    first = client.post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
    second = client.post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.get_data() == second.get_data()
    assert second.headers.get("Idempotent-Replayed") == "true"
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM payments.payments WHERE order_id = 'ref-1' AND merchant_id = %s",
            (headers["X-Merchant-Id"],),
        )
        assert cur.fetchone()[0] == 1
    changed = client.post(
        "/api/v1/payments", json={**body, "amount": 2000}, headers={**headers, "Idempotency-Key": key}
    )
    assert changed.status_code == 422
    assert changed.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_MISMATCH"


def test_keys_are_scoped_by_merchant(client, headers, other_headers):
    key = f"k-{uuid.uuid4()}"
    mine = client.post("/api/v1/orders", json={"amount": 100}, headers={**headers, "Idempotency-Key": key})
    theirs = client.post("/api/v1/orders", json={"amount": 100}, headers={**other_headers, "Idempotency-Key": key})
    assert mine.status_code == theirs.status_code == 201
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert theirs.headers.get("Idempotent-Replayed") is None


def test_concurrent_duplicates_create_one_payment(app, headers, admin_conn):
    key = f"k-{uuid.uuid4()}"
    reference = f"ref-{uuid.uuid4().hex[:8]}"
    body = {"amount": 1000, "method": "upi", "vpa": "a@b", "order_id": reference}

    def send(_):
        response = app.test_client().post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
        return response.status_code, response.get_data()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(16)))
    assert {status for status, _ in results} == {201}
    assert len({data for _, data in results}) == 1
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments WHERE order_id = %s", (reference,))
        assert cur.fetchone()[0] == 1


def test_public_payment_and_capture_honour_keys(client, headers, drive_bank):
    order = client.post("/api/v1/orders", json={"amount": 2500}, headers=headers).get_json()
    key = f"k-{uuid.uuid4()}"
    body = {"order_id": order["id"], "method": "upi", "vpa": "success@upi", "key": "key_test_abc123"}
    first = client.post("/api/v1/payments/public", json=body, headers={"Idempotency-Key": key})
    again = client.post("/api/v1/payments/public", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and again.get_data() == first.get_data()
    payment_id = first.get_json()["id"]
    drive_bank([payment_id])
    capture_key = f"k-{uuid.uuid4()}"
    c1 = client.post(
        f"/api/v1/payments/{payment_id}/capture",
        json={"amount": 2500},
        headers={**headers, "Idempotency-Key": capture_key},
    )
    c2 = client.post(
        f"/api/v1/payments/{payment_id}/capture",
        json={"amount": 2500},
        headers={**headers, "Idempotency-Key": capture_key},
    )
    assert c1.status_code == c2.status_code == 200
    assert c1.get_data() == c2.get_data() and c2.headers.get("Idempotent-Replayed") == "true"


def test_invalid_key_is_400(client, headers):
    response = client.post("/api/v1/orders", json={"amount": 100}, headers={**headers, "Idempotency-Key": "x" * 256})
    assert response.status_code == 400


def test_expired_keys_are_pruned(db, admin_conn):
    from payments import service

    with admin_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO payments.idempotency_keys (scope, key, fingerprint, expires_at) "
            "VALUES ('m', 'old', 'f', now() - interval '1 minute'), ('m', 'fresh', 'f', now() + interval '1 hour')"
        )
    while service.prune_idempotency_keys(db):
        pass
    with admin_conn.cursor() as cur:
        cur.execute("SELECT key FROM payments.idempotency_keys WHERE scope = 'm'")
        assert [row[0] for row in cur.fetchall()] == ["fresh"]
