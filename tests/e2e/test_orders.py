"""Orders through nginx (API.md, Orders)."""

from __future__ import annotations

import re
import time

import pytest
import requests

pytestmark = pytest.mark.e2e

ORDER_ID = re.compile(r"^order_[A-Za-z0-9]{16}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["description"]
    return body


def create_order(stack, headers, **body) -> dict:
    response = requests.post(f"{stack.api}/orders", json={"amount": 50000, **body}, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_order(stack, merchant):
    response = requests.post(
        f"{stack.api}/orders",
        json={"amount": 50000, "currency": "INR", "receipt": "rcpt_1", "notes": {"k": "v"}},
        headers=merchant,
        timeout=10,
    )
    assert response.status_code == 201
    order = response.json()
    assert set(order) == {"id", "merchant_id", "amount", "currency", "receipt", "notes", "status", "created_at"}
    assert ORDER_ID.match(order["id"])
    assert order["merchant_id"] == "550e8400-e29b-41d4-a716-446655440000"
    assert (order["amount"], order["currency"], order["receipt"], order["notes"], order["status"]) == (
        50000,
        "INR",
        "rcpt_1",
        {"k": "v"},
        "created",
    )
    assert TIMESTAMP.match(order["created_at"])
    assert response.headers.get("X-Request-Id")


def test_get_order_adds_updated_at(stack, merchant):
    order = create_order(stack, merchant, receipt="r2")
    response = requests.get(f"{stack.api}/orders/{order['id']}", headers=merchant, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert TIMESTAMP.match(body.pop("updated_at"))
    assert body == order


def test_list_orders_newest_first(stack, other_merchant):
    ids = [create_order(stack, other_merchant, amount=100 + i)["id"] for i in range(4)]
    response = requests.get(f"{stack.api}/orders?limit=3&offset=0", headers=other_merchant, timeout=10)
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"data", "total", "total_is_estimate", "has_more", "limit", "offset"}
    assert (page["limit"], page["offset"]) == (3, 0)
    assert page["total"] >= 4
    assert [o["id"] for o in page["data"]] == ids[::-1][:3]
    second = requests.get(f"{stack.api}/orders?limit=3&offset=1", headers=other_merchant, timeout=10).json()
    assert [o["id"] for o in second["data"]][:3] == ids[::-1][1:4]
    assert all(o["merchant_id"] == page["data"][0]["merchant_id"] for o in second["data"])


def test_other_merchants_order_is_404(stack, merchant, other_merchant):
    order = create_order(stack, merchant)
    envelope(
        requests.get(f"{stack.api}/orders/{order['id']}", headers=other_merchant, timeout=10), 404, "NOT_FOUND_ERROR"
    )
    envelope(
        requests.get(f"{stack.api}/orders/order_0000000000000000", headers=merchant, timeout=10), 404, "NOT_FOUND_ERROR"
    )
    listed = requests.get(f"{stack.api}/orders?limit=100", headers=other_merchant, timeout=10).json()["data"]
    assert order["id"] not in {o["id"] for o in listed}


def test_public_order_needs_no_credentials_and_shows_nothing_secret(stack, merchant):
    order = create_order(stack, merchant, amount=12345)
    response = requests.get(f"{stack.api}/orders/{order['id']}/public", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "id": order["id"],
        "amount": 12345,
        "currency": "INR",
        "status": "created",
        "merchant_name": "Test Merchant",
    }
    envelope(requests.get(f"{stack.api}/orders/order_0000000000000000/public", timeout=10), 404, "NOT_FOUND_ERROR")


def test_orders_need_credentials(stack):
    envelope(requests.post(f"{stack.api}/orders", json={"amount": 100}, timeout=10), 401, "AUTHENTICATION_ERROR")
    envelope(requests.get(f"{stack.api}/orders", timeout=10), 401, "AUTHENTICATION_ERROR")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": "50000"},
        {"amount": 500.5},
        {"amount": True},
        {"amount": None},
        {"amount": -100},
        {"amount": 0},
        {"amount": 99},
        {"amount": 10**20},
        {"amount": 100, "currency": "XYZ"},
        {"amount": 100, "currency": 5},
        {"amount": 100, "receipt": ["r"]},
        {"amount": 100, "notes": "n"},
        {"amount": 100, "hacker": True},
        [],
        "amount",
    ],
)
def test_bad_order_bodies_are_400(stack, merchant, body):
    response = requests.post(f"{stack.api}/orders", json=body, headers=merchant, timeout=10)
    envelope(response, 400, "BAD_REQUEST_ERROR")


def test_malformed_json_is_400(stack, merchant):
    response = requests.post(
        f"{stack.api}/orders",
        data='{"amount": 100',
        headers={**merchant, "Content-Type": "application/json"},
        timeout=10,
    )
    envelope(response, 400, "BAD_REQUEST_ERROR")


def test_order_status_follows_its_payments(stack, merchant):
    order = create_order(stack, merchant, amount=777)
    created = requests.post(
        f"{stack.api}/payments",
        json={"order_id": order["id"], "method": "upi", "vpa": "success@upi"},
        headers=merchant,
        timeout=10,
    )
    assert created.status_code == 201
    assert (
        requests.get(f"{stack.api}/orders/{order['id']}", headers=merchant, timeout=10).json()["status"] == "attempted"
    )
    deadline = time.monotonic() + 30
    while requests.get(f"{stack.api}/orders/{order['id']}", headers=merchant, timeout=10).json()["status"] != "paid":
        assert time.monotonic() < deadline, "order never became paid"
        time.sleep(0.1)
    assert requests.get(f"{stack.api}/orders/{order['id']}/public", timeout=10).json()["status"] == "paid"
