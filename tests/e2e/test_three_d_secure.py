"""3-D Secure through nginx: card 4000000000003220 waits for its shopper; the public authenticate endpoint decides.

Each step reaches the merchant's webhook endpoint; an unanswered payment is failed by the running
payments worker's sweeper (the bank's durable schedule) once its window has closed.
"""

from __future__ import annotations

import concurrent.futures
import uuid

import psycopg
import pytest
import requests

from tests.e2e.test_payments import envelope, get, new_order, wait_final
from tests.e2e.test_webhooks import configure, poll, url_of

pytestmark = pytest.mark.e2e

THREE_DS = {"number": "4000 0000 0000 3220", "expiry_month": "12", "expiry_year": "2030", "cvv": "123", "holder_name": "Asha"}
NOT_AWAITING = "Payment is not awaiting authentication: it was already answered"


def start(stack, headers: dict, amount: int = 25000, **extra_headers: str) -> tuple[dict, dict]:
    """Create an order and pay it with the 3-D Secure card from the checkout's public endpoint."""
    order = new_order(stack, headers, amount=amount)
    response = requests.post(
        f"{stack.api}/payments/public",
        json={"order_id": order["id"], "method": "card", "card": THREE_DS},
        headers=extra_headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return order, response.json()


def authenticate(stack, payment_id: str, body: dict, **headers: str) -> requests.Response:
    return requests.post(f"{stack.api}/payments/{payment_id}/authenticate", json=body, headers=headers, timeout=10)


def cancel_waiting(stack, headers: dict) -> None:
    """Cancel the merchant's payments still waiting for their shopper, so later tests find every payment final."""
    waiting = requests.get(f"{stack.api}/payments", params={"status": "pending", "limit": 100}, headers=headers, timeout=10)
    for payment in waiting.json()["data"]:
        if (payment.get("authentication") or {}).get("status") == "pending":
            authenticate(stack, payment["id"], {"cancel": True})


def listening_merchant(stack, new_merchant, receivers) -> tuple[dict, object]:
    """A merchant of this test's own, whose webhooks reach a receiver that verifies their signatures."""
    headers = new_merchant()
    secret = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    server = receivers(secret)
    configure(stack, headers, url_of(server))
    return headers, server


def webhooks_of(server, payment_id: str) -> dict[str, dict]:
    """The payment's webhooks received so far, by event (deliveries may arrive in any order)."""
    return {e["event"]: e for e in server.state.events() if e["data"].get("payment", {}).get("id") == payment_id}


def received(server, payment_id: str, *names: str) -> dict[str, dict]:
    """Wait until the payment's webhooks ``names`` have arrived; return every one received."""
    return poll(lambda: webhooks_of(server, payment_id), lambda got: set(names) <= set(got), f"webhooks {names}")


def test_the_shoppers_otp_completes_the_payment_and_each_step_is_a_webhook(stack, new_merchant, receivers):
    headers, server = listening_merchant(stack, new_merchant, receivers)
    order, created = start(stack, headers)
    assert created["status"] == "pending" and created["card_last4"] == "3220"
    assert created["authentication"]["required"] is True and created["authentication"]["status"] == "pending"

    waiting = received(server, created["id"], "payment.created", "payment.pending")
    assert set(waiting) == {"payment.created", "payment.pending"}
    assert all(e["data"]["payment"]["authentication"]["status"] == "pending" for e in waiting.values())
    # Waiting for the shopper, not for the bank: it stays pending and the order is attempted.
    assert get(stack, headers, created["id"])["status"] == "pending"
    assert requests.get(f"{stack.api}/orders/{order['id']}", headers=headers, timeout=10).json()["status"] == "attempted"

    # No credentials: the checkout's bank page sends it.
    answered = authenticate(stack, created["id"], {"otp": "1234"})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["status"], body["authentication"]["status"]) == ("success", "passed")
    assert body["razorpay_signature"]
    assert answered.headers["Access-Control-Allow-Origin"] == "*"

    final = get(stack, headers, created["id"])
    # The payment paid its order, so the order's one order.paid comes too (docs/API.md, Events).
    events = received(server, created["id"], "payment.created", "payment.pending", "payment.success", "order.paid")
    assert set(events) == {"payment.created", "payment.pending", "payment.success", "order.paid"}
    assert events["payment.success"]["data"]["payment"] == final
    assert events["order.paid"]["data"]["order"]["id"] == order["id"]
    assert all(r.status == 200 for r in server.state.requests)  # the receiver verified every signature
    assert requests.get(f"{stack.api}/orders/{order['id']}", headers=headers, timeout=10).json()["status"] == "paid"


