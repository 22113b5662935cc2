"""A real webhooks worker process: events in through Celery, signed deliveries out, kill -9 loses nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import redis
from gateway_common import signing
from gateway_common.config import Settings
from gateway_common.events import make_event
from gateway_common.workers import heartbeat_key, make_celery
from webhooks import service

CELERY = str(Path(sys.executable).with_name("celery"))


@pytest.fixture(scope="module")
def celery_client(service_env):
    """The producer side, as the payments and refunds relays use it."""
    return make_celery(Settings.from_env("webhooks"), "webhooks-test-producer")


@pytest.fixture
def start_worker(service_env, tmp_path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start real workers (as in the Procfile) and wait until their heartbeat is up."""
    env = {
        **os.environ,
        "TEST_MODE": "true",
        "WEBHOOK_RETRY_INTERVALS_TEST": "true",
        "WEBHOOK_LEASE_SECONDS": "10",
        "PYTHONUNBUFFERED": "1",
    }
    settings = Settings.from_env("webhooks")
    client = redis.Redis.from_url(settings.redis_url)
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")
        proc = subprocess.Popen(
            [CELERY, "-A", "webhooks.worker", "worker", "-Q", "webhooks", "-P", "threads", "-c", "4",
             "-n", f"whtest-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        started.append(proc)
        key = heartbeat_key(settings.pubsub_prefix, "webhooks-worker", f"{socket.gethostname()}:{proc.pid}")
        deadline = time.monotonic() + 30
        while not client.exists(key):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / f"worker-{len(started) - 1}.log").read_text())
            time.sleep(0.1)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def kill_hard(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def delivery_rows(db, event_id: str) -> list[dict]:
    with db.transaction() as tx:
        tx.cursor.execute(
            "SELECT id, status, attempts, last_attempt_at, next_retry_at FROM webhooks.deliveries WHERE event_id = %s",
            (event_id,),
        )
        return tx.cursor.fetchall()


def test_worker_delivers_events_once_and_a_killed_worker_loses_no_retry(
    db, harness, merchant, receivers, url_of, wait_for, celery_client, start_worker
):
    secret = service.get_config(db, merchant).secret
    server = receivers(secret, fail_first=1)
    service.update_config(db, harness.cfg, merchant, url_of(server))
    first_worker = start_worker()
    event = make_event("payment.success", merchant, {"payment": {"id": "pay_Wk12Cd34Ef56Gh78", "amount": 100}})
    # The relay re-publishes after a crash: the same event twice gives one delivery.
    celery_client.send_task("webhooks.handle_events", args=[[event]], queue="webhooks")
    celery_client.send_task("webhooks.handle_events", args=[[event, event]], queue="webhooks")
    wait_for(lambda: len(server.state.requests) >= 1, timeout=20)
    wait_for(lambda: delivery_rows(db, event["id"])[0]["attempts"] == 1, timeout=10)
    kill_hard(first_worker)
    (row,) = delivery_rows(db, event["id"])
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert server.state.requests[0].status == 500

    start_worker()
    wait_for(lambda: server.state.events(), timeout=30)
    wait_for(lambda: delivery_rows(db, event["id"])[0]["status"] == "success", timeout=10)
    (row,) = delivery_rows(db, event["id"])
    assert row["attempts"] == 2
    first, second = server.state.requests
    assert second.at - first.at >= 4.5  # the 5 s test interval, kept in PostgreSQL across the restart
    assert first.body == second.body
    assert second.headers["X-Webhook-Id"] == event["id"]
    assert signing.verify(secret, second.body, second.headers["X-Webhook-Signature"])
    assert server.state.events()[0]["data"] == event["data"]


class _Hold(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server.state
        with state["lock"]:
            state["requests"].append((time.time(), dict(self.headers), body))
            first = len(state["requests"]) == 1
        if first:
            state["release"].wait(15)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_worker_killed_mid_request_has_the_delivery_redone_after_its_lease(
    db, harness, merchant, wait_for, celery_client, start_worker
):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hold)
    server.daemon_threads = True
    server.state = {"lock": threading.Lock(), "requests": [], "release": threading.Event()}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        service.update_config(db, harness.cfg, merchant, f"http://127.0.0.1:{server.server_address[1]}/hook")
        worker = start_worker()
        event = make_event("payment.failed", merchant, {"payment": {"id": "pay_Kl12Cd34Ef56Gh78"}})
        celery_client.send_task("webhooks.handle_events", args=[[event]], queue="webhooks")
        wait_for(lambda: server.state["requests"], timeout=20)
        kill_hard(worker)  # while the receiver still holds the request
        server.state["release"].set()
        (row,) = delivery_rows(db, event["id"])
        assert (row["status"], row["attempts"]) == ("pending", 0)

        start_worker()
        wait_for(lambda: len(server.state["requests"]) >= 2, timeout=30)
        wait_for(lambda: delivery_rows(db, event["id"])[0]["status"] == "success", timeout=10)
        (_, first_headers, first_body), (_, second_headers, second_body) = server.state["requests"][:2]
        assert second_body == first_body
        assert second_headers["X-Webhook-Id"] == first_headers["X-Webhook-Id"] == event["id"]
    finally:
        server.state["release"].set()
        server.shutdown()
        server.server_close()


def test_the_worker_reconciles_a_published_event_whose_task_was_lost(
    db, harness, merchant, receivers, url_of, wait_for, start_worker, database_url
):
    secret = service.get_config(db, merchant).secret
    server = receivers(secret)
    service.update_config(db, harness.cfg, merchant, url_of(server))
    event = make_event("payment.success", merchant, {"payment": {"id": "pay_Lo12Cd34Ef56Gh78"}})
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # The relay marked it published and queued its task; Redis restarted and lost the task.
            cur.execute(
                "INSERT INTO payments.outbox (event_id, event_type, merchant_id, payload, created_at, published_at) "
                "VALUES (%s, %s, %s, %s, now() - interval '30 seconds', now() - interval '29 seconds')",
                (event["id"], event["event"], merchant, json.dumps(event)),
            )
    finally:
        conn.close()
    start_worker()
    wait_for(lambda: server.state.events(), timeout=30)
    wait_for(lambda: delivery_rows(db, event["id"]) and delivery_rows(db, event["id"])[0]["status"] == "success", timeout=10)
    assert [e["id"] for e in server.state.events()] == [event["id"]]
    assert len(delivery_rows(db, event["id"])) == 1
