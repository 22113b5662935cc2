"""The Razorpay API (/razorpay/v1) through nginx, on the wire: HTTP Basic at the edge, Razorpay's shapes."""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.test_refunds import poll

pytestmark = pytest.mark.e2e

AUTH = ("key_test_abc123", "secret_test_xyz789")
ERROR_FIELDS = {"code", "description", "source", "step", "reason", "metadata", "field"}
ORDER_FIELDS = {
    "id", "entity", "amount", "amount_paid", "amount_due", "currency", "receipt", "offer_id", "status", "attempts",
    "notes", "created_at",
}
PAYMENT_FIELDS = {
    "id", "entity", "amount", "currency", "status", "order_id", "invoice_id", "international", "method",
    "amount_refunded", "refund_status", "captured", "description", "card_id", "card", "bank", "wallet", "vpa", "email",
    "contact", "notes", "fee", "tax", "error_code", "error_description", "error_source", "error_step", "error_reason",
    "acquirer_data", "created_at",
}
REFUND_FIELDS = {
    "id", "entity", "amount", "currency", "payment_id", "notes", "receipt", "acquirer_data", "created_at", "batch_id",
    "status", "speed_processed", "speed_requested",
}


@pytest.fixture(scope="module")
def rzp(stack) -> str:
    return f"{stack.base}/razorpay/v1"


def rz_error(response: requests.Response, status: int, code: str = "BAD_REQUEST_ERROR") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_FIELDS, body
    assert body["error"]["code"] == code
    return body["error"]


