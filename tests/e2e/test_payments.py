"""Payments through nginx with the real bank worker (API.md, Payments)."""

from __future__ import annotations

import concurrent.futures
import re
import time

import psycopg
import pytest
import requests

pytestmark = pytest.mark.e2e

PAY_ID = re.compile(r"^pay_[A-Za-z0-9]{16}$")
CARD = {
    "number": "4111111111111111",
    "expiry_month": "12",
    "expiry_year": "2030",
    "cvv": "123",
    "holder_name": "John Doe",
}
FIELDS = {
    "id",
    "order_id",
    "merchant_id",
    "amount",
    "currency",
    "method",
    "status",
    "captured",
    "amount_refunded",
    "created_at",
    "updated_at",
}
PUBLIC_FIELDS = {"id", "order_id", "status", "amount", "currency", "method", "error_code", "error_description"}


def envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["description"]
    return body


def new_order(stack, headers, amount=50000, currency="INR") -> dict:
    response = requests.post(
        f"{stack.api}/orders", json={"amount": amount, "currency": currency}, headers=headers, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()


def pay(stack, headers, **body) -> requests.Response:
    return requests.post(f"{stack.api}/payments", json=body, headers=headers, timeout=10)


def get(stack, headers, payment_id) -> dict:
    response = requests.get(f"{stack.api}/payments/{payment_id}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_final(stack, headers, payment_id, timeout=30.0) -> tuple[dict, list[str]]:
    """Poll until the payment is success or failed; return it and the statuses seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        body = get(stack, headers, payment_id)
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in ("success", "failed"):
            return body, seen
        assert time.monotonic() < deadline, f"payment {payment_id} still {body['status']}"
        time.sleep(0.05)


def db_count(stack, sql, params=()) -> int:
    with psycopg.connect(stack.database_url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        value = cur.fetchone()[0]
    conn.close()
    return value


def test_upi_payment_is_pending_then_processing_then_success(stack, merchant):
    order = new_order(stack, merchant)
    response = pay(stack, merchant, order_id=order["id"], method="upi", vpa="user@paytm")
    assert response.status_code == 201
    payment = response.json()
    assert FIELDS <= set(payment) and PAY_ID.match(payment["id"])
    assert "card_network" not in payment and "card_last4" not in payment
    assert (
        payment["status"],
        payment["order_id"],
        payment["amount"],
        payment["currency"],
        payment["method"],
        payment["vpa"],
    ) == ("pending", order["id"], 50000, "INR", "upi", "user@paytm")
    assert payment["captured"] is False and payment["amount_refunded"] == 0
    final, seen = wait_final(stack, merchant, payment["id"])
    assert seen[-1] == "success" and final["error_code"] is None
    order_of_states = ["pending", "processing", "success"]
    assert seen == sorted(seen, key=order_of_states.index), seen
    if int(stack.env.get("TEST_PROCESSING_DELAY", "1000")) >= 500:
        assert "processing" in seen, seen
    assert requests.get(f"{stack.api}/orders/{order['id']}", headers=merchant, timeout=10).json()["status"] == "paid"


def test_card_payment_stores_network_and_last4_only(stack, merchant):
    order = new_order(stack, merchant, amount=2500)
    response = pay(stack, merchant, order_id=order["id"], method="card", card={**CARD, "number": "5555555555554444"})
    assert response.status_code == 201
    payment = response.json()
    assert (payment["card_network"], payment["card_last4"], payment["amount"]) == ("mastercard", "4444", 2500)
    assert "vpa" not in payment and "5555555555554444" not in response.text and "cvv" not in response.text
    assert (
        db_count(stack, "SELECT count(*) FROM payments.payments p WHERE p::text LIKE %s", ("%5555555555554444%",)) == 0
    )
    final, _ = wait_final(stack, merchant, payment["id"])
    assert final["status"] == "success"


@pytest.mark.parametrize(
    ("number", "network"),
    [
        ("4111111111111111", "visa"),
        ("378282246310005", "amex"),
        ("6521111111111110", "rupay"),
        ("8111111111111112", "rupay"),
        ("6011000990139424", "rupay"),
    ],
)
def test_card_networks(stack, merchant, number, network):
    response = pay(stack, merchant, amount=100, method="card", card={**CARD, "number": number})
    assert response.status_code == 201, response.text
    assert response.json()["card_network"] == network


def test_short_form_payment(stack, merchant):
    response = pay(stack, merchant, amount=1000, currency="INR", method="upi", vpa="test@upi", order_id="order_12345")
    assert response.status_code == 201
    body = response.json()
    assert (body["order_id"], body["amount"], body["currency"], body["status"]) == (
        "order_12345",
        1000,
        "INR",
        "pending",
    )


def test_deterministic_failures(stack, merchant):
    cases = {
        "failure@upi": {"method": "upi", "vpa": "failure@upi"},
        "CARD_DECLINED": {"method": "card", "card": {**CARD, "number": "4000000000000002"}},
        "INSUFFICIENT_FUNDS": {"method": "card", "card": {**CARD, "number": "4000000000009995"}},
    }
    ids = {name: pay(stack, merchant, amount=1000, **body).json()["id"] for name, body in cases.items()}
    ok = pay(stack, merchant, amount=1000, method="upi", vpa="success@upi").json()["id"]
    for name, payment_id in ids.items():
        final, _ = wait_final(stack, merchant, payment_id)
        assert final["status"] == "failed"
        assert final["error_code"] and final["error_description"]
        if name != "failure@upi":
            assert final["error_code"] == name
        public = requests.get(f"{stack.api}/payments/{payment_id}/public", timeout=10).json()
        assert set(public) == PUBLIC_FIELDS
        assert (public["status"], public["error_code"]) == ("failed", final["error_code"])
    assert wait_final(stack, merchant, ok)[0]["status"] == "success"


def test_amount_must_equal_the_orders_and_unknown_orders_are_404(stack, merchant, other_merchant):
    order = new_order(stack, merchant, amount=5000)
    envelope(pay(stack, merchant, order_id=order["id"], amount=4000, method="upi", vpa="a@b"), 400, "BAD_REQUEST_ERROR")
    assert pay(stack, merchant, order_id=order["id"], amount=5000, method="upi", vpa="a@b").status_code == 201
    envelope(pay(stack, merchant, order_id="order_0000000000000000", method="upi", vpa="a@b"), 404, "NOT_FOUND_ERROR")
    envelope(pay(stack, other_merchant, order_id=order["id"], method="upi", vpa="a@b"), 404, "NOT_FOUND_ERROR")


def test_other_merchants_payment_is_404(stack, merchant, other_merchant):
    payment = pay(stack, merchant, amount=100, method="upi", vpa="a@b").json()
    envelope(
        requests.get(f"{stack.api}/payments/{payment['id']}", headers=other_merchant, timeout=10),
        404,
        "NOT_FOUND_ERROR",
    )
    envelope(
        requests.post(f"{stack.api}/payments/{payment['id']}/capture", headers=other_merchant, timeout=10),
        404,
        "NOT_FOUND_ERROR",
    )
    envelope(
        requests.get(f"{stack.api}/payments/pay_0000000000000000", headers=merchant, timeout=10), 404, "NOT_FOUND_ERROR"
    )
    listed = requests.get(f"{stack.api}/payments?limit=100", headers=other_merchant, timeout=10).json()["data"]
    assert payment["id"] not in {p["id"] for p in listed}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 1000, "method": "upi", "vpa": "bad vpa"}, "INVALID_VPA"),
        ({"amount": 1000, "method": "upi", "vpa": "user@bank.com"}, "INVALID_VPA"),
        ({"amount": 1000, "method": "upi"}, "INVALID_VPA"),
        ({"amount": 1000, "method": "card", "card": {**CARD, "number": "4111111111111112"}}, "INVALID_CARD"),
        ({"amount": 1000, "method": "card", "card": {**CARD, "number": "4111"}}, "INVALID_CARD"),
        ({"amount": 1000, "method": "card", "card": {**CARD, "cvv": "1"}}, "INVALID_CARD"),
        ({"amount": 1000, "method": "card", "card": {**CARD, "expiry_year": "2001"}}, "EXPIRED_CARD"),
        ({"amount": 1000, "method": "card", "card": {**CARD, "expiry_month": "00"}}, "EXPIRED_CARD"),
        ({"amount": 1000, "method": "cash"}, "BAD_REQUEST_ERROR"),
        ({"amount": "1000", "method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
        ({"amount": 1000.5, "method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
        ({"amount": -1000, "method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
        ({"amount": 10**25, "method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
        ({"amount": 99, "method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
        ({"amount": 1000, "currency": "ABC", "method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
        ({"amount": 1000, "method": "upi", "vpa": "a@b", "extra": 1}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
        ({"amount": 1000, "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
    ],
)
def test_invalid_payments_are_4xx_and_create_nothing(stack, merchant, body, code):
    before = db_count(stack, "SELECT count(*) FROM payments.payments")
    envelope(pay(stack, merchant, **body), 400, code)
    assert db_count(stack, "SELECT count(*) FROM payments.payments") == before


def test_malformed_json_and_wrong_content_are_400(stack, merchant):
    for data in ("{", "[1]", "null", '"x"'):
        response = requests.post(
            f"{stack.api}/payments", data=data, headers={**merchant, "Content-Type": "application/json"}, timeout=10
        )
        envelope(response, 400, "BAD_REQUEST_ERROR")
    envelope(
        requests.post(f"{stack.api}/payments", data="amount=100", headers=merchant, timeout=10),
        400,
        "BAD_REQUEST_ERROR",
    )


def test_list_filters_and_alias(stack, other_merchant):
    order = new_order(stack, other_merchant, amount=3000)
    upi = pay(stack, other_merchant, order_id=order["id"], method="upi", vpa="failure@upi").json()
    card = pay(stack, other_merchant, amount=400, method="card", card=CARD).json()
    wait_final(stack, other_merchant, upi["id"])
    wait_final(stack, other_merchant, card["id"])
    page = requests.get(f"{stack.api}/payments?limit=2&offset=0", headers=other_merchant, timeout=10).json()
    assert set(page) == {"data", "total", "total_is_estimate", "has_more", "limit", "offset"} and (page["limit"], page["offset"]) == (2, 0)
    assert [p["id"] for p in page["data"]] == [card["id"], upi["id"]]
    assert (
        requests.get(f"{stack.api}/payments/list?limit=2&offset=0", headers=other_merchant, timeout=10).json() == page
    )

    def ids(query):
        response = requests.get(f"{stack.api}/payments?{query}", headers=other_merchant, timeout=10)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["data"]]

    assert upi["id"] in ids("status=failed&limit=100") and card["id"] not in ids("status=failed&limit=100")
    assert card["id"] in ids("method=card&limit=100") and upi["id"] not in ids("method=card&limit=100")
    assert ids(f"q={upi['id']}") == [upi["id"]]
    assert ids(f"q={order['id']}") == [upi["id"]]
    envelope(
        requests.get(f"{stack.api}/payments?status=bogus", headers=other_merchant, timeout=10), 400, "BAD_REQUEST_ERROR"
    )
    envelope(
        requests.get(f"{stack.api}/payments?limit=-1", headers=other_merchant, timeout=10), 400, "BAD_REQUEST_ERROR"
    )


def test_public_payment_by_header_or_body_key(stack, merchant):
    order = new_order(stack, merchant, amount=900)
    by_header = requests.post(
        f"{stack.api}/payments/public",
        json={"order_id": order["id"], "method": "upi", "vpa": "success@upi"},
        headers={"X-Api-Key": "key_test_abc123"},
        timeout=10,
    )
    assert by_header.status_code == 201, by_header.text
    payment = by_header.json()
    assert FIELDS <= set(payment) and payment["status"] == "pending" and payment["amount"] == 900
    by_body = requests.post(
        f"{stack.api}/payments/public",
        # Another order: two successes for one order would leave the later one failed (ORDER_ALREADY_PAID).
        json={"order_id": new_order(stack, merchant, amount=900)["id"], "method": "card", "card": CARD, "key": "key_test_abc123"},
        timeout=10,
    )
    assert by_body.status_code == 201, by_body.text
    public = requests.get(f"{stack.api}/payments/{payment['id']}/public", timeout=10)
    assert public.status_code == 200 and set(public.json()) == PUBLIC_FIELDS
    assert (public.json()["order_id"], public.json()["amount"], public.json()["method"]) == (order["id"], 900, "upi")
    wait_final(stack, merchant, payment["id"])
    assert requests.get(f"{stack.api}/payments/{payment['id']}/public", timeout=10).json()["status"] == "success"


def test_public_payment_key_must_match_the_orders_merchant(stack, merchant, other_merchant):
    order = new_order(stack, merchant, amount=900)
    body = {"order_id": order["id"], "method": "upi", "vpa": "a@b"}
    envelope(
        requests.post(f"{stack.api}/payments/public", json=body, headers={"X-Api-Key": "key_wrong"}, timeout=10),
        401,
        "AUTHENTICATION_ERROR",
    )
    envelope(
        requests.post(
            f"{stack.api}/payments/public", json=body, headers={"X-Api-Key": other_merchant["X-Api-Key"]}, timeout=10
        ),
        404,
        "NOT_FOUND_ERROR",
    )
    spoofed = {"X-Api-Key": other_merchant["X-Api-Key"], "X-Merchant-Id": "550e8400-e29b-41d4-a716-446655440000"}
    envelope(
        requests.post(f"{stack.api}/payments/public", json=body, headers=spoofed, timeout=10), 404, "NOT_FOUND_ERROR"
    )
    envelope(requests.get(f"{stack.api}/payments/pay_0000000000000000/public", timeout=10), 404, "NOT_FOUND_ERROR")


def test_public_payment_with_only_the_order_id(stack, merchant, other_merchant):
    """The hosted page's link names only the order: the order names the merchant, no key needed."""
    order = new_order(stack, other_merchant, amount=800)
    response = requests.post(
        f"{stack.api}/payments/public", json={"order_id": order["id"], "method": "upi", "vpa": "success@upi"}, timeout=10
    )
    assert response.status_code == 201, response.text
    payment = response.json()
    assert (payment["merchant_id"], payment["order_id"], payment["amount"]) == (order["merchant_id"], order["id"], 800)
    wait_final(stack, other_merchant, payment["id"])
    assert requests.get(f"{stack.api}/payments/{payment['id']}", headers=other_merchant, timeout=10).json()["status"] == "success"
    envelope(requests.get(f"{stack.api}/payments/{payment['id']}", headers=merchant, timeout=10), 404, "NOT_FOUND_ERROR")
    # Paid now: a second payment for it is refused; an unknown order names no merchant.
    again = requests.post(f"{stack.api}/payments/public", json={"order_id": order["id"], "method": "upi", "vpa": "a@b"}, timeout=10)
    envelope(again, 400, "BAD_REQUEST_ERROR")
    unknown = {"order_id": "order_doesnotexist0000", "method": "upi", "vpa": "a@b"}
    envelope(requests.post(f"{stack.api}/payments/public", json=unknown, timeout=10), 404, "NOT_FOUND_ERROR")


def test_capture(stack, merchant):
    payment = pay(stack, merchant, amount=5000, method="upi", vpa="success@upi").json()
    wait_final(stack, merchant, payment["id"])
    envelope(
        requests.post(
            f"{stack.api}/payments/{payment['id']}/capture", json={"amount": 4000}, headers=merchant, timeout=10
        ),
        400,
        "BAD_REQUEST_ERROR",
    )
    envelope(
        requests.post(
            f"{stack.api}/payments/{payment['id']}/capture", json={"amount": "5000"}, headers=merchant, timeout=10
        ),
        400,
        "BAD_REQUEST_ERROR",
    )
    captured = requests.post(
        f"{stack.api}/payments/{payment['id']}/capture", json={"amount": 5000}, headers=merchant, timeout=10
    )
    assert captured.status_code == 200, captured.text
    body = captured.json()
    assert body["captured"] is True and body["captured_at"] and body["status"] == "success"
    again = requests.post(f"{stack.api}/payments/{payment['id']}/capture", headers=merchant, timeout=10)
    assert envelope(again, 400, "BAD_REQUEST_ERROR")["error"]["description"] == "Payment not in capturable state"
    assert get(stack, merchant, payment["id"])["captured"] is True


def test_failed_payment_cannot_be_captured(stack, merchant):
    payment = pay(stack, merchant, amount=5000, method="upi", vpa="failure@upi").json()
    # Pending or failed, it is never capturable: the answer does not depend on the bank's timing.
    early = requests.post(f"{stack.api}/payments/{payment['id']}/capture", headers=merchant, timeout=10)
    assert envelope(early, 400, "BAD_REQUEST_ERROR")["error"]["description"] == "Payment not in capturable state"
    wait_final(stack, merchant, payment["id"])
    response = requests.post(f"{stack.api}/payments/{payment['id']}/capture", headers=merchant, timeout=10)
    assert envelope(response, 400, "BAD_REQUEST_ERROR")["error"]["description"] == "Payment not in capturable state"


def test_concurrent_captures_capture_once(stack, merchant):
    payment = pay(stack, merchant, amount=5000, method="upi", vpa="success@upi").json()
    wait_final(stack, merchant, payment["id"])

    def capture(_):
        return requests.post(f"{stack.api}/payments/{payment['id']}/capture", headers=merchant, timeout=15).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(capture, range(10)))
    assert sorted(statuses) == [200] + [400] * 9


def test_stats_for_the_dashboard(stack, other_merchant):
    response = requests.get(f"{stack.api}/payments/stats?days=14", headers=other_merchant, timeout=10)
    assert response.status_code == 200
    stats = response.json()
    assert set(stats) == {
        "total_transactions",
        "successful_transactions",
        "failed_transactions",
        "total_amount",
        "success_rate",
        "currency",
        "daily",
    }
    assert stats["currency"] == "INR" and len(stats["daily"]) == 14
    assert set(stats["daily"][-1]) == {"date", "count", "success_count", "amount", "success_rate"}
    final = stats["successful_transactions"] + stats["failed_transactions"]
    if final:
        assert stats["success_rate"] == round(stats["successful_transactions"] * 100 / final, 2)
    assert (
        stats["total_transactions"]
        == requests.get(f"{stack.api}/payments?limit=1", headers=other_merchant, timeout=10).json()["total"]
    )


def test_jobs_status_and_health_report_real_workers(stack, merchant):
    jobs = requests.get(f"{stack.api}/test/jobs/status", timeout=10)
    assert jobs.status_code == 200
    body = jobs.json()
    assert set(body) == {"pending", "processing", "completed", "failed", "worker_status"}
    assert body["worker_status"] == "running"
    assert body["completed"] == db_count(stack, "SELECT count(*) FROM payments.payments WHERE status = 'success'")
    health = requests.get(f"{stack.base}/health", timeout=10).json()
    assert health["status"] == "healthy" and health["workers"]["payments"] == "running"
