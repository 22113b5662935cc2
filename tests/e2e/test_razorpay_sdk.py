"""The official Razorpay Python SDK (razorpay on PyPI, pinned in constraints.txt), unmodified, through nginx.

Only its base URL is changed, as docs/razorpay.md tells a merchant to do.
"""

from __future__ import annotations

import json

import pytest
import razorpay
import requests
from razorpay.errors import BadRequestError, SignatureVerificationError

from tests.e2e.test_refunds import poll
from tests.e2e.test_webhooks import configure, url_of

pytestmark = pytest.mark.e2e


def sdk(stack, key: str, secret: str) -> razorpay.Client:
    return razorpay.Client(auth=(key, secret), base_url=f"{stack.base}/razorpay")


def create_upi(client: razorpay.Client, order: dict, vpa: str) -> str:
    created = client.payment.createUpi({
        "amount": order["amount"], "currency": "INR", "order_id": order["id"], "email": "gaurav.kumar@example.com",
        "contact": "9000090000", "method": "upi", "customer_id": "cust_1", "ip": "127.0.0.1", "referer": "http",
        "user_agent": "Mozilla/5.0", "description": "Test flow", "notes": {"note_key": "value"},
        "upi": {"flow": "collect", "vpa": vpa, "expiry_time": "5"},
    })
    return created["razorpay_payment_id"]


def test_a_whole_flow_with_the_official_sdk(stack, new_merchant, receivers):
    headers = new_merchant()
    client = sdk(stack, headers["X-Api-Key"], headers["X-Api-Secret"])
    webhook_secret = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    server = receivers(webhook_secret)
    configure(stack, headers, url_of(server))

    order = client.order.create({"amount": 50000, "currency": "INR", "receipt": "receipt#1", "notes": {"key1": "value3"}})
    assert (order["entity"], order["status"], order["amount_due"]) == ("order", "created", 50000)
    payment_id = create_upi(client, order, "success@upi")
    authorized = poll(lambda: client.payment.fetch(payment_id), lambda p: p["status"] == "authorized", "authorized")
    assert authorized["order_id"] == order["id"] and authorized["amount"] == 50000

    captured = client.payment.capture(payment_id, 50000, {"currency": "INR"})
    assert (captured["status"], captured["captured"]) == ("captured", True)
    with pytest.raises(BadRequestError, match="capturable"):
        client.payment.capture(payment_id, 50000, {"currency": "INR"})

    refund = client.payment.refund(payment_id, {"amount": 20000, "speed": "normal", "notes": {"reason": "partial"}})
    assert (refund["entity"], refund["amount"], refund["status"]) == ("refund", 20000, "pending")
    processed = poll(lambda: client.refund.fetch(refund["id"]), lambda r: r["status"] == "processed", "refund processed")
    assert processed["payment_id"] == payment_id
    assert client.payment.fetch_refund_id(payment_id, refund["id"])["status"] == "processed"
    assert [r["id"] for r in client.payment.fetch_multiple_refund(payment_id)["items"]] == [refund["id"]]
    partly = poll(lambda: client.payment.fetch(payment_id), lambda p: p["amount_refunded"] == 20000, "amount_refunded")
    assert (partly["status"], partly["refund_status"]) == ("captured", "partial")

    of_order = client.order.payments(order["id"])
    assert of_order["entity"] == "collection" and [p["id"] for p in of_order["items"]] == [payment_id]
    assert client.order.fetch(order["id"])["status"] == "paid"
    assert order["id"] in [o["id"] for o in client.order.all({"count": 5})["items"]]
    assert payment_id in [p["id"] for p in client.payment.all({"count": 5})["items"]]
    assert refund["id"] in [r["id"] for r in client.refund.all({"count": 5})["items"]]

    # The signature the checkout hands over for this payment, verified as a merchant's server does.
    public = requests.get(f"{stack.api}/payments/{payment_id}/public", timeout=10).json()
    params = {"razorpay_order_id": order["id"], "razorpay_payment_id": payment_id,
              "razorpay_signature": public["razorpay_signature"]}
    assert client.utility.verify_payment_signature(params) is True
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_payment_signature({**params, "razorpay_order_id": "order_AAAAAAAAAAAAAAAA"})

    # A webhook of this flow, verified with the SDK over the exact body received.
    def captured_webhook() -> list:
        return [r for r in server.state.requests
                if json.loads(r.body)["event"] == "payment.captured"
                and json.loads(r.body)["data"]["payment"]["id"] == payment_id]

    delivery = poll(captured_webhook, bool, "payment.captured webhook")[0]
    signature = delivery.headers["X-Webhook-Signature"]
    assert client.utility.verify_webhook_signature(delivery.body.decode(), signature, webhook_secret) is True
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_webhook_signature(delivery.body.decode() + " ", signature, webhook_secret)