def new_order(rzp: str, amount: int = 50000, auth=AUTH, **extra) -> dict:
    response = requests.post(f"{rzp}/orders", json={"amount": amount, "currency": "INR", **extra}, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def pay_upi(rzp: str, order: dict, vpa: str = "success@upi", auth=AUTH) -> str:
    body = {"amount": order["amount"], "currency": "INR", "order_id": order["id"], "email": "a@example.com",
            "contact": "9999999999", "method": "upi", "upi": {"flow": "collect", "vpa": vpa}}
    response = requests.post(f"{rzp}/payments/create/upi", json=body, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    created = response.json()
    assert set(created) == {"razorpay_payment_id", "next"}
    assert created["next"] == [{"action": "poll", "url": f"/razorpay/v1/payments/{created['razorpay_payment_id']}"}]
    return created["razorpay_payment_id"]


def fetch(rzp: str, path: str, auth=AUTH) -> dict:
    response = requests.get(f"{rzp}{path}", auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_wrong_or_missing_basic_credentials_get_razorpays_401(rzp):
    for auth in (("key_test_abc123", "wrong"), ("key_unknown", "secret_test_xyz789"), None):
        error = rz_error(requests.get(f"{rzp}/orders", auth=auth, timeout=10), 401)
        assert error["description"] == "Authentication failed"
    # The /api/v1 headers are not Razorpay's credentials... but they are the same key and secret, so accepted.
    headers = {"X-Api-Key": AUTH[0], "X-Api-Secret": AUTH[1]}
    assert requests.get(f"{rzp}/orders", headers=headers, timeout=10).status_code == 200


def test_order_entity_and_lists(rzp):
    before = int(time.time()) - 1
    order = new_order(rzp, 12300, receipt="rcpt_rzp", notes={"shop": "one"})
    assert set(order) == ORDER_FIELDS
    assert order["entity"] == "order" and order["status"] == "created" and order["attempts"] == 0
    assert (order["amount"], order["amount_paid"], order["amount_due"]) == (12300, 0, 12300)
    assert order["notes"] == {"shop": "one"} and order["receipt"] == "rcpt_rzp"
    assert isinstance(order["created_at"], int) and order["created_at"] >= before
    assert new_order(rzp)["notes"] == []
    assert fetch(rzp, f"/orders/{order['id']}") == order
    listed = fetch(rzp, "/orders?count=2")
    assert listed["entity"] == "collection" and listed["count"] == len(listed["items"]) == 2
    assert fetch(rzp, "/orders?count=1&skip=1")["items"][0]["id"] == listed["items"][1]["id"]
    in_range = fetch(rzp, f"/orders?from={order['created_at']}&to={order['created_at'] + 3600}&count=100")
    assert order["id"] in {o["id"] for o in in_range["items"]}
    assert fetch(rzp, f"/orders?to={before - 3600}")["items"] == []


def test_payment_life_cycle_and_status_map(rzp):
    order = new_order(rzp, 20000)
    payment_id = pay_upi(rzp, order)
    first = fetch(rzp, f"/payments/{payment_id}")
    assert set(first) == PAYMENT_FIELDS
    assert first["entity"] == "payment" and first["status"] in ("created", "authorized")
    authorized = poll(lambda: fetch(rzp, f"/payments/{payment_id}"), lambda p: p["status"] == "authorized", "authorized")
    assert authorized["captured"] is False and authorized["vpa"] == "success@upi" and authorized["method"] == "upi"
    assert authorized["order_id"] == order["id"] and authorized["refund_status"] is None
    paid = fetch(rzp, f"/orders/{order['id']}")
    assert (paid["status"], paid["amount_paid"], paid["amount_due"], paid["attempts"]) == ("paid", 20000, 0, 1)
    capture = requests.post(f"{rzp}/payments/{payment_id}/capture", json={"amount": 20000, "currency": "INR"}, auth=AUTH, timeout=10)
    assert capture.status_code == 200, capture.text
    assert capture.json()["status"] == "captured" and capture.json()["captured"] is True
    again = requests.post(f"{rzp}/payments/{payment_id}/capture", json={"amount": 20000, "currency": "INR"}, auth=AUTH, timeout=10)
    assert "capturable" in rz_error(again, 400)["description"]
    refund = requests.post(f"{rzp}/payments/{payment_id}/refund", json={"amount": 5000, "notes": {"reason": "damaged"}}, auth=AUTH, timeout=10)
    assert refund.status_code == 200, refund.text
    refund = refund.json()
    assert set(refund) == REFUND_FIELDS
    assert (refund["entity"], refund["amount"], refund["currency"], refund["payment_id"]) == ("refund", 5000, "INR", payment_id)
    assert refund["status"] == "pending" and refund["notes"] == {"reason": "damaged"}
    processed = poll(lambda: fetch(rzp, f"/refunds/{refund['id']}"), lambda r: r["status"] == "processed", "refund processed")
    assert processed["id"] == refund["id"]
    assert fetch(rzp, f"/payments/{payment_id}/refunds/{refund['id']}")["status"] == "processed"
    partial = poll(lambda: fetch(rzp, f"/payments/{payment_id}"), lambda p: p["amount_refunded"] == 5000, "amount_refunded")
    assert (partial["status"], partial["refund_status"]) == ("captured", "partial")
    # Without an amount: the rest of the payment.
    rest = requests.post(f"{rzp}/payments/{payment_id}/refund", json={}, auth=AUTH, timeout=10)
    assert rest.status_code == 200, rest.text
    assert rest.json()["amount"] == 15000
    over = requests.post(f"{rzp}/payments/{payment_id}/refund", json={"amount": 100}, auth=AUTH, timeout=10)
    assert "exceeds" in rz_error(over, 400)["description"]
    refunded = poll(lambda: fetch(rzp, f"/payments/{payment_id}"), lambda p: p["status"] == "refunded", "refunded")
    assert refunded["refund_status"] == "full" and refunded["amount_refunded"] == 20000
    refunds = fetch(rzp, f"/payments/{payment_id}/refunds")
    assert refunds["entity"] == "collection" and {r["id"] for r in refunds["items"]} == {refund["id"], rest.json()["id"]}
    assert refund["id"] in {r["id"] for r in fetch(rzp, "/refunds?count=100")["items"]}
    of_order = fetch(rzp, f"/orders/{order['id']}/payments")
    assert of_order["entity"] == "collection" and [p["id"] for p in of_order["items"]] == [payment_id]
    assert payment_id in {p["id"] for p in fetch(rzp, "/payments?count=100")["items"]}


def test_failed_and_card_payments(rzp):
    failed_id = pay_upi(rzp, new_order(rzp), vpa="failure@upi")
    failed = poll(lambda: fetch(rzp, f"/payments/{failed_id}"), lambda p: p["status"] == "failed", "failed")
    assert failed["error_code"] == "BAD_REQUEST_ERROR" and failed["error_reason"] == "payment_failed"
    assert failed["error_description"] and failed["error_source"] and failed["error_step"]
    order = new_order(rzp, 30000)
    card = {"number": "4000000000000002", "name": "Gaurav Kumar", "expiry_month": "12", "expiry_year": "35", "cvv": "123"}
    created = requests.post(
        f"{rzp}/payments/create/json",
        json={"amount": 30000, "currency": "INR", "order_id": order["id"], "email": "a@example.com", "contact": "9999999999",
              "method": "card", "card": card, "ip": "127.0.0.1", "user_agent": "test", "referer": "http://shop"},
        auth=AUTH, timeout=10,
    )
    assert created.status_code == 200, created.text
    declined_id = created.json()["razorpay_payment_id"]
    declined = poll(lambda: fetch(rzp, f"/payments/{declined_id}"), lambda p: p["status"] == "failed", "declined")
    assert declined["error_reason"] == "card_declined" and declined["method"] == "card"
    assert declined["card"] == {"entity": "card", "last4": "0002", "network": "visa"} and declined["card_id"].startswith("card_")
    assert "4000000000000002" not in str(declined)


def test_validation_errors_and_unsupported_routes_answer_razorpays_shape(rzp, stack):
    error = rz_error(requests.post(f"{rzp}/orders", json={"amount": 50, "currency": "INR"}, auth=AUTH, timeout=10), 400)
    assert error["field"] == "amount"
    error = rz_error(requests.post(f"{rzp}/orders", json={"amount": 5000, "currency": "XYZ"}, auth=AUTH, timeout=10), 400)
    assert error["field"] == "currency"
    error = rz_error(requests.post(f"{rzp}/orders", json={"amount": 5000, "bogus": 1}, auth=AUTH, timeout=10), 400)
    assert "bogus is/are not required" in error["description"]
    rz_error(requests.post(f"{rzp}/orders", data="{not json", headers={"Content-Type": "application/json"}, auth=AUTH, timeout=10), 400)
    rz_error(requests.post(f"{rzp}/orders", json={"amount": 5000, "payment_capture": 1}, auth=AUTH, timeout=10), 400)
    hostile = [
        ("/orders", {"amount": "5000", "currency": "INR"}), ("/orders", {"amount": 5000, "notes": ["x"]}),
        ("/orders", {"amount": 10**30}), ("/orders", [1, 2]), ("/payments/create/upi", {"method": "upi"}),
        ("/payments/create/json", {"method": "card", "order_id": "order_AAAAAAAAAAAAAAAA", "card": "4111"}),
        ("/payments/create/json", {"method": "cash", "order_id": "x"}),
        ("/payments/create/upi", {"method": "upi", "order_id": {"a": 1}, "vpa": "a@b"}),
        ("/payments/pay_AAAAAAAAAAAAAAAA/capture", {"amount": True}),
        ("/payments/pay_AAAAAAAAAAAAAAAA/refund", {"amount": -1}),
    ]
    for path, body in hostile:
        response = requests.post(f"{rzp}{path}", json=body, auth=AUTH, timeout=10)
        rz_error(response, 400)
    for query in ("count=abc", "count=0", "count=101", "skip=-1", "from=x", "to=99999999999999"):
        for path in ("/orders", "/payments", "/refunds"):
            rz_error(requests.get(f"{rzp}{path}?{query}", auth=AUTH, timeout=10), 400)
    order = new_order(rzp)
    bad_vpa = requests.post(f"{rzp}/payments/create/upi", json={"order_id": order["id"], "method": "upi", "vpa": "not a vpa"}, auth=AUTH, timeout=10)
    assert rz_error(bad_vpa, 400)["field"] == "vpa"
    for path in ("/payments/pay_AAAAAAAAAAAAAAAA", "/orders/order_nope", "/refunds/rfnd_AAAAAAAAAAAAAAAA"):
        assert rz_error(requests.get(f"{rzp}{path}", auth=AUTH, timeout=10), 400)["description"] == "The id provided does not exist"
    for method, path in (("GET", "/customers"), ("POST", "/invoices"), ("GET", "/payments/pay_AAAAAAAAAAAAAAAA/card"),
                         ("POST", "/payments/pay_AAAAAAAAAAAAAAAA/transfers"), ("DELETE", "/orders/order_x"),
                         ("GET", "/orders/a/b/c")):
        response = requests.request(method, f"{rzp}{path}", auth=AUTH, timeout=10)
        assert rz_error(response, 400)["description"] == "The requested URL was not found on the server.", (method, path)
    for path in ("/razorpay/v2/orders", "/razorpay/"):
        assert rz_error(requests.get(f"{stack.base}{path}", auth=AUTH, timeout=10), 400)["description"].startswith("The requested URL")


def test_the_api_v1_contract_is_unchanged_next_to_it(stack, merchant):
    error = requests.get(f"{stack.api}/orders/order_AAAAAAAAAAAAAAAA", headers=merchant, timeout=10).json()
    assert error == {"error": {"code": "NOT_FOUND_ERROR", "description": "Order not found"}}
    unauthenticated = requests.get(f"{stack.api}/orders", timeout=10)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["code"] == "AUTHENTICATION_ERROR"
