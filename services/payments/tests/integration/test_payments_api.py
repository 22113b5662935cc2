"""Payments through the Flask app on the real database (the bank driven in-process)."""

from __future__ import annotations

import concurrent.futures
import re
import uuid

import pytest

PAY_ID = re.compile(r"^pay_[A-Za-z0-9]{16}$")
CARD = {
    "number": "4111111111111111",
    "expiry_month": "12",
    "expiry_year": "2030",
    "cvv": "123",
    "holder_name": "John Doe",
}
BASE_FIELDS = {
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


def new_order(client, headers, amount=50000, currency="INR"):
    response = client.post("/api/v1/orders", json={"amount": amount, "currency": currency}, headers=headers)
    assert response.status_code == 201
    return response.get_json()


def pay(client, headers, **body):
    return client.post("/api/v1/payments", json=body, headers=headers)


def count_rows(admin_conn, table="payments.payments"):
    with admin_conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        return cur.fetchone()[0]


def test_upi_payment_is_pending_at_once(client, headers):
    order = new_order(client, headers)
    response = pay(client, headers, order_id=order["id"], method="upi", vpa="user@paytm")
    assert response.status_code == 201
    body = response.get_json()
    assert BASE_FIELDS <= set(body)
    assert "card_network" not in body and "card_last4" not in body
    assert PAY_ID.match(body["id"])
    assert body["status"] == "pending"
    assert (body["order_id"], body["amount"], body["currency"], body["method"], body["vpa"]) == (
        order["id"],
        50000,
        "INR",
        "upi",
        "user@paytm",
    )
    assert body["captured"] is False and body["amount_refunded"] == 0
    assert client.get(f"/api/v1/payments/{body['id']}", headers=headers).get_json() == body
    assert client.get(f"/api/v1/orders/{order['id']}", headers=headers).get_json()["status"] == "attempted"


def test_card_payment_keeps_network_and_last4_only(client, headers, admin_conn):
    order = new_order(client, headers, amount=1234, currency="USD")
    response = pay(client, headers, order_id=order["id"], method="card", card=CARD)
    assert response.status_code == 201
    body = response.get_json()
    assert (body["card_network"], body["card_last4"], body["amount"], body["currency"]) == ("visa", "1111", 1234, "USD")
    assert "vpa" not in body
    assert "4111111111111111" not in response.get_data(as_text=True)
    with admin_conn.cursor() as cur:
        cur.execute("SELECT p::text FROM payments.payments p WHERE id = %s", (body["id"],))
        row = cur.fetchone()[0]
        cur.execute("SELECT string_agg(payload::text, '') FROM payments.outbox")
        events = cur.fetchone()[0]
        cur.execute(
            "SELECT card_expiry_month, card_expiry_year, card_holder_name FROM payments.payments WHERE id = %s",
            (body["id"],),
        )
        assert cur.fetchone() == (12, 2030, "John Doe")
    assert "4111111111111111" not in row and "4111111111111111" not in events
    assert ",123," not in row


def test_short_form_uses_order_id_as_the_merchants_reference(client, headers):
    response = pay(client, headers, amount=1000, currency="INR", method="upi", vpa="test@upi", order_id="order_12345")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["order_id"], body["amount"], body["currency"], body["status"]) == (
        "order_12345",
        1000,
        "INR",
        "pending",
    )
    no_order = pay(client, headers, amount=500, method="upi", vpa="test@upi")
    assert no_order.status_code == 201
    assert no_order.get_json()["order_id"] is None and no_order.get_json()["currency"] == "INR"


def test_amount_must_match_an_existing_order(client, headers, admin_conn):
    order = new_order(client, headers)
    before = count_rows(admin_conn)
    response = pay(client, headers, order_id=order["id"], amount=1000, method="upi", vpa="a@b")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"
    matching = pay(client, headers, order_id=order["id"], amount=50000, method="upi", vpa="a@b")
    assert matching.status_code == 201
    assert count_rows(admin_conn) == before + 1


