"""Webhooks through nginx: signed payment events, the retry schedule, manual retry, secrets, logs."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from gateway_common import signing

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TEST_WEBHOOK_SECRET = "whsec_test_abc123"
LOG_FIELDS = {"id", "endpoint_id", "event", "status", "attempts", "created_at", "last_attempt_at", "next_retry_at", "response_code",
              "last_error"}


def _load_receiver():
    spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "examples" / "webhook_receiver.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["webhook_receiver"] = module
    spec.loader.exec_module(module)
    return module


receiver_module = _load_receiver()


def poll(fetch: Callable[[], object], done: Callable[[object], bool], what: str, deadline: float = 30.0) -> object:
    """Fetch until ``done`` holds or the deadline passes."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        last = fetch()
        if done(last):
            return last
        time.sleep(0.2)
    pytest.fail(f"{what} not reached within {deadline}s; last: {last}")


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/webhook"


def configure(stack, headers: dict, url: str | None) -> dict:
    response = requests.put(f"{stack.api}/webhooks/config", json={"webhook_url": url}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def get_log(stack, headers: dict, log_id: str) -> dict:
    response = requests.get(f"{stack.api}/webhooks/{log_id}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def send_test_event(stack, headers: dict) -> str:
    response = requests.post(f"{stack.api}/webhooks/test", headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert response.json()["id"].startswith("whlog_")
    return response.json()["id"]


def test_the_test_merchant_has_the_documented_webhook_secret(stack, merchant):
    config = requests.get(f"{stack.api}/webhooks/config", headers=merchant, timeout=10)
    assert config.status_code == 200
    assert config.json()["webhook_secret"] == TEST_WEBHOOK_SECRET


def test_a_payment_sends_created_pending_and_success_signed(stack, merchant, receivers):
    secret = requests.get(f"{stack.api}/webhooks/config", headers=merchant, timeout=10).json()["webhook_secret"]
    server = receivers(secret)
    configure(stack, merchant, url_of(server))
    try:
        order = requests.post(f"{stack.api}/orders", json={"amount": 50000, "currency": "INR"}, headers=merchant, timeout=10)
        assert order.status_code == 201, order.text
        payment = requests.post(
            f"{stack.api}/payments",
            json={"order_id": order.json()["id"], "method": "upi", "vpa": "success@upi"},
            headers=merchant,
            timeout=10,
        )
        assert payment.status_code == 201, payment.text
        payment_id = payment.json()["id"]

        def ours() -> dict[str, dict]:
            return {e["event"]: e for e in server.state.events() if e["data"].get("payment", {}).get("id") == payment_id}

        events = poll(ours, lambda got: {"payment.created", "payment.pending", "payment.success"} <= set(got), "payment webhooks")
        final = requests.get(f"{stack.api}/payments/{payment_id}", headers=merchant, timeout=10).json()
        assert events["payment.success"]["data"]["payment"] == final
        assert events["payment.created"]["data"]["payment"]["amount"] == 50000
        for event in events.values():
            assert set(event) == {"id", "event", "timestamp", "data"}
            assert event["id"].startswith("evt_")
        for received in server.state.requests:
            assert received.status == 200  # the receiver verified the signatures
            assert signing.verify(secret, received.body, received.headers["X-Webhook-Signature"])
            assert signing.verify_v2(secret, received.body, received.headers["X-Webhook-Signature-V2"])
            assert received.headers["X-Webhook-Id"] == json.loads(received.body)["id"]

        logs = poll(
            lambda: requests.get(f"{stack.api}/webhooks", params={"payment_id": payment_id}, headers=merchant, timeout=10).json(),
            lambda body: body["total"] >= 3 and all(d["status"] == "success" for d in body["data"]),
            "successful logs",
        )
        assert {d["event"] for d in logs["data"]} >= {"payment.created", "payment.pending", "payment.success"}
        assert all(set(d) == LOG_FIELDS for d in logs["data"])
        assert all(d["attempts"] == 1 and d["response_code"] == 200 for d in logs["data"])
        newest = logs["data"][0]
        detail = get_log(stack, merchant, newest["id"])
        assert detail["payload"]["data"]["payment"]["id"] == payment_id
        assert detail["url"] == url_of(server)

        # Refund events belong to the payment's webhook history too (the dashboard's payment page).
        refund = requests.post(f"{stack.api}/payments/{payment_id}/refunds", json={"amount": 100}, headers=merchant, timeout=10)
        assert refund.status_code == 201, refund.text
        refund_id = refund.json()["id"]
        poll(
            lambda: {e["event"] for e in server.state.events() if e["data"].get("refund", {}).get("id") == refund_id},
            lambda got: {"refund.created", "refund.processed"} <= got,
            "refund webhooks",
        )
        history = poll(
            lambda: requests.get(f"{stack.api}/webhooks", params={"payment_id": payment_id}, headers=merchant, timeout=10).json(),
            lambda body: {"refund.created", "refund.processed"} <= {d["event"] for d in body["data"]},
            "refund logs under the payment",
        )
        assert history["data"][0]["event"].startswith("refund.")
    finally:
        configure(stack, merchant, None)


def test_failed_attempts_are_retried_5_then_10_seconds_apart(stack, new_merchant, receivers):
    headers = new_merchant()
    secret = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    server = receivers(secret, fail_first=2)
    configure(stack, headers, url_of(server))
    log_id = send_test_event(stack, headers)
    done = poll(lambda: get_log(stack, headers, log_id), lambda d: d["status"] == "success", "delivery after retries", 40)
    assert done["attempts"] == 3
    assert done["response_code"] == 200
    first, second, third = server.state.requests[:3]
    assert [r.status for r in (first, second, third)] == [500, 500, 200]
    assert 4.5 <= second.at - first.at < 9.5
    assert 9.5 <= third.at - second.at < 14.5
    assert first.body == second.body == third.body
    assert {r.headers["X-Webhook-Id"] for r in (first, second, third)} == {third.event["id"]}
    assert third.event["event"] == "webhook.test"


def test_five_failures_mark_the_log_failed_and_manual_retry_delivers(stack, new_merchant, receivers):
    headers = new_merchant()
    secret = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    server = receivers(secret, fail_first=5)
    configure(stack, headers, url_of(server))
    log_id = send_test_event(stack, headers)
    failed = poll(lambda: get_log(stack, headers, log_id), lambda d: d["status"] != "pending", "five failed attempts", 80)
    assert failed["status"] == "failed"
    assert failed["attempts"] == 5
    assert failed["response_code"] == 500
    assert failed["next_retry_at"] is None
    assert "failing on purpose" in failed["response_body"]
    assert len(server.state.requests) == 5

    retry = requests.post(f"{stack.api}/webhooks/{log_id}/retry", headers=headers, timeout=10)
    assert retry.status_code == 200
    assert retry.json() == {"id": log_id, "status": "pending", "message": "Webhook retry scheduled"}
    done = poll(lambda: get_log(stack, headers, log_id), lambda d: d["status"] == "success", "manual retry")
    assert done["attempts"] == 1
    assert server.state.events()[0]["event"] == "webhook.test"


def test_regenerated_secret_signs_from_then_on(stack, new_merchant, receivers):
    headers = new_merchant()
    old = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    regenerated = requests.post(f"{stack.api}/webhooks/regenerate-secret", headers=headers, timeout=10)
    assert regenerated.status_code == 200
    new = regenerated.json()["webhook_secret"]
    assert new.startswith("whsec_") and new != old
    assert requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"] == new
    server = receivers(new)
    configure(stack, headers, url_of(server))
    log_id = send_test_event(stack, headers)
    poll(lambda: get_log(stack, headers, log_id), lambda d: d["status"] == "success", "test event")
    (received,) = server.state.requests
    assert signing.verify_v2(new, received.body, received.headers["X-Webhook-Signature-V2"])
    assert not signing.verify(old, received.body, received.headers["X-Webhook-Signature"])


def test_bad_config_and_other_merchants_logs_are_refused(stack, merchant, new_merchant, receivers):
    headers = new_merchant()
    no_url = requests.post(f"{stack.api}/webhooks/test", headers=headers, timeout=10)
    assert no_url.status_code == 400
    assert no_url.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    for body in ({"webhook_url": "ftp://example.com/x"}, {"webhook_url": "x" * 3000}, {"webhook_url": 5}, {"url": "http://a.b"}):
        bad = requests.put(f"{stack.api}/webhooks/config", json=body, headers=headers, timeout=10)
        assert bad.status_code == 400, body
        assert bad.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    server = receivers("whsec_unused")
    configure(stack, headers, url_of(server))
    log_id = send_test_event(stack, headers)
    for response in (
        requests.get(f"{stack.api}/webhooks/{log_id}", headers=merchant, timeout=10),
        requests.post(f"{stack.api}/webhooks/{log_id}/retry", headers=merchant, timeout=10),
        requests.get(f"{stack.api}/webhooks/whlog_AAAAAAAAAAAAAAAA", headers=headers, timeout=10),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND_ERROR"
    listing = requests.get(f"{stack.api}/webhooks", params={"limit": 10, "offset": 0}, headers=headers, timeout=10).json()
    assert listing["total"] == 1 and listing["limit"] == 10 and listing["offset"] == 0
    assert listing["data"][0]["id"] == log_id
    assert requests.get(f"{stack.api}/webhooks", timeout=10).status_code == 401
