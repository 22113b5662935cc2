"""The per-merchant test clock through nginx, on a stack with the production webhook schedule.

Advancing a merchant's clock makes its scheduled work (webhook retries, endpoint disabling, bank
answers, refunds, authentication timeouts) come due through the same durable schedule columns the
running workers sweep; another merchant's work keeps real time.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from tests.conftest import Stack, running_stack
from tests.e2e.test_payments import envelope, new_order, wait_final
from tests.e2e.test_three_d_secure import THREE_DS, authenticate
from tests.e2e.test_webhooks import configure, get_log, poll, send_test_event, url_of

pytestmark = pytest.mark.e2e

# The production retry schedule (webhooks.models.RETRY_INTERVALS): waits before attempts 2 to 5.
PRODUCTION_WAITS = (60, 300, 1800, 7200)
THREE_DAYS = 3 * 86400


@pytest.fixture(scope="module")
def prod_stack(gateway_backing, tmp_path_factory) -> Iterator[Stack]:
    """A stack of its own with the production webhook intervals (1 min ... 2 h; disabled after 3 days)."""
    redis_index = (int(gateway_backing.run_id[-2:], 16) + 3) % 15 + 1
    with running_stack(gateway_backing, tmp_path_factory.mktemp("clock"), f"{gateway_backing.run_id}c", redis_index,
                       {"WEBHOOK_RETRY_INTERVALS_TEST": "false"}) as started:
        yield started


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def new_merchant(stack: Stack) -> dict[str, str]:
    email = f"clock-{secrets.token_hex(4)}@example.com"
    created = json.loads(stack.cli("auth.cli", "create-merchant", "--name", "Clock Merchant", "--email", email,
                                   "--password", "pw-" + secrets.token_hex(6)))
    return {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}


def advance(stack: Stack, headers: dict, seconds: int) -> dict:
    response = requests.post(f"{stack.api}/test/clock/advance", json={"seconds": seconds}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def clock(stack: Stack, headers: dict) -> dict:
    response = requests.get(f"{stack.api}/test/clock", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def failing_merchant(stack: Stack, receivers, fail_first: int) -> tuple[dict, object]:
    """A merchant whose default endpoint answers 500 ``fail_first`` times."""
    headers = new_merchant(stack)
    secret = requests.get(f"{stack.api}/webhooks/config", headers=headers, timeout=10).json()["webhook_secret"]
    server = receivers(secret, fail_first=fail_first)
    configure(stack, headers, url_of(server))
    return headers, server


def attempts_of(stack: Stack, headers: dict, log_id: str) -> int:
    return get_log(stack, headers, log_id)["attempts"]


def test_advance_read_reset_and_concurrent_advances_through_nginx(prod_stack):
    headers, other = new_merchant(prod_stack), new_merchant(prod_stack)
    assert clock(prod_stack, headers)["offset_seconds"] == 0
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: advance(prod_stack, headers, 600), range(12)))
    moved = clock(prod_stack, headers)
    assert moved["offset_seconds"] == 7200  # two advances at once add up
    assert moved["now"].endswith("Z")
    assert clock(prod_stack, other)["offset_seconds"] == 0
    reset = requests.post(f"{prod_stack.api}/test/clock/reset", headers=headers, timeout=10)
    assert reset.status_code == 200 and reset.json()["offset_seconds"] == 0
    assert clock(prod_stack, headers)["offset_seconds"] == 0


@pytest.mark.parametrize(
    "body",
    ['{"seconds": 0}', '{"seconds": -1}', '{"seconds": 1.5}', '{"seconds": "60"}', '{"seconds": true}',
     '{"seconds": null}', '{"seconds": 315360001}', '{"seconds": 1e400}', '{"seconds": 60, "merchant_id": "x"}',
     '{}', '[60]', '{"seconds": ', '\u0000'],
)
def test_hostile_input_is_a_400_and_changes_nothing(prod_stack, body):
    headers = new_merchant(prod_stack)
    advance(prod_stack, headers, 5)
    response = requests.post(f"{prod_stack.api}/test/clock/advance", data=body.encode(),
                             headers={**headers, "Content-Type": "application/json"}, timeout=10)
    envelope(response, 400, "BAD_REQUEST_ERROR")
    assert clock(prod_stack, headers)["offset_seconds"] == 5


def test_the_clock_needs_credentials(prod_stack):
    for method in ("get", "post"):
        path = "/test/clock" if method == "get" else "/test/clock/advance"
        response = getattr(requests, method)(f"{prod_stack.api}{path}", json={"seconds": 60},
                                             headers={"X-Merchant-Id": "550e8400-e29b-41d4-a716-446655440000"}, timeout=10)
        envelope(response, 401, "AUTHENTICATION_ERROR")


def test_a_webhook_walks_the_production_schedule_in_seconds_and_other_merchants_wait(prod_stack, receivers):
    headers, server = failing_merchant(prod_stack, receivers, fail_first=5)
    bystander, bystander_server = failing_merchant(prod_stack, receivers, fail_first=1)
    waiting = send_test_event(prod_stack, bystander)
    poll(lambda: attempts_of(prod_stack, bystander, waiting), lambda n: n == 1, "the bystander's first attempt")

    started = time.monotonic()
    log_id = send_test_event(prod_stack, headers)
    poll(lambda: attempts_of(prod_stack, headers, log_id), lambda n: n == 1, "the first attempt", deadline=5)
    for made, wait in enumerate(PRODUCTION_WAITS, start=1):
        # Seconds short of the retry nothing happens: the production schedule holds.
        advance(prod_stack, headers, wait - 3)
        time.sleep(0.4)
        assert attempts_of(prod_stack, headers, log_id) == made
        advance(prod_stack, headers, 3)
        poll(lambda made=made: attempts_of(prod_stack, headers, log_id), lambda n, made=made: n == made + 1,
             f"attempt {made + 1}", deadline=5)
    took = time.monotonic() - started
    done = get_log(prod_stack, headers, log_id)
    assert (done["status"], done["attempts"], done["next_retry_at"]) == ("failed", 5, None)
    assert [r.status for r in server.state.requests] == [500] * 5
    print(f"five production-schedule attempts (1 min ... 2 h) in {took:.1f} s")
    assert took < 10, took
    # The other merchant's delivery still waits for its real minute.
    assert attempts_of(prod_stack, bystander, waiting) == 1
    assert len(bystander_server.state.requests) == 1


def test_endpoint_disabling_follows_the_clock(prod_stack):
    headers = new_merchant(prod_stack)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"
    configure(prod_stack, headers, dead_url)
    logs = [send_test_event(prod_stack, headers) for _ in range(12)]

    def total_attempts() -> int:
        return sum(attempts_of(prod_stack, headers, log_id) for log_id in logs)

    # At least 10 failures in a row (the circuit opens after 5: one probe a minute of its clock).
    deadline = time.monotonic() + 20
    while total_attempts() < 10:
        assert time.monotonic() < deadline, total_attempts()
        advance(prod_stack, headers, 60)
        time.sleep(0.3)
    endpoints = requests.get(f"{prod_stack.api}/webhook-endpoints", headers=headers, timeout=10).json()["data"]
    (endpoint,) = endpoints
    assert endpoint["status"] == "enabled"  # failing for minutes, not yet 3 days

    advance(prod_stack, headers, THREE_DAYS)
    status = poll(lambda: requests.get(f"{prod_stack.api}/webhook-endpoints/{endpoint['id']}", headers=headers,
                                       timeout=10).json(),
                  lambda e: e["status"] == "disabled", "the endpoint disabled", deadline=10)
    assert status["disabled_reason"] == "failing"
    events = requests.get(f"{prod_stack.api}/events?type=webhook_endpoint.disabled", headers=headers, timeout=10).json()
    assert [e["data"]["webhook_endpoint"]["id"] for e in events["data"]] == [endpoint["id"]]


def test_a_long_bank_delay_is_reached_by_advancing(prod_stack):
    headers, other = new_merchant(prod_stack), new_merchant(prod_stack)
    body = {"amount": 1500, "method": "upi", "vpa": "success@upi"}
    slow = {**headers, "X-Test-Delay-Ms": "3600000"}
    payment = requests.post(f"{prod_stack.api}/payments", json=body, headers=slow, timeout=10).json()
    others = requests.post(f"{prod_stack.api}/payments", json=body, headers={**other, "X-Test-Delay-Ms": "3600000"},
                           timeout=10).json()
    poll(lambda: requests.get(f"{prod_stack.api}/payments/{payment['id']}", headers=headers, timeout=10).json()["status"],
         lambda s: s == "processing", "processing at the bank")
    advance(prod_stack, headers, 1800)
    time.sleep(0.5)
    assert requests.get(f"{prod_stack.api}/payments/{payment['id']}", headers=headers, timeout=10).json()["status"] == "processing"
    started = time.monotonic()
    advance(prod_stack, headers, 1800)
    done, _ = wait_final(prod_stack, headers, payment["id"], timeout=5)
    assert done["status"] == "success" and time.monotonic() - started < 3
    # The other merchant's payment waits its real hour.
    assert requests.get(f"{prod_stack.api}/payments/{others['id']}", headers=other, timeout=10).json()["status"] in (
        "pending", "processing")
    # After advancing, a new payment still takes its delay on the merchant's clock (here none at all).
    fresh = requests.post(f"{prod_stack.api}/payments", json=body, headers={**headers, "X-Test-Delay-Ms": "600000"},
                          timeout=10).json()
    time.sleep(1.0)
    assert requests.get(f"{prod_stack.api}/payments/{fresh['id']}", headers=headers, timeout=10).json()["status"] in (
        "pending", "processing")
    advance(prod_stack, headers, 600)
    assert wait_final(prod_stack, headers, fresh["id"], timeout=5)[0]["status"] == "success"


def test_a_refund_delay_is_reached_by_advancing(prod_stack):
    headers, other = new_merchant(prod_stack), new_merchant(prod_stack)
    refunds = {}
    for who in (headers, other):
        payment = requests.post(f"{prod_stack.api}/payments", json={"amount": 5000, "method": "upi", "vpa": "success@upi"},
                                headers={**who, "X-Test-Delay-Ms": "0"}, timeout=10).json()
        wait_final(prod_stack, who, payment["id"])
        refund = requests.post(f"{prod_stack.api}/payments/{payment['id']}/refunds", json={"amount": 1000},
                               headers={**who, "X-Test-Delay-Ms": "86400000"}, timeout=10)
        assert refund.status_code == 201, refund.text
        refunds[who["X-Api-Key"]] = refund.json()["id"]

    def status(who: dict) -> str:
        return requests.get(f"{prod_stack.api}/refunds/{refunds[who['X-Api-Key']]}", headers=who, timeout=10).json()["status"]

    time.sleep(0.5)
    assert status(headers) == "pending"
    advance(prod_stack, headers, 86400)
    poll(lambda: status(headers), lambda s: s == "processed", "the refund processed", deadline=5)
    assert status(other) == "pending"


def test_an_unanswered_3ds_payment_times_out_after_advancing_15_minutes(prod_stack):
    headers, other = new_merchant(prod_stack), new_merchant(prod_stack)

    def start(who: dict) -> dict:
        order = new_order(prod_stack, who, amount=2500)
        response = requests.post(f"{prod_stack.api}/payments/public",
                                 json={"order_id": order["id"], "method": "card", "card": THREE_DS},
                                 headers={"X-Api-Key": who["X-Api-Key"]}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    payment, others = start(headers), start(other)
    advance(prod_stack, headers, 900)
    done, _ = wait_final(prod_stack, headers, payment["id"], timeout=5)
    assert (done["status"], done["error_code"]) == ("failed", "AUTHENTICATION_TIMEOUT")
    assert done["authentication"]["status"] == "timed_out"
    late = authenticate(prod_stack, payment["id"], {"otp": "1234"})
    assert late.status_code == 400
    # The other merchant's shopper still has the window open.
    assert requests.get(f"{prod_stack.api}/payments/{others['id']}", headers=other, timeout=10).json()["status"] == "pending"
    assert authenticate(prod_stack, others["id"], {"otp": "1234"}).status_code == 200

    # A payment started on the advanced clock gets its 15 minutes on that clock.
    fresh = start(headers)
    window = _parse(fresh["authentication"]["expires_at"]) - _parse(clock(prod_stack, headers)["now"])
    assert 890 <= window.total_seconds() <= 900, window
    time.sleep(1.0)
    assert requests.get(f"{prod_stack.api}/payments/{fresh['id']}", headers=headers, timeout=10).json()["status"] == "pending"
    answered = authenticate(prod_stack, fresh["id"], {"otp": "1234"})
    assert answered.status_code == 200, answered.text
    assert wait_final(prod_stack, headers, fresh["id"])[0]["status"] == "success"
