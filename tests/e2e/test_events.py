"""Events and webhook endpoints through nginx: every event stored, filters, cursors, resend, several
endpoints with their own filters and Standard Webhooks signatures, replay."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from standardwebhooks import Webhook

from tests.e2e.test_webhooks import poll, url_of

pytestmark = pytest.mark.e2e


def pay(stack, headers: dict, vpa: str = "success@upi") -> str:
    order = requests.post(f"{stack.api}/orders", json={"amount": 50000}, headers=headers, timeout=10).json()
    payment = requests.post(f"{stack.api}/payments", json={"order_id": order["id"], "method": "upi", "vpa": vpa},
                            headers=headers, timeout=10)
    assert payment.status_code == 201, payment.text
    return payment.json()["id"]


def events_of(stack, headers: dict, query: str = "") -> dict:
    response = requests.get(f"{stack.api}/events{query}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def add_endpoint(stack, headers: dict, server, events: list[str]) -> dict:
    response = requests.post(f"{stack.api}/webhook-endpoints", json={"url": url_of(server), "enabled_events": events},
                             headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    server.state.secret = response.json()["secret"]
    return response.json()


def test_every_event_is_stored_without_an_endpoint_and_listed_by_cursor(stack, new_merchant):
    merchant = new_merchant()
    payment_id = pay(stack, merchant)
    got = poll(lambda: events_of(stack, merchant, "?type=payment.*")["data"],
               lambda data: {e["type"] for e in data} >= {"payment.created", "payment.pending", "payment.success"},
               "stored payment events")
    assert all(e["data"]["payment"]["id"] == payment_id for e in got)
    success = next(e for e in got if e["type"] == "payment.success")
    assert success["data"]["payment"]["status"] == "success"
    detail = requests.get(f"{stack.api}/events/{success['id']}", headers=merchant, timeout=10).json()
    assert detail["deliveries"] == [] and detail["data"] == success["data"]
    # Cursor pages: one at a time, newest first, then back.
    first = events_of(stack, merchant, "?limit=1")
    second = events_of(stack, merchant, f"?limit=1&starting_after={first['data'][0]['id']}")
    assert first["has_more"] and second["data"][0]["id"] != first["data"][0]["id"]
    back = events_of(stack, merchant, f"?limit=1&ending_before={second['data'][0]['id']}")
    assert back["data"] == first["data"] and back["has_more"] is False
    exact = events_of(stack, merchant, "?type=payment.success")["data"]
    assert [e["id"] for e in exact] == [success["id"]]
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert events_of(stack, merchant, f"?created_gte={later}")["data"] == []
    bad = requests.get(f"{stack.api}/events?type=payment.%25", headers=merchant, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST_ERROR"


def test_two_endpoints_with_different_filters_receive_exactly_their_events(stack, new_merchant, receivers):
    merchant = new_merchant()
    successes, refunds = receivers(), receivers()
    success_endpoint = add_endpoint(stack, merchant, successes, ["payment.success"])
    add_endpoint(stack, merchant, refunds, ["refund.*"])
    payment_id = pay(stack, merchant)
    poll(lambda: requests.get(f"{stack.api}/payments/{payment_id}", headers=merchant, timeout=10).json()["status"],
         lambda status: status == "success", "payment success")
    refund = requests.post(f"{stack.api}/payments/{payment_id}/refunds", json={"amount": 100}, headers=merchant, timeout=10)
    assert refund.status_code == 201, refund.text
    poll(lambda: [e["event"] for e in refunds.state.events()],
         lambda got: sorted(got) == ["refund.created", "refund.processed"], "refund webhooks")
    poll(lambda: [e["event"] for e in successes.state.events()], lambda got: got == ["payment.success"], "payment.success")
    time.sleep(1)  # anything misrouted would have arrived by now
    assert [e["event"] for e in successes.state.events()] == ["payment.success"]
    assert sorted(e["event"] for e in refunds.state.events()) == ["refund.created", "refund.processed"]
    # The Standard Webhooks reference library verifies the delivery exactly as it arrived.
    (request,) = successes.state.requests
    verified = Webhook(success_endpoint["secret"]).verify(request.body, dict(request.headers))
    assert verified["data"]["payment"]["id"] == payment_id
    # The event shows its delivery per endpoint; a resend arrives again.
    event_id = verified["id"]
    detail = requests.get(f"{stack.api}/events/{event_id}", headers=merchant, timeout=10).json()
    assert [(d["endpoint_id"], d["status"], d["response_code"]) for d in detail["deliveries"]] == [
        (success_endpoint["id"], "success", 200)]
    resent = requests.post(f"{stack.api}/events/{event_id}/resend", json={}, headers=merchant, timeout=10)
    assert resent.status_code == 202, resent.text
    poll(lambda: len(successes.state.requests), lambda n: n == 2, "the resent event")
    assert json.loads(successes.state.requests[1].body)["id"] == event_id


def test_replay_sends_a_window_again_and_other_merchants_see_nothing(stack, new_merchant, other_merchant, receivers):
    merchant = new_merchant()
    server = receivers()
    endpoint = add_endpoint(stack, merchant, server, ["payment.*"])
    requests.patch(f"{stack.api}/webhook-endpoints/{endpoint['id']}", json={"status": "disabled"}, headers=merchant, timeout=10)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    pay(stack, merchant, vpa="failure@upi")
    stored = poll(lambda: events_of(stack, merchant, "?type=payment.failed")["data"], bool, "payment.failed stored")
    detail = poll(lambda: requests.get(f"{stack.api}/events/{stored[0]['id']}", headers=merchant, timeout=10).json(),
                  lambda d: d["deliveries"], "its disabled delivery")
    assert [(d["status"], d["attempts"]) for d in detail["deliveries"]] == [("disabled", 0)]
    assert server.state.requests == []
    for who, expect in ((other_merchant, 404), (merchant, 202)):
        if who is merchant:
            requests.patch(f"{stack.api}/webhook-endpoints/{endpoint['id']}", json={"status": "enabled"}, headers=merchant, timeout=10)
        replay = requests.post(f"{stack.api}/webhook-endpoints/{endpoint['id']}/replay",
                               json={"created_gte": started, "only_failed": True}, headers=who, timeout=10)
        assert replay.status_code == expect, replay.text
    assert replay.json()["replayed"] == 3  # created, pending, failed: all were disabled
    poll(lambda: sorted(e["event"] for e in server.state.events()),
         lambda got: got == ["payment.created", "payment.failed", "payment.pending"], "the replayed events")
    assert stored[0]["id"] not in json.dumps(events_of(stack, other_merchant, f"?created_gte={started}&limit=100"))


def test_a_refusing_endpoint_is_disabled_within_a_minute_at_a_bounded_cost(stack, new_merchant):
    merchant = new_merchant()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"
    endpoint = requests.post(f"{stack.api}/webhook-endpoints", json={"url": dead_url, "enabled_events": ["payment.*"]},
                             headers=merchant, timeout=10).json()
    started = time.monotonic()
    for _ in range(3):
        pay(stack, merchant)  # 9 deliveries: a budget of 45 attempts without the circuit
    status = poll(lambda: requests.get(f"{stack.api}/webhook-endpoints/{endpoint['id']}", headers=merchant, timeout=10).json(),
                  lambda e: e["status"] == "disabled", "the endpoint disabled", deadline=100)
    took = time.monotonic() - started
    assert status["disabled_reason"] == "failing"
    logs = requests.get(f"{stack.api}/webhooks?limit=100", headers=merchant, timeout=10).json()["data"]
    attempts = sum(log["attempts"] for log in logs if log["endpoint_id"] == endpoint["id"])
    print(f"refusing endpoint disabled after {took:.1f} s and {attempts} attempts")
    assert 55 <= took <= 80, took
    assert attempts <= 25, attempts
    (event,) = events_of(stack, merchant, "?type=webhook_endpoint.disabled")["data"]
    assert event["data"]["webhook_endpoint"]["id"] == endpoint["id"]
    # From now on its deliveries are recorded as disabled, without an attempt.
    later = pay(stack, merchant)
    deliveries = poll(lambda: [d for d in requests.get(f"{stack.api}/webhooks?payment_id={later}", headers=merchant,
                                                       timeout=10).json()["data"]],
                      lambda got: len(got) == 3 and all(d["status"] == "disabled" for d in got), "disabled deliveries")
    assert all(d["attempts"] == 0 for d in deliveries)