def test_unknown_or_foreign_order_is_404(client, headers, other_headers):
    assert pay(client, headers, order_id="order_doesnotexist0000", method="upi", vpa="a@b").status_code == 404
    order = new_order(client, other_headers)
    response = pay(client, headers, order_id=order["id"], method="upi", vpa="a@b")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND_ERROR"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"method": "upi", "vpa": "not-a-vpa"}, "INVALID_VPA"),
        ({"method": "upi", "vpa": "user@pay.tm"}, "INVALID_VPA"),
        ({"method": "upi"}, "INVALID_VPA"),
        ({"method": "card", "card": {**CARD, "number": "4111111111111112"}}, "INVALID_CARD"),
        ({"method": "card", "card": {**CARD, "number": "411111111111"}}, "INVALID_CARD"),
        ({"method": "card", "card": {**CARD, "cvv": "12"}}, "INVALID_CARD"),
        ({"method": "card", "card": {**CARD, "cvv": "12345"}}, "INVALID_CARD"),
        ({"method": "card"}, "INVALID_CARD"),
        ({"method": "card", "card": {**CARD, "expiry_year": "2020"}}, "EXPIRED_CARD"),
        ({"method": "card", "card": {**CARD, "expiry_month": "13"}}, "EXPIRED_CARD"),
        ({"method": "card", "card": {**CARD, "expiry_year": "203"}}, "EXPIRED_CARD"),
        ({"method": "wallet"}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b", "amount": "100"}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b", "amount": 100.5}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b", "amount": True}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b", "amount": -500}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b", "amount": 2**70}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b", "amount": 100, "currency": "ZZZ"}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b", "amount": 100, "cvv": "123"}, "BAD_REQUEST_ERROR"),
        ({"vpa": "a@b", "amount": 100}, "BAD_REQUEST_ERROR"),
        ({"method": "upi", "vpa": "a@b"}, "BAD_REQUEST_ERROR"),
    ],
)
def test_invalid_payments_are_4xx_and_write_nothing(client, headers, admin_conn, body, code):
    if body.get("method") in ("upi", "card") and "amount" not in body and body.get("vpa") != "a@b":
        body = {**body, "amount": 1000}
    before = (count_rows(admin_conn), count_rows(admin_conn, "payments.outbox"))
    response = pay(client, headers, **body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert (count_rows(admin_conn), count_rows(admin_conn, "payments.outbox")) == before


def test_malformed_and_non_object_bodies_are_400(client, headers):
    for data in ("{", "[]", "null", "12"):
        response = client.post("/api/v1/payments", data=data, content_type="application/json", headers=headers)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"


def test_get_another_merchants_payment_is_404(client, headers, other_headers):
    payment = pay(client, headers, amount=100, method="upi", vpa="a@b").get_json()
    assert client.get(f"/api/v1/payments/{payment['id']}", headers=other_headers).status_code == 404
    assert client.get("/api/v1/payments/pay_doesnotexist0000", headers=headers).status_code == 404


def test_list_filters_and_alias(client, drive_bank):
    merchant = {"X-Gateway-Secret": "test-gateway-secret", "X-Merchant-Id": str(uuid.uuid4())}
    order = new_order(client, merchant)
    upi_ok = pay(client, merchant, order_id=order["id"], method="upi", vpa="success@upi").get_json()
    upi_bad = pay(client, merchant, amount=300, method="upi", vpa="failure@upi").get_json()
    card = pay(client, merchant, amount=400, method="card", card=CARD).get_json()
    drive_bank([upi_ok["id"], upi_bad["id"], card["id"]])
    listed = client.get("/api/v1/payments?limit=10&offset=0", headers=merchant).get_json()
    assert [p["id"] for p in listed["data"]] == [card["id"], upi_bad["id"], upi_ok["id"]]
    assert (listed["total"], listed["limit"], listed["offset"]) == (3, 10, 0)
    assert client.get("/api/v1/payments/list?limit=10", headers=merchant).get_json() == listed

    def ids(query):
        response = client.get(f"/api/v1/payments?{query}", headers=merchant)
        assert response.status_code == 200
        return [p["id"] for p in response.get_json()["data"]], response.get_json()["total"]

    assert ids("status=success") == ([card["id"], upi_ok["id"]], 2)
    assert ids("status=pending") == ([], 0)
    assert ids("status=failed") == ([upi_bad["id"]], 1)
    assert ids("method=card") == ([card["id"]], 1)
    assert ids(f"q={upi_bad['id']}") == ([upi_bad["id"]], 1)
    assert ids(f"q={order['id']}") == ([upi_ok["id"]], 1)
    assert ids("limit=1&offset=1") == ([upi_bad["id"]], 3)
    for bad in ("status=done", "method=cash", "limit=0", "limit=1000", "offset=-1", "limit=abc"):
        response = client.get(f"/api/v1/payments?{bad}", headers=merchant)
        assert response.status_code == 400, bad


def test_bank_outcomes_update_payment_and_order(client, headers, drive_bank):
    order = new_order(client, headers)
    ok = pay(client, headers, order_id=order["id"], method="upi", vpa="success@upi").get_json()
    failed = pay(client, headers, amount=500, method="upi", vpa="failure@upi").get_json()
    declined = pay(client, headers, amount=500, method="card", card={**CARD, "number": "4000000000000002"}).get_json()
    broke = pay(client, headers, amount=500, method="card", card={**CARD, "number": "4000000000009995"}).get_json()
    drive_bank([ok["id"], failed["id"], declined["id"], broke["id"]])
    got = {
        p["id"]: client.get(f"/api/v1/payments/{p['id']}", headers=headers).get_json()
        for p in (ok, failed, declined, broke)
    }
    assert got[ok["id"]]["status"] == "success" and got[ok["id"]]["error_code"] is None
    assert got[failed["id"]]["status"] == "failed" and got[failed["id"]]["error_description"]
    assert got[declined["id"]]["error_code"] == "CARD_DECLINED"
    assert got[broke["id"]]["error_code"] == "INSUFFICIENT_FUNDS"
    assert client.get(f"/api/v1/orders/{order['id']}", headers=headers).get_json()["status"] == "paid"
    public = client.get(f"/api/v1/payments/{declined['id']}/public").get_json()
    assert public == {
        "id": declined["id"],
        "order_id": None,
        "status": "failed",
        "amount": 500,
        "currency": "INR",
        "method": "card",
        "error_code": "CARD_DECLINED",
        "error_description": got[declined["id"]]["error_description"],
    }
    again = pay(client, headers, order_id=order["id"], method="upi", vpa="a@b")
    assert again.status_code == 400


def test_capture_once(client, headers, other_headers, drive_bank):
    payment = pay(client, headers, amount=5000, method="upi", vpa="success@upi").get_json()
    early = client.post(f"/api/v1/payments/{payment['id']}/capture", json={}, headers=headers)
    assert early.status_code == 400
    assert early.get_json()["error"] == {"code": "BAD_REQUEST_ERROR", "description": "Payment not in capturable state"}
    drive_bank([payment["id"]])
    assert client.post(f"/api/v1/payments/{payment['id']}/capture", headers=other_headers).status_code == 404
    wrong = client.post(f"/api/v1/payments/{payment['id']}/capture", json={"amount": 4999}, headers=headers)
    assert wrong.status_code == 400
    assert (
        client.post(f"/api/v1/payments/{payment['id']}/capture", json={"amount": "5000"}, headers=headers).status_code
        == 400
    )
    captured = client.post(f"/api/v1/payments/{payment['id']}/capture", json={"amount": 5000}, headers=headers)
    assert captured.status_code == 200
    body = captured.get_json()
    assert body["captured"] is True and body["captured_at"] and body["status"] == "success"
    twice = client.post(f"/api/v1/payments/{payment['id']}/capture", headers=headers)
    assert twice.status_code == 400
    assert twice.get_json()["error"]["description"] == "Payment not in capturable state"


def test_failed_payment_is_not_capturable(client, headers, drive_bank):
    payment = pay(client, headers, amount=5000, method="upi", vpa="failure@upi").get_json()
    drive_bank([payment["id"]])
    response = client.post(f"/api/v1/payments/{payment['id']}/capture", headers=headers)
    assert response.status_code == 400


def test_concurrent_captures_capture_once(app, client, headers, drive_bank, admin_conn):
    payment = pay(client, headers, amount=5000, method="upi", vpa="success@upi").get_json()
    drive_bank([payment["id"]])

    def capture(_):
        return app.test_client().post(f"/api/v1/payments/{payment['id']}/capture", headers=headers).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(capture, range(8)))
    assert sorted(statuses) == [200] + [400] * 7
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM payments.outbox WHERE event_type = 'payment.captured' AND payload->'data'->'payment'->>'id' = %s",
            (payment["id"],),
        )
        assert cur.fetchone()[0] == 1


