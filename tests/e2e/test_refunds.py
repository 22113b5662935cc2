"""Refunds through nginx: the API.md Refunds contract, the refund invariant, processing end to end."""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
REFUND_FIELDS = {"id", "payment_id", "merchant_id", "amount", "reason", "status", "created_at", "processed_at"}
TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
DEADLINE = 45.0
ROOT = Path(__file__).resolve().parents[2]


def assert_envelope(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    return body["error"]["description"]


def poll(fetch: Callable[[], dict], done: Callable[[dict], bool], what: str, deadline: float = DEADLINE) -> dict:
    """Fetch until ``done`` holds or the deadline passes."""
    end = time.monotonic() + deadline
    last: dict = {}
    while time.monotonic() < end:
        last = fetch()
        if done(last):
            return last
        time.sleep(0.2)
    pytest.fail(f"{what} not reached within {deadline}s; last: {last}")


def create_payments(stack, headers: dict, amount: int, count: int = 1, vpa: str = "success@upi") -> list[str]:
    """Create orders and pay them by UPI; return the payment ids (not waiting for the bank)."""
    ids = []
    for _ in range(count):
        order = requests.post(
            f"{stack.api}/orders", json={"amount": amount, "currency": "INR"}, headers=headers, timeout=10
        )
        assert order.status_code == 201, order.text
        payment = requests.post(
            f"{stack.api}/payments",
            json={"order_id": order.json()["id"], "method": "upi", "vpa": vpa},
            headers=headers,
            timeout=10,
        )
        assert payment.status_code == 201, payment.text
        ids.append(payment.json()["id"])
    return ids


def get_payment(stack, headers: dict, payment_id: str) -> dict:
    response = requests.get(f"{stack.api}/payments/{payment_id}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def settled(stack, headers: dict, payment_ids: list[str], status: str = "success") -> list[str]:
    """Wait until every payment has the final ``status``."""
    for payment_id in payment_ids:
        poll(
            lambda pid=payment_id: get_payment(stack, headers, pid),
            lambda p: p["status"] == status,
            f"payment {payment_id} {status}",
        )
    return payment_ids


@pytest.fixture(scope="module")
def payments(stack, merchant) -> list[str]:
    """Successful 10,000-paise payments of the test merchant, one per test that needs one."""
    return settled(stack, merchant, create_payments(stack, merchant, 10_000, count=8))


@pytest.fixture
def payment(payments: list[str]) -> str:
    """A fresh successful payment; ``payments[0]`` stays as a target for requests that must fail."""
    assert len(payments) > 1, "raise the count in the payments fixture"
    return payments.pop()


def refund(stack, headers: dict, payment_id: str, body: object) -> requests.Response:
    return requests.post(f"{stack.api}/payments/{payment_id}/refunds", json=body, headers=headers, timeout=10)


def test_create_refund_answers_201_pending(stack, merchant, payment) -> None:
    response = refund(stack, merchant, payment, {"amount": 500, "reason": "Customer request"})
    assert response.status_code == 201, response.text
    assert response.headers.get("X-Request-Id")
    body = response.json()
    assert set(body) == REFUND_FIELDS
    assert re.fullmatch(r"rfnd_[A-Za-z0-9]{16}", body["id"])
    assert body["payment_id"] == payment
    assert body["merchant_id"] == TEST_MERCHANT_ID
    assert body["amount"] == 500
    assert body["reason"] == "Customer request"
    assert body["status"] == "pending"
    assert ISO.match(body["created_at"])
    assert body["processed_at"] is None


def test_refund_is_processed_and_payment_amount_refunded_follows(stack, merchant, payment) -> None:
    first = refund(stack, merchant, payment, {"amount": 2_500, "reason": "Damaged"}).json()
    second = refund(stack, merchant, payment, {"amount": 1_000}).json()
    for created in (first, second):
        got = poll(
            lambda rid=created["id"]: requests.get(f"{stack.api}/refunds/{rid}", headers=merchant, timeout=10).json(),
            lambda r: r["status"] == "processed",
            f"refund {created['id']} processed",
        )
        assert ISO.match(got["processed_at"])
        assert got["processed_at"] >= got["created_at"]
        assert {k: v for k, v in got.items() if k not in ("status", "processed_at")} == {
            k: v for k, v in created.items() if k not in ("status", "processed_at")
        }
    paid = poll(
        lambda: get_payment(stack, merchant, payment),
        lambda p: p["amount_refunded"] == 3_500,
        "payment amount_refunded 3500",
    )
    assert paid["status"] == "success"


def test_partial_refunds_never_exceed_the_payment(stack, merchant, payment) -> None:
    assert refund(stack, merchant, payment, {"amount": 6_000}).status_code == 201
    over = refund(stack, merchant, payment, {"amount": 4_001})
    assert assert_envelope(over, 400, "BAD_REQUEST_ERROR") == "Refund amount exceeds available amount"
    assert refund(stack, merchant, payment, {"amount": 4_000}).status_code == 201
    assert_envelope(refund(stack, merchant, payment, {"amount": 1}), 400, "BAD_REQUEST_ERROR")


def test_twenty_concurrent_refunds_exactly_three_succeed(stack, merchant, payment) -> None:
    barrier = threading.Barrier(20)
    codes: list[int] = []
    lock = threading.Lock()

    def fire() -> None:
        with requests.Session() as session:
            barrier.wait()
            for _ in range(50):
                response = session.post(
                    f"{stack.api}/payments/{payment}/refunds", json={"amount": 3_000}, headers=merchant, timeout=30
                )
                if response.status_code != 503:  # 503: nothing was changed (e.g. DB connections exhausted)
                    break
                time.sleep(0.1)
        with lock:
            codes.append(response.status_code)

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Counter(codes) == {201: 3, 400: 17}
    listed = requests.get(f"{stack.api}/payments/{payment}/refunds", headers=merchant, timeout=10).json()
    assert listed["total"] == 3
    assert sum(r["amount"] for r in listed["data"]) == 9_000


def test_lists_are_paginated_newest_first(stack, merchant, payment) -> None:
    created = [refund(stack, merchant, payment, {"amount": 100 * (i + 1)}).json() for i in range(3)]
    of_payment = requests.get(f"{stack.api}/payments/{payment}/refunds", headers=merchant, timeout=10)
    assert of_payment.status_code == 200
    body = of_payment.json()
    assert set(body) == {"data", "total", "total_is_estimate", "has_more", "limit", "offset"}
    assert body["total"] == 3
    assert [r["id"] for r in body["data"]] == [r["id"] for r in reversed(created)]
    assert all(set(r) == REFUND_FIELDS for r in body["data"])

    page = requests.get(f"{stack.api}/payments/{payment}/refunds?limit=1&offset=1", headers=merchant, timeout=10).json()
    assert page["limit"] == 1 and page["offset"] == 1 and page["total"] == 3
    assert [r["id"] for r in page["data"]] == [created[1]["id"]]

    everything = requests.get(f"{stack.api}/refunds?limit=2&offset=0", headers=merchant, timeout=10)
    assert everything.status_code == 200
    listed = everything.json()
    assert listed["limit"] == 2 and listed["offset"] == 0 and listed["total"] >= 3
    assert [r["id"] for r in listed["data"]] == [created[2]["id"], created[1]["id"]]

    assert_envelope(
        requests.get(f"{stack.api}/refunds?limit=0", headers=merchant, timeout=10), 400, "BAD_REQUEST_ERROR"
    )


def test_another_merchant_sees_404(stack, merchant, other_merchant, payment) -> None:
    created = refund(stack, merchant, payment, {"amount": 100}).json()
    assert_envelope(
        requests.get(f"{stack.api}/refunds/{created['id']}", headers=other_merchant, timeout=10), 404, "NOT_FOUND_ERROR"
    )
    assert_envelope(refund(stack, other_merchant, payment, {"amount": 100}), 404, "NOT_FOUND_ERROR")
    assert_envelope(
        requests.get(f"{stack.api}/payments/{payment}/refunds", headers=other_merchant, timeout=10),
        404,
        "NOT_FOUND_ERROR",
    )
    theirs = requests.get(f"{stack.api}/refunds", headers=other_merchant, timeout=10).json()
    assert created["id"] not in [r["id"] for r in theirs["data"]]


def test_unknown_ids_are_404(stack, merchant) -> None:
    assert_envelope(refund(stack, merchant, "pay_0000000000000000", {"amount": 100}), 404, "NOT_FOUND_ERROR")
    assert_envelope(
        requests.get(f"{stack.api}/refunds/rfnd_0000000000000000", headers=merchant, timeout=10), 404, "NOT_FOUND_ERROR"
    )
    assert_envelope(
        requests.get(f"{stack.api}/payments/pay_0000000000000000/refunds", headers=merchant, timeout=10),
        404,
        "NOT_FOUND_ERROR",
    )


def test_pending_and_failed_payments_cannot_be_refunded(stack, merchant) -> None:
    failed = settled(stack, merchant, create_payments(stack, merchant, 5_000, vpa="failure@upi"), status="failed")[0]
    description = assert_envelope(refund(stack, merchant, failed, {"amount": 100}), 400, "BAD_REQUEST_ERROR")
    assert "failed" in description
    # Asked at once, before the simulated bank has answered (TEST_PROCESSING_DELAY).
    pending = create_payments(stack, merchant, 5_000)[0]
    response = refund(stack, merchant, pending, {"amount": 100})
    if response.status_code == 201:
        # Only possible if the bank was faster than this request; then the payment had succeeded.
        assert get_payment(stack, merchant, pending)["status"] == "success"
    else:
        description = assert_envelope(response, 400, "BAD_REQUEST_ERROR")
        assert "refundable state" in description
        assert "pending" in description or "processing" in description


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "500"},
        {"amount": 5.5},
        {"amount": True},
        {"amount": 0},
        {"amount": -100},
        {},
        {"amount": 100, "extra": 1},
        [100],
    ],
)
def test_bad_bodies_are_400(stack, merchant, payments, body) -> None:
    # The payment is only used to aim at; none of these may refund anything.
    assert_envelope(refund(stack, merchant, payments[0], body), 400, "BAD_REQUEST_ERROR")


