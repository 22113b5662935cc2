"""The bank worker as it runs: a real Celery worker process against the test database and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from payments import tasks

DELAY_MS = 1500


DIAGNOSE = []


def poll(fn, timeout: float, interval: float = 0.05):
    """Call ``fn`` until it returns something truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            details = [diagnose() for diagnose in DIAGNOSE]
            raise AssertionError(f"condition not met before the deadline; {details}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def worker(app, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """Start ``celery -A payments.worker worker -Q payments`` and wait for its heartbeat."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {**os.environ, "TEST_PROCESSING_DELAY": str(DELAY_MS), "TEST_PAYMENT_SUCCESS": "true"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "payments.worker",
                "worker",
                "-Q",
                "payments",
                "-P",
                "threads",
                "-c",
                "4",
                "-n",
                f"payments-test-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "WARNING",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = app.test_client()

    def diagnose() -> str:
        with app.extensions["db"].transaction() as tx:
            tx.cursor.execute(
                "SELECT status, count(*) AS n, min(next_run_at - now())::text AS next_min, "
                "max(next_run_at - now())::text AS next_max FROM payments.payments "
                "WHERE created_at > now() - interval '2 minutes' GROUP BY status"
            )
            rows = tx.cursor.fetchall()
        return f"recent payments: {rows}; worker log: {log_path.read_text()[-1500:]}"

    DIAGNOSE.append(diagnose)
    try:
        poll(
            lambda: client.get("/health").get_json()["workers"]["payments"] == "running" or proc.poll() is not None, 30
        )
        assert proc.poll() is None, log_path.read_text()
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def get(client, headers, payment_id):
    return client.get(f"/api/v1/payments/{payment_id}", headers=headers).get_json()


def test_worker_reports_running(worker, client):
    assert client.get("/api/v1/test/jobs/status").get_json()["worker_status"] == "running"


def test_payment_goes_pending_processing_success(worker, client, headers, service_env):
    pubsub = redis.Redis.from_url(service_env["REDIS_URL"]).pubsub()
    pubsub.subscribe(f"{service_env['PUBSUB_PREFIX']}:events:{headers['X-Merchant-Id']}")
    order = client.post("/api/v1/orders", json={"amount": 4200}, headers=headers).get_json()
    created = client.post(
        "/api/v1/payments", json={"order_id": order["id"], "method": "upi", "vpa": "user@okaxis"}, headers=headers
    )
    payment = created.get_json()
    assert payment["status"] == "pending"
    seen = [payment["status"]]

    def final():
        status = get(client, headers, payment["id"])["status"]
        if status != seen[-1]:
            seen.append(status)
        return status in ("success", "failed")

    poll(final, 40, interval=0.02)
    assert seen == ["pending", "processing", "success"]
    assert client.get(f"/api/v1/orders/{order['id']}", headers=headers).get_json()["status"] == "paid"

    events = []

    def got_success():
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            events.append(json.loads(message["data"]))
        return any(e["event"] == "payment.success" and e["data"]["payment"]["id"] == payment["id"] for e in events)

    poll(got_success, 40, interval=0)
    pubsub.close()


def test_failure_instruments_fail(worker, client, headers):
    failing = {
        "PAYMENT_FAILED": {"method": "upi", "vpa": "failure@upi"},
        "CARD_DECLINED": {
            "method": "card",
            "card": {"number": "4000000000000002", "expiry_month": "12", "expiry_year": "2030", "cvv": "123"},
        },
        "INSUFFICIENT_FUNDS": {
            "method": "card",
            "card": {"number": "4000000000009995", "expiry_month": "12", "expiry_year": "2030", "cvv": "123"},
        },
    }
    ids = {
        code: client.post("/api/v1/payments", json={"amount": 1000, **body}, headers=headers).get_json()["id"]
        for code, body in failing.items()
    }
    ok = client.post(
        "/api/v1/payments", json={"amount": 1000, "method": "upi", "vpa": "success@upi"}, headers=headers
    ).get_json()["id"]
    poll(lambda: all(get(client, headers, i)["status"] in ("success", "failed") for i in [*ids.values(), ok]), 40)
    for code, payment_id in ids.items():
        body = get(client, headers, payment_id)
        assert (body["status"], body["error_code"]) == ("failed", code)
        assert body["error_description"]
    assert get(client, headers, ok)["status"] == "success"


def test_a_burst_is_processed_in_batches(worker, client, headers, admin_conn):
    ids = [
        client.post(
            "/api/v1/payments", json={"amount": 100 + i, "method": "upi", "vpa": "burst@upi"}, headers=headers
        ).get_json()["id"]
        for i in range(200)
    ]

    def all_final() -> bool:
        with admin_conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM payments.payments WHERE id = ANY(%s) AND status = 'success'", (ids,))
            return cur.fetchone()[0] == len(ids)

    # Generous for a loaded 2-core machine (the lead's benchmark measures the real timing).
    poll(all_final, 40, interval=0.1)
    jobs = client.get("/api/v1/test/jobs/status").get_json()
    assert jobs["completed"] >= len(ids)


def test_refund_events_task_updates_amount_refunded(worker, client, headers):
    payment = client.post(
        "/api/v1/payments", json={"amount": 1000, "method": "upi", "vpa": "success@upi"}, headers=headers
    ).get_json()
    poll(lambda: get(client, headers, payment["id"])["status"] == "success", 40)
    event = {
        "id": "evt_refundtest0001",
        "event": "refund.processed",
        "timestamp": 0,
        "merchant_id": payment["merchant_id"],
        "data": {
            "refund": {
                "id": f"rfnd_{payment['id'][4:]}",
                "payment_id": payment["id"],
                "merchant_id": payment["merchant_id"],
                "amount": 250,
            }
        },
    }
    # A sender built from the environment as it is now: payments.worker's app may have been
    # configured earlier in this process with other settings (key prefix, Redis database).
    from gateway_common.config import Settings
    from gateway_common.workers import make_celery

    settings = Settings.from_env("payments")
    celery_app = make_celery(settings, "payments-test-sender")
    queue_key = f"{settings.pubsub_prefix}:celery:{tasks.QUEUE}"

    def deliver_until_applied() -> bool:
        # Delivered again and again (at least once), it must be applied exactly once.
        celery_app.send_task(tasks.handle_refund_events.name, args=[[event]], queue=tasks.QUEUE)
        return get(client, headers, payment["id"])["amount_refunded"] != 0

    poll(deliver_until_applied, 40, interval=0.2)
    celery_app.send_task(tasks.handle_refund_events.name, args=[[event]], queue=tasks.QUEUE)
    poll(lambda: redis.Redis.from_url(settings.redis_url).llen(queue_key) == 0, 20)
    assert get(client, headers, payment["id"])["amount_refunded"] == 250
