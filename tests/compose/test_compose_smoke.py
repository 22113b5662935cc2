"""End-to-end smoke of the compose stack: the images as built, run on the host network.

Health, an order paid and refunded with its signed webhooks, and the hosted checkout page in
Chromium, all through the containers' gateway and checkout CDN. `make test-compose` runs it;
`make test` does not (marker ``compose``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import pytest
import requests
from gateway_common import signing
from playwright.sync_api import expect, sync_playwright

# The end-to-end suite's poll-with-a-deadline and its loader of examples/webhook_receiver.py.
from tests.e2e.test_webhooks import poll, receiver_module

pytestmark = pytest.mark.compose

MERCHANT = {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "secret_test_xyz789"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PARTS = ("postgres", "redis", "auth", "payments", "gateway_worker", "refunds", "refunds-worker", "webhooks",
         "webhooks-stream", "webhooks-worker", "gateway", "checkout-cdn", "dashboard")


@pytest.fixture
def receiver(compose_stack) -> Iterator[object]:
    """A merchant webhook receiver on 127.0.0.1, configured as the seeded merchant's webhook URL."""
    config = requests.get(f"{compose_stack.api}/webhooks/config", headers=MERCHANT, timeout=10)
    assert config.status_code == 200, config.text
    secret = config.json()["webhook_secret"]
    server = receiver_module.serve_in_thread(secret)
    url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    configured = requests.put(f"{compose_stack.api}/webhooks/config", json={"webhook_url": url}, headers=MERCHANT, timeout=10)
    assert configured.status_code == 200, configured.text
    server.secret = secret
    try:
        yield server
    finally:
        requests.put(f"{compose_stack.api}/webhooks/config", json={"webhook_url": None}, headers=MERCHANT, timeout=10)
        server.shutdown()
        server.server_close()


def container_states(compose_stack) -> dict[str, dict[str, str]]:
    """Return each container's service, user, state, exit code and health, by service name."""
    states = {}
    for cid in compose_stack.compose("ps", "-a", "-q").stdout.split():
        fields = _docker("inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}|{{.Config.User}}|'
                         "{{.State.Status}}|{{.State.ExitCode}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}", cid)
        service, user, status, code, health = fields.strip().split("|")
        states[service] = {"user": user, "status": status, "exit": code, "health": health}
    return states


def test_every_part_runs_healthy_as_a_non_root_user(compose_stack):
    deadline = time.monotonic() + 90
    states = container_states(compose_stack)
    while any(s["health"] not in ("healthy", "") for s in states.values()) and time.monotonic() < deadline:
        time.sleep(2)
        states = container_states(compose_stack)
    assert states["migrate"]["status"] == "exited" and states["migrate"]["exit"] == "0", states["migrate"]
    assert set(states) == {*PARTS, "migrate"}
    for service in PARTS:
        # Health as the engine sees it: each image's HEALTHCHECK (workers: their heartbeat), or the compose file's.
        assert states[service]["status"] == "running" and states[service]["health"] == "healthy", (service, states)
    for service in {*PARTS, "migrate"} - {"postgres"}:
        # PostgreSQL's entrypoint starts as root to own its data volume, then drops to the postgres user.
        assert states[service]["user"] not in ("", "root", "0"), (service, states[service])


def _docker(*args: str) -> str:
    import subprocess

    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"docker {args[0]} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def test_health_reports_database_redis_and_workers(compose_stack):
    body = requests.get(f"{compose_stack.base}/health", timeout=10).json()
    assert body["status"] == "healthy"
    assert body["database"] == "connected" and body["redis"] == "connected"
    workers = poll(lambda: requests.get(f"{compose_stack.base}/health", timeout=10).json()["workers"],
                   lambda w: set(w.values()) == {"running"}, "every worker running", 60)
    assert workers