def test_a_failing_payment_with_the_sdk(stack, merchant):
    client = sdk(stack, merchant["X-Api-Key"], merchant["X-Api-Secret"])
    order = client.order.create({"amount": 10000, "currency": "INR"})
    payment_id = create_upi(client, order, "failure@upi")
    failed = poll(lambda: client.payment.fetch(payment_id), lambda p: p["status"] == "failed", "failed")
    assert failed["error_code"] == "BAD_REQUEST_ERROR" and failed["error_reason"] == "payment_failed"
    assert failed["error_description"]
    assert client.order.fetch(order["id"])["status"] == "attempted"
    with pytest.raises(BadRequestError, match="capturable"):
        client.payment.capture(payment_id, 10000, {"currency": "INR"})
    with pytest.raises(BadRequestError, match="refundable"):
        client.payment.refund(payment_id, {"amount": 100})
    assert "razorpay_signature" not in requests.get(f"{stack.api}/payments/{payment_id}/public", timeout=10).json()


def test_the_seeded_merchants_payments_are_signed_with_its_documented_secret(stack, merchant):
    client = sdk(stack, "key_test_abc123", "secret_test_xyz789")
    order = client.order.create({"amount": 10000, "currency": "INR"})
    payment_id = create_upi(client, order, "success@upi")
    poll(lambda: client.payment.fetch(payment_id), lambda p: p["status"] == "authorized", "authorized")
    public = requests.get(f"{stack.api}/payments/{payment_id}/public", timeout=10).json()
    assert client.utility.verify_payment_signature({
        "razorpay_order_id": order["id"], "razorpay_payment_id": payment_id, "razorpay_signature": public["razorpay_signature"],
    })


def test_validation_and_auth_errors_are_the_sdks_exceptions(stack, merchant):
    client = sdk(stack, merchant["X-Api-Key"], merchant["X-Api-Secret"])
    with pytest.raises(BadRequestError, match="amount"):
        client.order.create({"amount": 50, "currency": "INR"})
    with pytest.raises(BadRequestError, match="currency"):
        client.order.create({"amount": 5000, "currency": "XYZ"})
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        client.payment.fetch("pay_AAAAAAAAAAAAAAAA")
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        client.order.fetch("order_nope")
    order = client.order.create({"amount": 5000, "currency": "INR"})
    with pytest.raises(BadRequestError, match=r"(?i)vpa"):
        create_upi(client, order, "not a vpa")
    with pytest.raises(BadRequestError, match="amount must equal"):
        client.payment.createUpi({"amount": 4000, "currency": "INR", "order_id": order["id"], "method": "upi", "vpa": "a@b"})
    with pytest.raises(BadRequestError, match=r"(?i)card"):
        client.payment.createPaymentJson({
            "amount": 5000, "currency": "INR", "order_id": order["id"], "method": "card",
            "card": {"number": "4111111111111112", "name": "X", "expiry_month": "12", "expiry_year": "35", "cvv": "123"},
        })
    with pytest.raises(BadRequestError, match="not found on the server"):
        client.customer.create({"name": "Gaurav", "email": "g@example.com"})
    with pytest.raises(BadRequestError, match="Authentication failed"):
        sdk(stack, merchant["X-Api-Key"], "wrong-secret").order.all()


