"""The real refunds worker (Celery subprocess): a refund survives a worker crash and is processed once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from gateway_common.workers import heartbeat_key
from refunds import service


class Worker:
    """A ``celery -A refunds.worker worker -Q refunds -P threads`` subprocess."""

    def __init__(self, log_path: Path) -> None:
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "refunds.worker",
                "worker",
                "-Q",
                "refunds",
                "-P",
                "threads",
                "-c",
                "4",
                "-n",
                f"refunds-test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "WARNING",
            ],
            # Celery queues are not namespaced per test run, so a concurrent run on the same Redis
            # db may take a task of ours; a short lease re-dispatches it quickly.
            env={**os.environ, "REFUNDS_LEASE_SECONDS": "2"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_alive(self, client: redis.Redis, prefix: str, timeout: float = 60) -> None:
        key = heartbeat_key(prefix, "refunds-worker", f"{socket.gethostname()}:{self.proc.pid}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "refunds worker exited; see its log"
            if client.exists(key):
                return
            time.sleep(0.05)
        pytest.fail("refunds worker did not start within the deadline")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[], Worker]]:
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(tmp_path / "refunds-worker.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _rows(admin, ids: list[str]) -> dict[str, dict]:
    with admin.cursor() as cur:
        cur.execute("SELECT id, status, processed_at FROM refunds.refunds WHERE id = ANY(%s)", (ids,))
        return {row["id"]: row for row in cur.fetchall()}


def _processed_events(admin, ids: list[str]) -> list[dict]:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT payload->'data'->'refund'->>'id' AS id, published_at FROM refunds.refund_events "
            "WHERE event_type = 'refund.processed' AND payload->'data'->'refund'->>'id' = ANY(%s)",
            (ids,),
        )
        return cur.fetchall()


@pytest.mark.chaos
def test_pending_refunds_survive_a_worker_kill_and_are_processed_once(
    app: Flask, merchant: str, make_payment: Callable[..., str], admin, service_env: dict, workers
) -> None:
    db = app.extensions["db"]
    client = redis.Redis.from_url(service_env["REDIS_URL"])
    prefix = service_env["PUBSUB_PREFIX"]

    first = workers()
    first.wait_alive(client, prefix)
    payment_id = make_payment(10_000)
    # Not yet due when the worker dies.
    pending = [service.create_refund(db, merchant, payment_id, 100, "crash", 5_000).id for _ in range(4)]
    # Due, and leased by a worker that then died: the lease runs out and another claims them.
    leased = [service.create_refund(db, merchant, payment_id, 100, "leased", 0).id for _ in range(2)]
    with admin.cursor() as cur:
        cur.execute(
            "UPDATE refunds.refunds SET next_run_at = now() + interval '2 seconds' WHERE id = ANY(%s)", (leased,)
        )
    first.kill()
    ids = pending + leased
    assert {row["status"] for row in _rows(admin, pending).values()} == {"pending"}

    second = workers()
    second.wait_alive(client, prefix)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = _rows(admin, ids)
        events = _processed_events(admin, ids)
        if all(r["status"] == "processed" for r in rows.values()) and all(e["published_at"] for e in events):
            break
        time.sleep(0.1)
    rows = _rows(admin, ids)
    assert {r["status"] for r in rows.values()} == {"processed"}
    assert all(r["processed_at"] is not None for r in rows.values())
    events = _processed_events(admin, ids)
    assert sorted(e["id"] for e in events) == sorted(ids)  # one refund.processed event each
    assert all(e["published_at"] is not None for e in events)  # and the relay published them
