"""An order is charged at most once, through nginx with the real bank worker (API.md, Payments).

Shoppers double-click and pay in two tabs; merchants' servers retry. Every attempt may reach the
bank, but the net amount charged for an order is the order's amount, every time.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests

pytestmark = pytest.mark.e2e

ATTEMPTS = 8
FINAL = {"success", "failed"}


def _new_order(stack, merchant, amount: int) -> dict:
    response = requests.post(f"{stack.api}/orders", json={"amount": amount}, headers=merchant, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def _wait_all_final(stack, merchant, payment_ids: list[str], timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        payments = [
            requests.get(f"{stack.api}/payments/{pid}", headers=merchant, timeout=10).json() for pid in payment_ids
        ]
        if all(p["status"] in FINAL for p in payments):
            return payments
        assert time.monotonic() < deadline, [p["status"] for p in payments]
        time.sleep(0.2)


def _pay_concurrently(url: str, headers: dict, bodies: list[dict]) -> list[requests.Response]:
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: requests.post(url, json=body, headers=headers, timeout=30), bodies))


def _assert_charged_once(stack, merchant, order: dict, responses: list[requests.Response]) -> None:
    created = [r.json()["id"] for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    # An attempt that arrives after the order is paid is refused up front (400), never charged.
    assert all(r.status_code == 400 and r.json()["error"]["code"] == "BAD_REQUEST_ERROR" for r in refused), [
        r.text for r in refused
    ]
    payments = _wait_all_final(stack, merchant, created)
    charged = sum(p["amount"] for p in payments if p["status"] == "success")
    assert charged == order["amount"], [(p["status"], p["error_code"]) for p in payments]
    assert {p["error_code"] for p in payments if p["status"] == "failed"} <= {"ORDER_ALREADY_PAID"}
    paid = requests.get(f"{stack.api}/orders/{order['id']}", headers=merchant, timeout=10).json()
    assert paid["status"] == "paid"


@pytest.mark.parametrize("round_", range(3))
def test_parallel_checkout_attempts_charge_an_order_once(stack, merchant, round_):
    order = _new_order(stack, merchant, 50000)
    bodies = [
        {"order_id": order["id"], "method": "upi", "vpa": "success@upi"} if i % 2 else
        {"order_id": order["id"], "method": "card", "card": {
            "number": "4111111111111111", "expiry_month": "12", "expiry_year": "2030", "cvv": "123"}}
        for i in range(ATTEMPTS)
    ]
    responses = _pay_concurrently(f"{stack.api}/payments/public", {"X-Api-Key": merchant["X-Api-Key"]}, bodies)
    _assert_charged_once(stack, merchant, order, responses)
    late = requests.post(
        f"{stack.api}/payments/public", json=bodies[1], headers={"X-Api-Key": merchant["X-Api-Key"]}, timeout=10
    )
    assert late.status_code == 400 and late.json()["error"]["code"] == "BAD_REQUEST_ERROR"


@pytest.mark.parametrize("round_", range(2))
def test_parallel_server_payments_for_an_order_charge_it_once(stack, merchant, round_):
    order = _new_order(stack, merchant, 12345)
    bodies = [{"order_id": order["id"], "method": "upi", "vpa": f"shopper{i}@okaxis"} for i in range(ATTEMPTS)]
    _assert_charged_once(stack, merchant, order, _pay_concurrently(f"{stack.api}/payments", merchant, bodies))
