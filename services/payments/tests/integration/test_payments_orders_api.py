"""Orders through the Flask app on the real database."""

from __future__ import annotations

import re

import pytest

ORDER_ID = re.compile(r"^order_[A-Za-z0-9]{16}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def create_order(client, headers, **body):
    body = {"amount": 50000, "currency": "INR", "receipt": "rcpt_1", "notes": {"k": "v"}, **body}
    response = client.post("/api/v1/orders", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_order_answers_201_with_the_contract_fields(client, headers):
    order = create_order(client, headers)
    assert set(order) == {"id", "merchant_id", "amount", "currency", "receipt", "notes", "status", "created_at"}
    assert ORDER_ID.match(order["id"])
    assert order["merchant_id"] == headers["X-Merchant-Id"]
    assert (order["amount"], order["currency"], order["receipt"], order["notes"]) == (
        50000,
        "INR",
        "rcpt_1",
        {"k": "v"},
    )
    assert order["status"] == "created"
    assert TIMESTAMP.match(order["created_at"])


def test_currency_defaults_to_inr_and_receipt_and_notes_are_optional(client, headers):
    response = client.post("/api/v1/orders", json={"amount": 100}, headers=headers)
    assert response.status_code == 201
    body = response.get_json()
    assert (body["currency"], body["receipt"], body["notes"]) == ("INR", None, {})


def test_get_order_adds_updated_at(client, headers):
    order = create_order(client, headers)
    response = client.get(f"/api/v1/orders/{order['id']}", headers=headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body == {**order, "updated_at": body["updated_at"]}
    assert TIMESTAMP.match(body["updated_at"])


def test_another_merchants_order_is_404(client, headers, other_headers):
    order = create_order(client, headers)
    response = client.get(f"/api/v1/orders/{order['id']}", headers=other_headers)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND_ERROR"
    assert client.get("/api/v1/orders/order_doesnotexist0000", headers=headers).status_code == 404


def test_list_orders_is_paginated_newest_first(client, other_headers):
    created = [create_order(client, other_headers, amount=100 + i)["id"] for i in range(5)]
    response = client.get("/api/v1/orders?limit=2&offset=1", headers=other_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"data", "total", "total_is_estimate", "has_more", "limit", "offset"}
    assert (body["limit"], body["offset"]) == (2, 1)
    assert body["total"] >= 5
    first_page = client.get("/api/v1/orders?limit=5", headers=other_headers).get_json()["data"]
    assert [o["id"] for o in first_page] == list(reversed(created))
    assert [o["id"] for o in body["data"]] == list(reversed(created))[1:3]
    assert "updated_at" in body["data"][0]


def test_public_order_shows_nothing_secret(client, headers):
    order = create_order(client, headers)
    response = client.get(f"/api/v1/orders/{order['id']}/public")
    assert response.status_code == 200
    assert response.get_json() == {
        "id": order["id"],
        "amount": 50000,
        "currency": "INR",
        "status": "created",
        "merchant_name": "Test Merchant",
    }
    assert client.get("/api/v1/orders/order_doesnotexist0000/public").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "100"},
        {"amount": 100.5},
        {"amount": True},
        {"amount": -100},
        {"amount": 99},
        {"amount": 10**30},
        {"currency": "INR"},
        {"amount": 100, "currency": "XXX"},
        {"amount": 100, "unknown": 1},
        [1, 2],
        "text",
    ],
)
def test_bad_order_bodies_are_400_and_write_nothing(client, headers, admin_conn, body):
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.orders")
        before = cur.fetchone()[0]
    response = client.post("/api/v1/orders", json=body, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.orders")
        assert cur.fetchone()[0] == before


def test_malformed_json_is_400(client, headers):
    response = client.post("/api/v1/orders", data="{not json", content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"


def test_requests_that_bypass_the_gateway_are_401(client, headers):
    assert client.get("/api/v1/orders", headers={"X-Merchant-Id": headers["X-Merchant-Id"]}).status_code == 401
    wrong = {**headers, "X-Gateway-Secret": "nope"}
    assert client.post("/api/v1/orders", json={"amount": 100}, headers=wrong).status_code == 401
    bad_id = {**headers, "X-Merchant-Id": "not-a-uuid"}
    assert client.get("/api/v1/orders", headers=bad_id).status_code == 401
