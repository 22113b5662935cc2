"""Idempotency-Key through nginx: replays, mismatches, scope, and concurrent duplicates."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import psycopg
import pytest
import requests

pytestmark = pytest.mark.e2e


def count_payments(stack, order_id: str) -> int:
    with psycopg.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments WHERE order_id = %s", (order_id,))
        value = cur.fetchone()[0]
    conn.close()
    return value


def new_order(stack, headers, amount=2000) -> dict:
    response = requests.post(f"{stack.api}/orders", json={"amount": amount}, headers=headers, timeout=10)
    assert response.status_code == 201
    return response.json()


def test_sixteen_concurrent_duplicates_create_one_payment(stack, merchant):
    order = new_order(stack, merchant)
    key = f"idem-{uuid.uuid4()}"
    body = {"order_id": order["id"], "method": "upi", "vpa": "user@okicici"}

    def send(_):
        response = requests.post(
            f"{stack.api}/payments", json=body, headers={**merchant, "Idempotency-Key": key}, timeout=30
        )
        return response.status_code, response.content

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(16)))
    assert [status for status, _ in results] == [201] * 16, results
    assert len({content for _, content in results}) == 1
    assert count_payments(stack, order["id"]) == 1


def test_replay_is_byte_identical_and_marked(stack, merchant):
    order = new_order(stack, merchant)
    key = f"idem-{uuid.uuid4()}"
    body = {
        "order_id": order["id"],
        "method": "card",
        "card": {"number": "4111111111111111", "expiry_month": "12", "expiry_year": "2030", "cvv": "123"},
    }
    first = requests.post(f"{stack.api}/payments", json=body, headers={**merchant, "Idempotency-Key": key}, timeout=10)
    second = requests.post(f"{stack.api}/payments", json=body, headers={**merchant, "Idempotency-Key": key}, timeout=10)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.headers.get("Idempotent-Replayed") is None
    assert count_payments(stack, order["id"]) == 1


def test_same_key_different_request_is_422(stack, merchant):
    key = f"idem-{uuid.uuid4()}"
    first = requests.post(
        f"{stack.api}/orders", json={"amount": 1000}, headers={**merchant, "Idempotency-Key": key}, timeout=10
    )
    assert first.status_code == 201
    other = requests.post(
        f"{stack.api}/orders", json={"amount": 2000}, headers={**merchant, "Idempotency-Key": key}, timeout=10
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_MISMATCH"


def test_keys_are_scoped_to_the_merchant(stack, merchant, other_merchant):
    key = f"idem-{uuid.uuid4()}"
    mine = requests.post(
        f"{stack.api}/orders", json={"amount": 1000}, headers={**merchant, "Idempotency-Key": key}, timeout=10
    )
    theirs = requests.post(
        f"{stack.api}/orders", json={"amount": 1000}, headers={**other_merchant, "Idempotency-Key": key}, timeout=10
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert mine.json()["merchant_id"] != theirs.json()["merchant_id"]


def test_public_payment_honours_the_key(stack, merchant):
    order = new_order(stack, merchant)
    key = f"idem-{uuid.uuid4()}"
    body = {"order_id": order["id"], "method": "upi", "vpa": "a@b", "key": "key_test_abc123"}

    def send(_):
        response = requests.post(
            f"{stack.api}/payments/public", json=body, headers={"Idempotency-Key": key}, timeout=30
        )
        return response.status_code, response.content

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert {status for status, _ in results} == {201}
    assert len({content for _, content in results}) == 1
    assert count_payments(stack, order["id"]) == 1


def test_capture_honours_the_key(stack, merchant):
    payment = requests.post(
        f"{stack.api}/payments",
        json={"amount": 3000, "method": "upi", "vpa": "success@upi"},
        headers=merchant,
        timeout=10,
    ).json()
    deadline = time.monotonic() + 30
    while (
        requests.get(f"{stack.api}/payments/{payment['id']}", headers=merchant, timeout=10).json()["status"]
        != "success"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    key = f"idem-{uuid.uuid4()}"
    first = requests.post(
        f"{stack.api}/payments/{payment['id']}/capture",
        json={"amount": 3000},
        headers={**merchant, "Idempotency-Key": key},
        timeout=10,
    )
    second = requests.post(
        f"{stack.api}/payments/{payment['id']}/capture",
        json={"amount": 3000},
        headers={**merchant, "Idempotency-Key": key},
        timeout=10,
    )
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and second.headers.get("Idempotent-Replayed") == "true"
    fresh = requests.post(
        f"{stack.api}/payments/{payment['id']}/capture", json={"amount": 3000}, headers=merchant, timeout=10
    )
    assert fresh.status_code == 400


def test_overlong_key_is_400(stack, merchant):
    response = requests.post(
        f"{stack.api}/orders", json={"amount": 100}, headers={**merchant, "Idempotency-Key": "k" * 256}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST_ERROR"
