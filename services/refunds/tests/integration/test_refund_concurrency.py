"""The refund invariant under concurrent requests: threads, and two OS processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

# Run in a separate interpreter: build the app, say "ready", wait for "go" on stdin, then
# fire THREADS refund requests at once and print their status codes as JSON.
BURST = r"""
import dataclasses, json, sys, threading, time
from gateway_common.db import PoolSettings
from gateway_common.config import Settings
from refunds import create_app

payment_id, merchant_id, amount, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
app = create_app(dataclasses.replace(Settings.from_env("refunds"), db_pool=PoolSettings(max_size=threads), test_processing_delay_ms=0))
headers = {"X-Merchant-Id": merchant_id, "X-Gateway-Secret": "test-gateway-secret"}
app.extensions["db"].ping()
barrier = threading.Barrier(threads)
codes = []

def fire():
    client = app.test_client()
    barrier.wait()
    for _ in range(50):
        # 503 means "nothing was changed" (e.g. the server ran out of connections): retry.
        response = client.post(f"/api/v1/payments/{payment_id}/refunds", json={"amount": amount}, headers=headers)
        if response.status_code != 503:
            break
        time.sleep(0.1)
    codes.append(response.status_code)

workers = [threading.Thread(target=fire) for _ in range(threads)]
print("ready", flush=True)
sys.stdin.readline()
for t in workers: t.start()
for t in workers: t.join()
print(json.dumps(codes), flush=True)
"""


def post_retrying_503(client: FlaskClient, url: str, body: dict, headers: dict) -> TestResponse:
    """POST, retrying while the answer is 503 ("nothing was changed", e.g. no free DB connection)."""
    for _ in range(50):
        response = client.post(url, json=body, headers=headers)
        if response.status_code != 503:
            return response
        time.sleep(0.1)
    return response


def _refunded(admin, payment_id: str) -> tuple[int, int]:
    with admin.cursor() as cur:
        cur.execute("SELECT coalesce(sum(amount), 0) AS s FROM refunds.refunds WHERE payment_id = %s", (payment_id,))
        total = cur.fetchone()["s"]
        cur.execute("SELECT refunded_total FROM refunds.payment_balances WHERE payment_id = %s", (payment_id,))
        balance = cur.fetchone()["refunded_total"]
    return total, balance


def test_twenty_concurrent_refunds_of_3000_on_10000_exactly_three_succeed(
    app: Flask, headers: dict, make_payment: Callable[..., str], admin
) -> None:
    payment_id = make_payment(10_000)
    barrier = threading.Barrier(20)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def fire() -> None:
        client = app.test_client()
        barrier.wait()
        response = post_retrying_503(client, f"/api/v1/payments/{payment_id}/refunds", {"amount": 3_000}, headers)
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    codes = Counter(code for code, _ in results)
    assert codes == {201: 3, 400: 17}, results
    assert all(
        body["error"]["description"] == "Refund amount exceeds available amount"
        for code, body in results
        if code == 400
    )
    assert _refunded(admin, payment_id) == (9_000, 9_000)


def test_refunds_from_two_processes_never_exceed_the_payment(
    make_payment: Callable[..., str], merchant: str, admin
) -> None:
    payment_id = make_payment(10_000)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BURST, payment_id, merchant, "1500", "8"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    codes = Counter(code for out in outputs for code in json.loads(out.strip().splitlines()[-1]))
    # 16 attempts of 1,500 on 10,000: exactly 6 fit, whichever process wins them.
    assert codes == {201: 6, 400: 10}
    assert _refunded(admin, payment_id) == (9_000, 9_000)