def test_events_carry_the_payment_object(client, headers, admin_conn, drive_bank):
    payment = pay(client, headers, amount=700, method="upi", vpa="success@upi").get_json()
    drive_bank([payment["id"]])
    final = client.get(f"/api/v1/payments/{payment['id']}", headers=headers).get_json()
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT event_type, payload FROM payments.outbox WHERE payload->'data'->'payment'->>'id' = %s ORDER BY seq",
            (payment["id"],),
        )
        rows = cur.fetchall()
    assert [r[0] for r in rows] == ["payment.created", "payment.pending", "payment.success"]
    assert rows[0][1]["data"] == {"payment": payment}
    assert rows[2][1]["data"] == {"payment": final}
    for _, envelope in rows:
        assert envelope["merchant_id"] == headers["X-Merchant-Id"]
        assert envelope["id"].startswith("evt_") and isinstance(envelope["timestamp"], int)


def test_public_payment_with_header_or_body_key(client, headers, other_headers):
    order = new_order(client, headers)
    by_header = client.post(
        "/api/v1/payments/public",
        json={"order_id": order["id"], "method": "upi", "vpa": "a@b"},
        headers={"X-Api-Key": "key_test_abc123"},
    )
    assert by_header.status_code == 201
    body = by_header.get_json()
    assert body["merchant_id"] == headers["X-Merchant-Id"] and body["status"] == "pending" and body["amount"] == 50000
    by_body = client.post(
        "/api/v1/payments/public",
        json={"order_id": order["id"], "method": "card", "card": CARD, "key": "key_test_abc123"},
    )
    assert by_body.status_code == 201
    assert by_body.get_json()["card_last4"] == "1111"
    public = client.get(f"/api/v1/payments/{body['id']}/public")
    assert public.status_code == 200
    assert set(public.get_json()) == {
        "id",
        "order_id",
        "status",
        "amount",
        "currency",
        "method",
        "error_code",
        "error_description",
    }


