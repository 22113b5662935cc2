"""Test controls through nginx: X-Test-Outcome and X-Test-Delay-Ms on payments and refunds, test instruments."""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.test_payments import envelope, new_order, wait_final

CARD = {"expiry_month": "12", "expiry_year": "2030", "cvv": "123", "holder_name": "Test Shopper"}


def create(stack, url: str, body: dict, headers: dict) -> dict:
    response = requests.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("idempotent", [False, True], ids=["fast path", "with Idempotency-Key"])
def test_outcome_header_decides_a_payment(stack, merchant, idempotent) -> None:
    headers = {**merchant, "X-Test-Outcome": "failed:INSUFFICIENT_FUNDS"}
    if idempotent:
        headers["Idempotency-Key"] = f"controls-{time.monotonic_ns()}"
    payment = create(stack, f"{stack.api}/payments", {"amount": 1200, "method": "upi", "vpa": "success@upi"}, headers)
    done, _ = wait_final(stack, merchant, payment["id"])
    assert (done["status"], done["error_code"]) == ("failed", "INSUFFICIENT_FUNDS")
    assert done["error_description"] == "Insufficient funds in the account"


def test_outcome_header_on_the_public_endpoint(stack, merchant) -> None:
    order = new_order(stack, merchant, amount=1300)
    body = {"order_id": order["id"], "method": "upi", "vpa": "failure@upi"}
    payment = create(stack, f"{stack.api}/payments/public", body, {"X-Test-Outcome": "success"})
    done, _ = wait_final(stack, merchant, payment["id"])
    assert done["status"] == "success"
    assert requests.get(f"{stack.api}/orders/{order['id']}/public", timeout=10).json()["status"] == "paid"


def test_delay_header_makes_one_payment_slow_and_another_instant(stack, merchant) -> None:
    body = {"amount": 1000, "method": "upi", "vpa": "success@upi"}
    slow = create(stack, f"{stack.api}/payments", body, {**merchant, "X-Test-Delay-Ms": "4000"})
    quick = create(stack, f"{stack.api}/payments", body, {**merchant, "X-Test-Delay-Ms": "0"})
    started = time.monotonic()
    wait_final(stack, merchant, quick["id"], timeout=10)
    quick_took = time.monotonic() - started
    # The configured delay is 1 s; asked for 0 the answer comes within the sweep and answer steps.
    assert quick_took < 1.0, quick_took
    assert requests.get(f"{stack.api}/payments/{slow['id']}", headers=merchant, timeout=10).json()["status"] in (
        "pending",
        "processing",
    )
    done, _ = wait_final(stack, merchant, slow["id"], timeout=15)
    assert done["status"] == "success"
    assert time.monotonic() - started >= 3.5


def test_delay_header_on_refunds(stack, merchant) -> None:
    payment = create(stack, f"{stack.api}/payments", {"amount": 5000, "method": "upi", "vpa": "success@upi"},
                     {**merchant, "X-Test-Delay-Ms": "0"})
    wait_final(stack, merchant, payment["id"])
    url = f"{stack.api}/payments/{payment['id']}/refunds"
    held = create(stack, url, {"amount": 100}, {**merchant, "X-Test-Delay-Ms": "600000"})
    instant = create(stack, url, {"amount": 100}, {**merchant, "X-Test-Delay-Ms": "0"})
    deadline = time.monotonic() + 5
    while requests.get(f"{stack.api}/refunds/{instant['id']}", headers=merchant, timeout=10).json()["status"] != "processed":
        assert time.monotonic() < deadline, "a refund asked for no delay was not processed within 5 s"
        time.sleep(0.05)
    assert requests.get(f"{stack.api}/refunds/{held['id']}", headers=merchant, timeout=10).json()["status"] == "pending"


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-Test-Outcome", "sometimes"), ("X-Test-Outcome", "failed:no"), ("X-Test-Delay-Ms", "-1"),
     ("X-Test-Delay-Ms", "86400001")],
)
def test_invalid_controls_are_a_400_through_nginx(stack, merchant, header, value) -> None:
    order = new_order(stack, merchant, amount=1000)
    body = {"order_id": order["id"], "method": "upi", "vpa": "success@upi"}
    for url, headers in ((f"{stack.api}/payments", merchant), (f"{stack.api}/payments/public", {})):
        response = requests.post(url, json=body, headers={**headers, header: value}, timeout=10)
        assert header in envelope(response, 400, "BAD_REQUEST_ERROR")["error"]["description"]
    listed = requests.get(f"{stack.api}/payments", params={"q": order["id"]}, headers=merchant, timeout=10).json()
    assert listed["data"] == []


def test_the_browser_may_send_the_controls(stack) -> None:
    response = requests.options(
        f"{stack.api}/payments/public",
        headers={"Origin": stack.checkout, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-test-outcome,x-test-delay-ms"},
        timeout=5,
    )
    assert response.status_code == 204
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-test-outcome", "x-test-delay-ms", "idempotency-key"} <= allowed


@pytest.mark.parametrize(
    ("method", "instrument", "status", "code"),
    [
        ("upi", {"vpa": "success@razorpay"}, "success", None),
        ("upi", {"vpa": "failure@razorpay"}, "failed", "PAYMENT_FAILED"),
        ("card", {"card": {**CARD, "number": "4000000000000069"}}, "failed", "EXPIRED_CARD"),
        ("card", {"card": {**CARD, "number": "4000000000000127"}}, "failed", "INCORRECT_CVC"),
        ("card", {"card": {**CARD, "number": "4000000000000119"}}, "failed", "PROCESSING_ERROR"),
    ],
)
def test_test_instruments(stack, merchant, method, instrument, status, code) -> None:
    body = {"amount": 1000, "method": method, **instrument}
    payment = create(stack, f"{stack.api}/payments", body, {**merchant, "X-Test-Delay-Ms": "0"})
    done, _ = wait_final(stack, merchant, payment["id"])
    assert (done["status"], done["error_code"]) == (status, code)
    assert (done["error_description"] is None) == (code is None)