def test_razorpay_format_webhooks_verify_with_the_sdk(stack, new_merchant, receivers):
    headers = new_merchant()
    client = sdk(stack, headers["X-Api-Key"], headers["X-Api-Secret"])
    config = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()
    assert config["format"] == "gateway"
    server = receivers(config["webhook_secret"])
    updated = requests.put(
        f"{stack.api}/webhooks/config", json={"webhook_url": url_of(server), "format": "razorpay"}, headers=headers, timeout=10
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["format"] == "razorpay"
    bad = requests.put(f"{stack.api}/webhooks/config", json={"webhook_url": url_of(server), "format": "xml"}, headers=headers, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST_ERROR"

    order = client.order.create({"amount": 30000, "currency": "INR"})
    payment_id = create_upi(client, order, "success@upi")
    poll(lambda: client.payment.fetch(payment_id), lambda p: p["status"] == "authorized", "authorized")
    client.payment.capture(payment_id, 30000, {"currency": "INR"})
    refund = client.payment.refund(payment_id, {"amount": 1000})

    def received() -> dict:
        bodies = {}
        for r in server.state.requests:
            body = json.loads(r.body)
            entities = [p["entity"] for p in body.get("payload", {}).values()]
            if payment_id in {e.get("id") for e in entities} | {e.get("payment_id") for e in entities}:
                bodies[body["event"]] = r
        return bodies

    wanted = {"payment.authorized", "order.paid", "payment.captured", "refund.created", "refund.processed"}
    deliveries = poll(received, lambda got: wanted <= set(got), "Razorpay-format webhooks")
    assert set(deliveries) == wanted  # payment.created and payment.pending have no Razorpay event
    for name, delivery in deliveries.items():
        body = json.loads(delivery.body)
        assert list(body) == ["entity", "account_id", "event", "contains", "payload", "created_at"], name
        assert body["entity"] == "event" and body["account_id"].startswith("acc_") and isinstance(body["created_at"], int)
        assert delivery.headers["X-Razorpay-Event-Id"].startswith("evt_")
        assert client.utility.verify_webhook_signature(
            delivery.body.decode(), delivery.headers["X-Razorpay-Signature"], config["webhook_secret"]
        )
    captured = json.loads(deliveries["payment.captured"].body)["payload"]["payment"]["entity"]
    assert (captured["id"], captured["status"], captured["captured"], captured["order_id"]) == (
        payment_id, "captured", True, order["id"])
    assert json.loads(deliveries["payment.authorized"].body)["payload"]["payment"]["entity"]["status"] == "authorized"
    order_paid = json.loads(deliveries["order.paid"].body)
    assert order_paid["contains"] == ["payment", "order"]
    paid_order = order_paid["payload"]["order"]["entity"]
    assert (paid_order["id"], paid_order["entity"], paid_order["status"], paid_order["amount_paid"], paid_order["amount_due"]) == (
        order["id"], "order", "paid", 30000, 0)
    assert order_paid["payload"]["payment"]["entity"]["id"] == payment_id
    processed = json.loads(deliveries["refund.processed"].body)["payload"]["refund"]["entity"]
    assert (processed["id"], processed["status"], processed["amount"]) == (refund["id"], "processed", 1000)
    # Back to the gateway's format: later events arrive in it again.
    back = requests.put(f"{stack.api}/webhooks/config", json={"webhook_url": url_of(server), "format": "gateway"}, headers=headers, timeout=10)
    assert back.json()["format"] == "gateway"


# ---------------------------------------------------------------- the 3-D Secure test card: Razorpay's native OTP step

THREE_DS_CARD = {"number": "4000000000003220", "name": "Gaurav Kumar", "expiry_month": "12", "expiry_year": "30", "cvv": "123"}


def create_card(client: razorpay.Client, order: dict, card: dict = THREE_DS_CARD) -> dict:
    return client.payment.createPaymentJson({
        "amount": order["amount"], "currency": "INR", "order_id": order["id"], "email": "gaurav.kumar@example.com",
        "contact": "9000090000", "method": "card", "card": card,
    })


def test_the_3ds_card_takes_the_otp_step_with_the_sdk(stack, new_merchant, receivers):
    headers = new_merchant()
    client = sdk(stack, headers["X-Api-Key"], headers["X-Api-Secret"])
    secret = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    server = receivers(secret)
    updated = requests.put(
        f"{stack.api}/webhooks/config", json={"webhook_url": url_of(server), "format": "razorpay"}, headers=headers, timeout=10
    )
    assert updated.status_code == 200, updated.text

    order = client.order.create({"amount": 42000, "currency": "INR", "receipt": "3ds#1"})
    created = create_card(client, order)
    payment_id = created["razorpay_payment_id"]
    assert [step["action"] for step in created["next"]] == ["otp_submit", "otp_resend"]
    assert created["next"][0]["url"] == f"/razorpay/v1/payments/{payment_id}/otp/submit"
    assert (created["metadata"]["last4"], created["metadata"]["network"]) == ("3220", "visa")
    # Waiting for the OTP: created, as Razorpay shows a payment before authorization.
    assert client.payment.fetch(payment_id)["status"] == "created"
    assert client.payment.otpGenerate(payment_id) == created
    assert client.payment.otpResend(payment_id) == created

    result = client.payment.otpSubmit(payment_id, {"otp": "1234"})
    assert set(result) == {"razorpay_payment_id", "razorpay_order_id", "razorpay_signature"}
    assert (result["razorpay_payment_id"], result["razorpay_order_id"]) == (payment_id, order["id"])
    assert client.utility.verify_payment_signature(result) is True
    assert client.payment.fetch(payment_id)["status"] == "authorized"
    assert client.order.fetch(order["id"])["status"] == "paid"
    with pytest.raises(BadRequestError, match="not awaiting authentication"):
        client.payment.otpSubmit(payment_id, {"otp": "1234"})
    with pytest.raises(BadRequestError, match="not awaiting authentication"):
        client.payment.otpResend(payment_id)
    captured = client.payment.capture(payment_id, 42000, {"currency": "INR"})
    assert (captured["status"], captured["captured"]) == ("captured", True)

    def authorized_webhook() -> list:
        return [r for r in server.state.requests
                if json.loads(r.body)["event"] == "payment.authorized"
                and json.loads(r.body)["payload"]["payment"]["entity"]["id"] == payment_id]

    delivery = poll(authorized_webhook, bool, "payment.authorized webhook")[0]
    assert client.utility.verify_webhook_signature(delivery.body.decode(), delivery.headers["X-Razorpay-Signature"], secret)


def test_a_wrong_otp_fails_the_payment_as_razorpay_says_it(stack, merchant):
    client = sdk(stack, merchant["X-Api-Key"], merchant["X-Api-Secret"])
    order = client.order.create({"amount": 15000, "currency": "INR"})
    payment_id = create_card(client, order)["razorpay_payment_id"]
    with pytest.raises(BadRequestError, match="OTP entered on the bank's page was incorrect"):
        client.payment.otpSubmit(payment_id, {"otp": "0000"})
    failed = client.payment.fetch(payment_id)
    assert (failed["status"], failed["error_code"], failed["error_source"], failed["error_step"], failed["error_reason"]) == (
        "failed", "BAD_REQUEST_ERROR", "customer", "payment_authentication", "invalid_otp")
    assert client.order.fetch(order["id"])["status"] == "attempted"
    with pytest.raises(BadRequestError, match="not awaiting authentication"):
        client.payment.otpSubmit(payment_id, {"otp": "1234"})

    # The wire: Razorpay's error envelope naming the payment and its order.
    again = client.order.create({"amount": 15000, "currency": "INR"})
    other_id = create_card(client, again)["razorpay_payment_id"]
    raw = requests.post(f"{stack.base}/razorpay/v1/payments/{other_id}/otp/submit", json={"otp": "9"},
                        auth=(merchant["X-Api-Key"], merchant["X-Api-Secret"]), timeout=10)
    assert raw.status_code == 400
    assert raw.json()["error"] == {
        "code": "BAD_REQUEST_ERROR", "description": "The OTP entered on the bank's page was incorrect", "source": "customer",
        "step": "payment_authentication", "reason": "invalid_otp", "metadata": {"payment_id": other_id, "order_id": again["id"]},
        "field": None,
    }


def test_the_otp_step_refuses_what_razorpay_refuses(stack, merchant, other_merchant):
    client = sdk(stack, merchant["X-Api-Key"], merchant["X-Api-Secret"])
    order = client.order.create({"amount": 15000, "currency": "INR"})
    payment_id = create_card(client, order)["razorpay_payment_id"]
    with pytest.raises(BadRequestError, match="otp"):
        client.payment.otpSubmit(payment_id, {})
    with pytest.raises(BadRequestError, match="otp"):
        client.payment.otpSubmit(payment_id, {"otp": ["1234"]})
    with pytest.raises(BadRequestError, match="not required"):
        client.payment.otpSubmit(payment_id, {"otp": "1234", "status": "captured"})
    theirs = sdk(stack, other_merchant["X-Api-Key"], other_merchant["X-Api-Secret"])
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        theirs.payment.otpSubmit(payment_id, {"otp": "1234"})
    assert client.payment.fetch(payment_id)["status"] == "created"  # nothing above changed it
    # A card that needs no OTP is polled instead.
    plain = create_card(client, client.order.create({"amount": 15000, "currency": "INR"}), {**THREE_DS_CARD, "number": "4111111111111111"})
    assert [step["action"] for step in plain["next"]] == ["poll"]
    with pytest.raises(BadRequestError, match="does not need authentication"):
        client.payment.otpSubmit(plain["razorpay_payment_id"], {"otp": "1234"})
    # Answered, so no payment of the shared merchant is left waiting for later tests.
    assert client.payment.otpSubmit(payment_id, {"otp": "1234"})["razorpay_payment_id"] == payment_id