def test_public_payment_key_must_belong_to_the_orders_merchant(client, headers, admin_conn):
    order = new_order(client, headers)
    body = {"order_id": order["id"], "method": "upi", "vpa": "a@b"}
    before = count_rows(admin_conn)
    assert client.post("/api/v1/payments/public", json=body, headers={"X-Api-Key": "key_nope"}).status_code == 401
    assert client.post("/api/v1/payments/public", json={**body, "key": "key_nope"}).status_code == 401
    foreign = client.post("/api/v1/payments/public", json=body, headers={"X-Api-Key": "key_test_other0001"})
    assert foreign.status_code == 404
    short = client.post(
        "/api/v1/payments/public", json={"amount": 100, "method": "upi", "vpa": "a@b", "key": "key_test_abc123"}
    )
    assert short.status_code == 400
    # A spoofed merchant header does not matter here: the key decides.
    spoofed = client.post(
        "/api/v1/payments/public",
        json=body,
        headers={"X-Api-Key": "key_test_other0001", "X-Merchant-Id": headers["X-Merchant-Id"]},
    )
    assert spoofed.status_code == 404
    assert count_rows(admin_conn) == before
    assert client.get("/api/v1/payments/pay_doesnotexist0000/public").status_code == 404


def test_public_payment_with_only_the_order_id_is_for_the_orders_merchant(client, headers, other_headers, admin_conn):
    order = new_order(client, other_headers, amount=700)
    response = client.post("/api/v1/payments/public", json={"order_id": order["id"], "method": "upi", "vpa": "a@b"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["merchant_id"], body["order_id"], body["amount"]) == (other_headers["X-Merchant-Id"], order["id"], 700)
    assert client.get(f"/api/v1/payments/{body['id']}", headers=other_headers).status_code == 200
    assert client.get(f"/api/v1/payments/{body['id']}", headers=headers).status_code == 404
    # An order that does not exist (or a malformed id, or none) names no merchant: 404, nothing written.
    before = count_rows(admin_conn)
    for bad in ("order_doesnotexist0000", "order_x", 12, None):
        refused = client.post("/api/v1/payments/public", json={"order_id": bad, "method": "upi", "vpa": "a@b"})
        assert refused.status_code in (400, 404), refused.get_json()
        assert refused.get_json()["error"]["code"] in ("BAD_REQUEST_ERROR", "NOT_FOUND_ERROR")
    unknown = client.post(
        "/api/v1/payments/public",
        json={"order_id": "order_doesnotexist0000", "method": "upi", "vpa": "a@b"},
        headers={"Idempotency-Key": "only-order-unknown"},
    )
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "NOT_FOUND_ERROR"
    assert count_rows(admin_conn) == before


def test_stats(client, drive_bank):
    merchant = {"X-Gateway-Secret": "test-gateway-secret", "X-Merchant-Id": str(uuid.uuid4())}
    empty = client.get("/api/v1/payments/stats?days=3", headers=merchant).get_json()
    assert empty["total_transactions"] == 0 and empty["success_rate"] == 0 and len(empty["daily"]) == 3
    ids = [pay(client, merchant, amount=1000, method="upi", vpa="success@upi").get_json()["id"] for _ in range(3)]
    ids.append(pay(client, merchant, amount=500, method="upi", vpa="failure@upi").get_json()["id"])
    drive_bank(ids)
    pay(client, merchant, amount=900, method="upi", vpa="someone@upi")
    stats = client.get("/api/v1/payments/stats?days=14", headers=merchant).get_json()
    assert {k: stats[k] for k in stats if k != "daily"} == {
        "total_transactions": 5,
        "successful_transactions": 3,
        "failed_transactions": 1,
        "total_amount": 3000,
        "success_rate": 75.0,
        "currency": "INR",
    }
    assert len(stats["daily"]) == 14
    today = stats["daily"][-1]
    assert set(today) == {"date", "count", "success_count", "amount", "success_rate"}
    assert (today["count"], today["success_count"], today["amount"], today["success_rate"]) == (5, 3, 3000, 75.0)
    assert stats["daily"][0]["count"] == 0 and stats["daily"][0]["date"] < today["date"]
    assert client.get("/api/v1/payments/stats?days=0", headers=merchant).status_code == 400


def test_jobs_status_and_health(client):
    jobs = client.get("/api/v1/test/jobs/status")
    assert jobs.status_code == 200
    body = jobs.get_json()
    assert set(body) == {"pending", "processing", "completed", "failed", "worker_status"}
    assert body["worker_status"] in ("running", "stopped")
    assert all(isinstance(body[k], int) for k in ("pending", "processing", "completed", "failed"))
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json()["database"] == "connected" and health.get_json()["redis"] == "connected"
    assert set(health.get_json()["workers"]) == {"payments", "refunds", "webhooks"}


def test_jobs_status_is_not_found_outside_test_mode(service_env):
    from dataclasses import replace

    from gateway_common.config import Settings
    from gateway_common.db import PoolSettings
    from payments import create_app

    app = create_app(replace(Settings.from_env("payments"), test_mode=False, db_pool=PoolSettings(max_size=2)))
    response = app.test_client().get("/api/v1/test/jobs/status")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND_ERROR"


def test_public_payment_carries_razorpay_signature_once_successful(app, client, headers, other_headers, admin_conn, drive_bank):
    import hashlib
    import hmac

    box = app.extensions["secret_box"]
    with admin_conn.cursor() as cur:
        cur.execute("UPDATE auth.api_keys SET secret_encrypted = %s WHERE api_key = %s", (box.encrypt("secret_test_xyz789"), "key_test_abc123"))
        # A key from before secrets were kept: no signature, nothing else changes.
        cur.execute("UPDATE auth.api_keys SET secret_encrypted = NULL WHERE api_key = %s", ("key_test_other0001",))
    order = new_order(client, headers)
    payment = pay(client, headers, order_id=order["id"], method="upi", vpa="success@upi").get_json()
    assert "razorpay_signature" not in client.get(f"/api/v1/payments/{payment['id']}/public").get_json()
    other_order = new_order(client, other_headers)
    other = pay(client, other_headers, order_id=other_order["id"], method="upi", vpa="success@upi").get_json()
    failed = pay(client, headers, order_id=new_order(client, headers)["id"], method="upi", vpa="failure@upi").get_json()
    drive_bank([payment["id"], other["id"], failed["id"]])
    public = client.get(f"/api/v1/payments/{payment['id']}/public").get_json()
    expected = hmac.new(b"secret_test_xyz789", f"{order['id']}|{payment['id']}".encode(), hashlib.sha256).hexdigest()
    assert public["status"] == "success"
    assert public["razorpay_signature"] == expected
    other_public = client.get(f"/api/v1/payments/{other['id']}/public").get_json()
    assert other_public["status"] == "success" and "razorpay_signature" not in other_public
    assert "razorpay_signature" not in client.get(f"/api/v1/payments/{failed['id']}/public").get_json()