def test_malformed_json_is_400(stack, merchant, payments) -> None:
    response = requests.post(
        f"{stack.api}/payments/{payments[0]}/refunds",
        data=b'{"amount": 5',
        headers={**merchant, "Content-Type": "application/json"},
        timeout=10,
    )
    assert_envelope(response, 400, "BAD_REQUEST_ERROR")


def test_idempotency_key_replays_the_first_answer(stack, merchant, payment) -> None:
    keyed = {**merchant, "Idempotency-Key": f"e2e-refund-{payment}"}
    first = refund(stack, merchant | keyed, payment, {"amount": 300})
    again = refund(stack, keyed, payment, {"amount": 300})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert_envelope(refund(stack, keyed, payment, {"amount": 301}), 422, "IDEMPOTENCY_KEY_MISMATCH")
    listed = requests.get(f"{stack.api}/payments/{payment}/refunds", headers=merchant, timeout=10).json()
    assert listed["total"] == 1


def test_refunds_need_credentials(stack) -> None:
    assert_envelope(requests.get(f"{stack.api}/refunds", timeout=10), 401, "AUTHENTICATION_ERROR")
    assert_envelope(
        requests.post(f"{stack.api}/payments/pay_0000000000000000/refunds", json={"amount": 100}, timeout=10),
        401,
        "AUTHENTICATION_ERROR",
    )