def test_order_payment_webhook_refund(compose_stack, receiver):
    api = compose_stack.api
    order = requests.post(f"{api}/orders", json={"amount": 50000, "currency": "INR", "receipt": f"smoke_{secrets.token_hex(4)}"},
                          headers=MERCHANT, timeout=10)
    assert order.status_code == 201, order.text
    created = requests.post(f"{api}/payments", json={"order_id": order.json()["id"], "method": "upi", "vpa": "success@upi"},
                            headers={**MERCHANT, "Idempotency-Key": secrets.token_hex(8)}, timeout=10)
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    paid = poll(lambda: requests.get(f"{api}/payments/{payment_id}", headers=MERCHANT, timeout=10).json(),
                lambda p: p["status"] == "success", f"payment {payment_id} success", 60)
    assert paid["amount"] == 50000

    refund = requests.post(f"{api}/payments/{payment_id}/refunds", json={"amount": 20000, "reason": "smoke"},
                           headers=MERCHANT, timeout=10)
    assert refund.status_code == 201, refund.text
    refund_id = refund.json()["id"]
    processed = poll(lambda: requests.get(f"{api}/refunds/{refund_id}", headers=MERCHANT, timeout=10).json(),
                     lambda r: r["status"] == "processed", f"refund {refund_id} processed", 60)
    assert processed["amount"] == 20000
    after = poll(lambda: requests.get(f"{api}/payments/{payment_id}", headers=MERCHANT, timeout=10).json(),
                 lambda p: p["amount_refunded"] == 20000, "amount_refunded 20000", 60)
    assert after["status"] == "success"

    def ours() -> dict[str, dict]:
        got = {}
        for event in receiver.state.events():
            data = event["data"]
            if data.get("payment", {}).get("id") == payment_id or data.get("refund", {}).get("payment_id") == payment_id:
                got.setdefault(event["event"], event)
        return got

    wanted = {"payment.created", "payment.pending", "payment.success", "refund.created", "refund.processed"}
    events = poll(ours, lambda got: wanted <= set(got), "signed webhooks of the payment and its refund", 60)
    assert events["payment.success"]["data"]["payment"]["id"] == payment_id
    assert events["refund.processed"]["data"]["refund"]["id"] == refund_id
    for received in receiver.state.requests:
        assert received.status == 200  # the receiver verified every signature
        assert signing.verify(receiver.secret, received.body, received.headers["X-Webhook-Signature"])


def test_the_live_event_stream_through_the_gateway_container(compose_stack):
    # The webhooks-stream container behind the compose gateway: a payment's events arrive live.
    import threading

    from tests.e2e.test_stream_and_paygate import read_events, sse_client

    paid: list[str] = []

    def pay_soon() -> None:
        time.sleep(1.5)
        made = requests.post(f"{compose_stack.api}/payments", json={"amount": 2500, "currency": "INR", "method": "upi",
                                                                    "vpa": "success@upi"}, headers=MERCHANT, timeout=10)
        paid.append(made.json()["id"])

    payer = threading.Thread(target=pay_soon)
    payer.start()

    def ours(got: list) -> list:
        return [e.event for e in got if paid and json.loads(e.data)["data"].get("payment", {}).get("id") == paid[0]]

    got = read_events(sse_client(compose_stack, MERCHANT), lambda got: "payment.success" in ours(got))
    payer.join()
    assert ours(got) == ["payment.created", "payment.pending", "payment.success"], [e.event for e in got]


def test_metrics_of_the_containers(compose_stack, receiver):
    # The images' own metrics: the payments service's (multiprocess files under its non-root user),
    # the payments worker's, and the gateway's stub_status, after a payment; none through the gateway.
    from tests.e2e.test_metrics import curl, samples, value

    env = compose_stack.env
    made = requests.post(f"{compose_stack.api}/payments", json={"amount": 1500, "currency": "INR", "method": "upi",
                                                                "vpa": "success@upi"}, headers=MERCHANT, timeout=10)
    assert made.status_code == 201, made.text
    service = samples(env["GW_PAYMENTS_PORT"])
    assert value(service, "gateway_http_request_duration_seconds_count", method="POST", route="/api/v1/payments",
                 status="201") >= 1
    worker = poll(lambda: samples(env["GW_PAYMENTS_WORKER_METRICS_PORT"]),
                  lambda found: (value(found, "gateway_outbox_published_events_total", outbox="payments") or 0) >= 2,
                  "the payments worker's relay in its metrics")
    assert value(worker, "gateway_bank_overdue_seconds") is not None
    for port in ("GW_REFUNDS_WORKER_METRICS_PORT", "GW_WEBHOOKS_WORKER_METRICS_PORT"):
        assert value(samples(env[port]), "gateway_celery_queue_length", queue=port.split("_")[1].lower()) is not None
    status, text = curl(env["GW_NGINX_STATUS_PORT"], "/stub_status")
    assert status == 200 and text.startswith("Active connections: ")
    assert requests.get(f"{compose_stack.base}/metrics", timeout=10).status_code == 404