@pytest.mark.parametrize(
    ("answer", "code", "auth_status"),
    [({"otp": "4321"}, "AUTHENTICATION_FAILED", "failed"), ({"cancel": True}, "AUTHENTICATION_CANCELLED", "cancelled")],
)
def test_a_wrong_otp_or_cancel_fails_it_with_a_webhook(stack, new_merchant, receivers, answer, code, auth_status):
    headers, server = listening_merchant(stack, new_merchant, receivers)
    _, created = start(stack, headers)
    body = authenticate(stack, created["id"], answer, **{"Idempotency-Key": f"chk_{uuid.uuid4()}"}).json()
    assert (body["status"], body["error_code"], body["authentication"]["status"]) == ("failed", code, auth_status)
    assert "razorpay_signature" not in body
    events = received(server, created["id"], "payment.created", "payment.pending", "payment.failed")
    assert set(events) == {"payment.created", "payment.pending", "payment.failed"}
    assert events["payment.failed"]["data"]["payment"]["error_code"] == code


def test_an_unanswered_payment_times_out_on_the_workers_schedule(stack, new_merchant, receivers):
    headers, server = listening_merchant(stack, new_merchant, receivers)
    _, created = start(stack, headers)
    # Fifteen minutes pass (moved in the database: the per-merchant test clock is another issue's).
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE payments.payments SET auth_expires_at = now(), next_run_at = now() WHERE id = %s", (created["id"],)
        )
    done, _ = wait_final(stack, headers, created["id"], timeout=15)
    assert (done["status"], done["error_code"]) == ("failed", "AUTHENTICATION_TIMEOUT")
    assert done["authentication"]["status"] == "timed_out"
    events = received(server, created["id"], "payment.created", "payment.pending", "payment.failed")
    assert set(events) == {"payment.created", "payment.pending", "payment.failed"}
    assert events["payment.failed"]["data"]["payment"]["error_code"] == "AUTHENTICATION_TIMEOUT"
    late = authenticate(stack, created["id"], {"otp": "1234"})
    assert envelope(late, 400, "BAD_REQUEST_ERROR")["error"]["description"] == NOT_AWAITING