def _receiver_module():
    spec = importlib.util.spec_from_file_location("refunds_webhook_receiver", ROOT / "examples" / "webhook_receiver.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["refunds_webhook_receiver"] = module
    spec.loader.exec_module(module)
    return module


def test_refund_events_reach_the_webhooks_service(stack) -> None:
    # A merchant of our own, so no other test's events mix with ours.
    created = json.loads(
        stack.cli(
            "auth.cli",
            "create-merchant",
            "--name",
            "Refund Webhooks",
            "--email",
            f"rf-{secrets.token_hex(4)}@example.com",
            "--password",
            "pw-" + secrets.token_hex(6),
        )
    )
    headers = {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}
    secret = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    server = _receiver_module().serve_in_thread(secret)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
        configured = requests.put(
            f"{stack.api}/webhooks/config", json={"webhook_url": url}, headers=headers, timeout=10
        )
        assert configured.status_code == 200, configured.text
        payment_id = settled(stack, headers, create_payments(stack, headers, 20_000))[0]
        created_refund = refund(stack, headers, payment_id, {"amount": 7_000, "reason": "Webhook check"}).json()

        def logged() -> dict[str, dict]:
            logs = requests.get(f"{stack.api}/webhooks?limit=50", headers=headers, timeout=10).json()["data"]
            return {log["event"]: log for log in logs if log["event"].startswith("refund.")}

        # Delivery itself (signing, retries) belongs to the webhooks service; what the
        # refunds service owes is that both events reach it, carrying the refund object.
        logs = poll(logged, lambda got: {"refund.created", "refund.processed"} <= set(got), "refund webhook logs")
        final = requests.get(f"{stack.api}/refunds/{created_refund['id']}", headers=headers, timeout=10).json()
        assert final["status"] == "processed"
        for event, expected in (("refund.created", created_refund), ("refund.processed", final)):
            detail = requests.get(f"{stack.api}/webhooks/{logs[event]['id']}", headers=headers, timeout=10).json()
            assert detail["payload"]["event"] == event
            assert detail["payload"]["data"] == {"refund": expected}
        paid = poll(
            lambda: get_payment(stack, headers, payment_id),
            lambda p: p["amount_refunded"] == 7_000,
            "payment amount_refunded 7000",
        )
        assert paid["amount"] == 20_000
    finally:
        server.shutdown()
        server.server_close()