def test_hosted_checkout_page_pays_in_chromium(compose_stack):
    order = requests.post(f"{compose_stack.api}/orders", json={"amount": 50000, "currency": "INR"}, headers=MERCHANT, timeout=10)
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{compose_stack.checkout}/checkout?order_id={order_id}&key={MERCHANT['X-Api-Key']}")
            # The amount comes from the API through the gateway container: wait for it.
            expect(page.locator('[data-test-id="order-id"]')).to_have_text(order_id)
            expect(page.locator('[data-test-id="order-amount"]')).to_have_text("₹500.00")
            page.locator('[data-test-id="method-upi"]').click()
            page.locator('[data-test-id="vpa-input"]').fill("success@upi")
            page.locator('[data-test-id="pay-button"]').click()
            try:
                page.locator('[data-test-id="success-state"]').wait_for(state="visible", timeout=60_000)
            except Exception:
                page.screenshot(path="/tmp/compose-checkout-failure.png", full_page=True)
                raise
            assert errors == []
        finally:
            browser.close()
    poll(lambda: requests.get(f"{compose_stack.api}/orders/{order_id}", headers=MERCHANT, timeout=10).json(),
         lambda order: order["status"] == "paid", f"order {order_id} paid", 60)


def test_the_dashboard_answers(compose_stack):
    assert requests.get(f"{compose_stack.dashboard}/healthz", timeout=10).json() == {"status": "ok"}
    login = requests.get(f"{compose_stack.dashboard}/login", timeout=10)
    assert login.status_code == 200 and "<form" in login.text


def stop_and_exit_code(compose_stack, service: str) -> tuple[int, float]:
    """Stop a service's container with SIGTERM (30 s before SIGKILL); return its exit code and how long it took."""
    started = time.monotonic()
    compose_stack.compose("stop", "-t", "30", service)
    took = time.monotonic() - started
    cid = compose_stack.compose("ps", "-a", "-q", service).stdout.split()[0]
    return int(_docker("inspect", "-f", "{{.State.ExitCode}}", cid).strip()), took


def test_sigterm_stops_gracefully_and_no_payment_is_lost(compose_stack):
    # Last in this file: it stops and restarts containers.
    api = compose_stack.api
    ids = []
    for _ in range(5):
        order = requests.post(f"{api}/orders", json={"amount": 10000, "currency": "INR"}, headers=MERCHANT, timeout=10)
        created = requests.post(f"{api}/payments", json={"order_id": order.json()["id"], "method": "upi", "vpa": "success@upi"},
                                headers=MERCHANT, timeout=10)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    # The payments worker is told to stop while the bank's answers for these payments are due:
    # Celery's warm shutdown finishes running tasks, and unacknowledged ones go back to the queue.
    code, took = stop_and_exit_code(compose_stack, "gateway_worker")
    assert code == 0 and took < 30, (code, took)  # 137 would mean SIGKILL
    code, took = stop_and_exit_code(compose_stack, "payments")
    assert code == 0 and took < 30, (code, took)  # gunicorn: graceful_timeout 10 s
    compose_stack.compose("start", "payments", "gateway_worker")
    for payment_id in ids:
        final = poll(lambda pid=payment_id: requests.get(f"{api}/payments/{pid}", headers=MERCHANT, timeout=10),
                     lambda r: r.status_code == 200 and r.json()["status"] == "success", f"payment {payment_id} success", 120)
        assert final.json()["amount"] == 10000
    health = poll(lambda: requests.get(f"{compose_stack.base}/health", timeout=10).json(),
                  lambda b: b["status"] == "healthy" and b["workers"].get("payments") == "running", "healthy again", 120)
    assert health["database"] == "connected"


def test_migrate_image_sets_up_a_database_with_an_admin_that_is_no_superuser(compose_stack):
    # As on a managed PostgreSQL: the admin may create databases and roles but is no superuser.
    password = secrets.token_urlsafe(16)
    admin = f"gwadmin{secrets.token_hex(3)}"
    database = f"managed_{secrets.token_hex(3)}"
    compose_stack.compose("exec", "-T", "postgres", "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-c",
                          f"CREATE ROLE {admin} LOGIN PASSWORD '{password}' CREATEROLE CREATEDB NOSUPERUSER")
    url = f"postgresql://{admin}:{password}@127.0.0.1:{compose_stack.env['GW_PG_PORT']}/{database}"
    # The service roles are the cluster's, made by the stack's own migration: same password.
    env = ["-e", f"DATABASE_URL={url}", "-e", f"DB_ROLE_PASSWORD={compose_stack.env['DB_ROLE_PASSWORD']}",
           "-e", f"GATEWAY_SECRET={compose_stack.env['GATEWAY_SECRET']}"]
    for _ in range(2):  # and again: idempotent
        out = _docker("run", "--rm", "--network", "host", *env, "payment-gateway/migrate:latest")
    assert "payments: 0 migration(s) applied" in out and "auth: test merchant already present" in out, out