def test_the_merchant_api_and_the_fast_path_show_the_authentication(stack, merchant):
    order = new_order(stack, merchant, amount=3100)
    response = requests.post(
        f"{stack.api}/payments", json={"order_id": order["id"], "method": "card", "card": THREE_DS}, headers=merchant, timeout=10
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["authentication"]["status"] == "pending"
    assert get(stack, merchant, created["id"])["authentication"] == created["authentication"]
    public = requests.get(f"{stack.api}/payments/{created['id']}/public", timeout=10).json()
    assert public["authentication"] == created["authentication"]
    # A bank delay makes no sense for it (the shopper decides when): refused, nothing created.
    delayed = requests.post(
        f"{stack.api}/payments",
        json={"order_id": order["id"], "method": "card", "card": THREE_DS},
        headers={**merchant, "X-Test-Delay-Ms": "0"},
        timeout=10,
    )
    assert "X-Test-Delay-Ms" in envelope(delayed, 400, "BAD_REQUEST_ERROR")["error"]["description"]
    cancel_waiting(stack, merchant)


def test_hostile_answers_change_nothing(stack, merchant, other_merchant):
    _, created = start(stack, merchant)
    payment_id = created["id"]
    # Another merchant's key, a bad key, an unknown payment, malformed bodies.
    theirs = authenticate(stack, payment_id, {"otp": "1234"}, **{"X-Api-Key": other_merchant["X-Api-Key"]})
    envelope(theirs, 404, "NOT_FOUND_ERROR")
    envelope(authenticate(stack, payment_id, {"otp": "1234", "key": other_merchant["X-Api-Key"]}), 404, "NOT_FOUND_ERROR")
    envelope(authenticate(stack, payment_id, {"otp": "1234"}, **{"X-Api-Key": "key_forged"}), 401, "AUTHENTICATION_ERROR")
    envelope(authenticate(stack, "pay_AAAAAAAAAAAAAAAA", {"otp": "1234"}), 404, "NOT_FOUND_ERROR")
    for bad in ({}, {"otp": 1234}, {"otp": "x" * 100}, {"otp": "1234", "cancel": True}, {"otp": "1234", "status": "success"}):
        envelope(authenticate(stack, payment_id, bad), 400, "BAD_REQUEST_ERROR")
    raw = requests.post(
        f"{stack.api}/payments/{payment_id}/authenticate", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    envelope(raw, 400, "BAD_REQUEST_ERROR")
    assert get(stack, merchant, payment_id)["authentication"]["status"] == "pending"
    # A payment that needs no authentication.
    order = new_order(stack, merchant, amount=2000)
    plain = requests.post(
        f"{stack.api}/payments/public", json={"order_id": order["id"], "method": "upi", "vpa": "success@upi"}, timeout=10
    ).json()
    refused = authenticate(stack, plain["id"], {"otp": "1234"})
    assert envelope(refused, 400, "BAD_REQUEST_ERROR")["error"]["description"] == "Payment does not need authentication"
    cancel_waiting(stack, merchant)
    assert get(stack, merchant, payment_id)["authentication"]["status"] == "cancelled"


def test_a_double_click_and_replays_give_exactly_one_outcome(stack, merchant):
    order, created = start(stack, merchant)
    answers = [{"otp": "1234"}] * 8 + [{"otp": "0000"}] * 4 + [{"cancel": True}] * 4

    with concurrent.futures.ThreadPoolExecutor(len(answers)) as pool:
        responses = list(pool.map(lambda body: authenticate(stack, created["id"], body), answers))
    decided = [r for r in responses if r.status_code == 200]
    assert len(decided) == 1, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code != 200):
        assert envelope(refused, 400, "BAD_REQUEST_ERROR")["error"]["description"] == NOT_AWAITING
    outcome = decided[0].json()
    final = get(stack, merchant, created["id"])
    assert (final["status"], final["authentication"]["status"]) == (outcome["status"], outcome["authentication"]["status"])
    order_status = requests.get(f"{stack.api}/orders/{order['id']}", headers=merchant, timeout=10).json()["status"]
    assert order_status == ("paid" if outcome["status"] == "success" else "attempted")
    # A replay afterwards changes nothing either.
    again = authenticate(stack, created["id"], {"otp": "1234"})
    assert envelope(again, 400, "BAD_REQUEST_ERROR")["error"]["description"] == NOT_AWAITING
    assert get(stack, merchant, created["id"]) == final


def test_the_same_idempotency_key_replays_the_first_answer(stack, merchant):
    _, created = start(stack, merchant)
    key = {"Idempotency-Key": f"chk_{uuid.uuid4()}"}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: authenticate(stack, created["id"], {"otp": "1234"}, **key), range(4)))
    # The first answers; the others replay it (or, while it is still in flight, get 409).
    ok = [r for r in responses if r.status_code == 200]
    assert ok and {r.status_code for r in responses} <= {200, 409}
    assert len({r.content for r in ok}) == 1
    assert sum(1 for r in ok if r.headers.get("Idempotent-Replayed") != "true") == 1
    assert get(stack, merchant, created["id"])["status"] == "success"
