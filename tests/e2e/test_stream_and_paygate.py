"""The live event stream and the ``paygate`` client and command, through nginx."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import httpx_sse
import paygate
import pytest

from tests.e2e.test_events import pay
from tests.e2e.test_webhooks import poll, url_of

pytestmark = pytest.mark.e2e

PAYGATE = str(Path(sys.executable).with_name("paygate"))


def sse_client(stack, headers: dict) -> httpx.Client:
    return httpx.Client(base_url=stack.api, headers=headers, timeout=httpx.Timeout(10.0, read=4.0))


def read_events(client: httpx.Client, until: callable, last_event_id: str | None = None, query: str = "") -> list:
    """Read the stream until ``until(events)`` holds; a quiet stream (4 s without a byte) ends the read."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    got = []
    try:
        with httpx_sse.connect_sse(client, "GET", f"/events/stream{query}", headers=headers) as source:
            assert source.response.status_code == 200
            assert source.response.headers["content-type"].startswith("text/event-stream")
            for sse in source.iter_sse():
                got.append(sse)
                if until(got):
                    break
    except httpx.ReadTimeout:
        pass
    return got


def test_stream_sends_events_live_and_resumes_from_last_event_id(stack, new_merchant, other_merchant):
    merchant = new_merchant()
    client = sse_client(stack, merchant)
    first_payment: list[str] = []
    threading.Timer(0.5, lambda: first_payment.append(pay(stack, merchant))).start()
    live = read_events(client, lambda got: any(e.event == "payment.success" for e in got))
    assert [e.event for e in live] == ["payment.created", "payment.pending", "payment.success"]
    body = json.loads(live[-1].data)
    assert body["id"] == live[-1].id and body["data"]["payment"]["id"] == first_payment[0]
    # Away for a while: what happened meanwhile comes first on the reconnect.
    second = pay(stack, merchant, vpa="failure@upi")
    poll(lambda: [e["type"] for e in paygate.Client(merchant["X-Api-Key"], merchant["X-Api-Secret"], stack.api)
                  .events.list("payment.failed").data], bool, "payment.failed stored")
    resumed = read_events(client, lambda got: {"order.paid", "payment.failed"} <= {e.event for e in got},
                          last_event_id=live[-1].id)
    # Everything after the last event seen arrives: the first payment's order.paid (written with its
    # payment.success, but relayed by a task of its own, so it may be stored before or after the
    # second payment's events) and the second payment's events, in their order.
    assert sorted(e.event for e in resumed) == ["order.paid", "payment.created", "payment.failed", "payment.pending"]
    paid = next(e for e in resumed if e.event == "order.paid")
    assert json.loads(paid.data)["data"]["payment"]["id"] == first_payment[0]
    seconds = [e for e in resumed if e.event != "order.paid"]
    assert [e.event for e in seconds] == ["payment.created", "payment.pending", "payment.failed"]
    assert all(json.loads(e.data)["data"]["payment"]["id"] == second for e in seconds)
    # Types narrow the stream; another merchant resuming from our event gets nothing of ours.
    only_failed = read_events(client, lambda got: bool(got), last_event_id=live[-1].id, query="?types=payment.failed")
    assert [e.event for e in only_failed] == ["payment.failed"]
    theirs = read_events(sse_client(stack, other_merchant), lambda got: bool(got), last_event_id=live[0].id)
    assert theirs == []
    bad = httpx.get(f"{stack.api}/events/stream?types=PAYMENT", headers=merchant, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST_ERROR"


def _stream_workers(stack) -> list[int]:
    """The gunicorn workers of this stack's stream process (found by their port in the environment)."""
    marker = f"WEBHOOKS_STREAM_PORT={stack.env['WEBHOOKS_STREAM_PORT']}".encode()
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"gunicorn_stream.conf.py" not in cmdline or marker not in Path(f"/proc/{entry}/environ").read_bytes():
                continue
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        found[int(entry)] = ppid
    # The Procfile's shell, the gunicorn master and its worker all match: the worker is the one
    # whose parent matches and that has no child of its own (killing the master would end the stack).
    parents = set(found.values())
    return [pid for pid, ppid in found.items() if ppid in found and pid not in parents]


def test_paygate_listen_forwards_real_events_and_survives_a_restart(stack, new_merchant, receivers):
    merchant = new_merchant()
    env = {**os.environ, "PAYGATE_API_KEY": merchant["X-Api-Key"], "PAYGATE_API_SECRET": merchant["X-Api-Secret"],
           "PAYGATE_BASE_URL": stack.api}
    server = receivers()
    listen = subprocess.Popen([PAYGATE, "listen", "--forward-to", url_of(server)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        first = listen.stdout.readline()
        secret = re.search(r"(whsec_\S+)", first).group(1)
        server.state.secret = secret  # the receiver checks every request against this session's secret
        threading.Thread(target=lambda: lines.extend(listen.stdout), daemon=True).start()
        time.sleep(1)

        def forwarded(payment_id: str) -> list[str]:
            return [e["event"] for e in server.state.events() if e["data"].get("payment", {}).get("id") == payment_id]

        before = pay(stack, merchant)
        poll(lambda: forwarded(before), lambda got: "payment.success" in got, "forwarded events")
        workers = _stream_workers(stack)
        assert workers, "the stream process's workers were not found"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)  # the stream server dies mid-stream; gunicorn starts a new worker
        during = pay(stack, merchant, vpa="failure@upi")
        events = poll(lambda: forwarded(during), lambda got: "payment.failed" in got, "events after the restart", 45)
        assert sorted(events) == ["payment.created", "payment.failed", "payment.pending"]
        poll(lambda: forwarded(before), lambda got: "order.paid" in got, "the order.paid of the first payment")
        assert sorted(forwarded(before)) == ["order.paid", "payment.created", "payment.pending", "payment.success"]
        # trigger makes real objects; its payment.failed reaches the listener too.
        triggered = subprocess.run([PAYGATE, "trigger", "payment.failed"], env=env, capture_output=True, text=True,
                                   timeout=60, check=True).stdout
        payment_id = re.search(r"(pay_[A-Za-z0-9]{16})", triggered).group(1)
        poll(lambda: forwarded(payment_id), lambda got: "payment.failed" in got, "the triggered payment.failed")
        poll(lambda: lines, lambda got: any("payment.failed" in line and "[200]" in line for line in got), "a printed line")
        listed = subprocess.run([PAYGATE, "events", "list", "--type", "payment.failed", "--limit", "5"], env=env,
                                capture_output=True, text=True, timeout=30, check=True).stdout
        failed_event = next(e for e in server.state.events() if e["event"] == "payment.failed"
                            and e["data"]["payment"]["id"] == payment_id)
        assert failed_event["id"] in listed
    finally:
        listen.terminate()
        listen.wait(10)
    # events resend goes to the merchant's endpoints; with none it says so.
    refused = subprocess.run([PAYGATE, "events", "resend", failed_event["id"]], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "No enabled webhook endpoint" in refused.stderr
    client = paygate.Client(merchant["X-Api-Key"], merchant["X-Api-Secret"], stack.api)
    endpoint_rx = receivers()
    endpoint = client.webhook_endpoints.create(url_of(endpoint_rx), ["payment.failed"])
    endpoint_rx.state.secret = endpoint["secret"]
    resent = subprocess.run([PAYGATE, "events", "resend", failed_event["id"]], env=env, capture_output=True, text=True,
                            check=True).stdout
    assert "Resent" in resent
    poll(lambda: [e["id"] for e in endpoint_rx.state.events()], lambda got: got == [failed_event["id"]], "the resend")
    request = endpoint_rx.state.requests[0]
    assert paygate.Webhook(endpoint["secret"]).verify(request.body, request.headers)["id"] == failed_event["id"]


def test_paygate_client_resources_cursors_idempotency_and_errors(stack, new_merchant):
    merchant = new_merchant()
    client = paygate.Client(merchant["X-Api-Key"], merchant["X-Api-Secret"], stack.api)
    order = client.orders.create(50000, receipt="sdk")
    first = client.payments.create(order_id=order["id"], method="upi", vpa="success@upi", idempotency_key="sdk-key-1")
    again = client.payments.create(order_id=order["id"], method="upi", vpa="success@upi", idempotency_key="sdk-key-1")
    assert again["id"] == first["id"]  # the same key: the same payment
    assert client.payments.wait(first["id"])["status"] == "success"
    refund = client.refunds.create(first["id"], 100)
    assert client.refunds.retrieve(refund["id"])["payment_id"] == first["id"]
    with pytest.raises(paygate.NotFoundError) as caught:
        client.payments.retrieve("pay_AAAAAAAAAAAAAAAA")
    assert caught.value.status == 404 and caught.value.code == "NOT_FOUND_ERROR"
    with pytest.raises(paygate.InvalidVpaError):
        client.payments.create(order_id=order["id"], method="upi", vpa="not a vpa")
    with pytest.raises(paygate.AuthenticationError):
        paygate.Client("key_nope", "secret_nope", stack.api).orders.list()
    poll(lambda: len(client.events.list(limit=100).data), lambda n: n >= 5, "stored events")
    paged = [e["id"] for e in client.events.list(limit=2).auto_paging_iter()]
    whole = [e["id"] for e in client.events.list(limit=100).data]
    assert paged == whole and len(set(paged)) == len(paged)


def test_order_paid_once_per_order_and_paygate_triggers_it(stack, new_merchant):
    merchant = new_merchant()
    env = {**os.environ, "PAYGATE_API_KEY": merchant["X-Api-Key"], "PAYGATE_API_SECRET": merchant["X-Api-Secret"],
           "PAYGATE_BASE_URL": stack.api}
    triggered = subprocess.run([PAYGATE, "trigger", "order.paid"], env=env, capture_output=True, text=True, timeout=60,
                               check=True).stdout
    order_id = re.search(r"(order_[A-Za-z0-9]{16})", triggered).group(1)
    payment_id = re.search(r"(pay_[A-Za-z0-9]{16})", triggered).group(1)
    client = paygate.Client(merchant["X-Api-Key"], merchant["X-Api-Secret"], stack.api)

    def paid_events(order: str) -> list[dict]:
        return [e for e in client.events.list("order.paid", limit=100).data if e["data"]["order"]["id"] == order]

    (event,) = poll(lambda: paid_events(order_id), bool, "the triggered order.paid")
    assert event["data"]["order"]["status"] == "paid" and event["data"]["payment"]["id"] == payment_id
    # Several attempts on one order at once: one succeeds, and the order is paid (and announced) once.
    order = client.orders.create(40000)
    attempts = [httpx.post(f"{stack.api}/payments", json={"order_id": order["id"], "method": "upi", "vpa": f"shopper{i}@okaxis"},
                           headers={**merchant, "X-Test-Delay-Ms": "2000"}, timeout=10).json() for i in range(4)]
    finals = [client.payments.wait(p["id"]) for p in attempts]
    (winner,) = [p["id"] for p in finals if p["status"] == "success"]
    (event,) = poll(lambda: paid_events(order["id"]), bool, "the order's order.paid")
    time.sleep(1)  # a second one would have been stored with the first
    assert [e["data"]["payment"]["id"] for e in paid_events(order["id"])] == [winner]
