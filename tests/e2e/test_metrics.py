"""Metrics through the real processes: each API service's /metrics on its own port, each worker's metrics
port, nginx's stub_status, read with curl after payments, a refund and their webhooks; and none of them
reachable through the public gateway.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.receiver import Receiver
from tests.conftest import free_port
from tools import prometheus_config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

PAYMENTS = 4


def curl(port: str, path: str = "/metrics", headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET http://127.0.0.1:PORT/PATH with curl; return (status, body)."""
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}{path}"]
    for key, value in (headers or {}).items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=15, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body


def samples(port: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page: (name, sorted labels) -> value."""
    status, text = curl(port)
    assert status == 200, text[:300]
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def eventually(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    pytest.fail(f"{what} not seen within {timeout:.0f}s; last: {last!r}")


@pytest.fixture(scope="module")
def traffic(stack) -> dict:
    """A merchant of its own with a webhook receiver: PAYMENTS payments, all final, one refunded and processed."""
    created = json.loads(stack.cli("auth.cli", "create-merchant", "--name", "Metrics Merchant", "--email",
                                   f"metrics-{time.time_ns()}@example.com", "--password", "metrics-pw-123"))
    headers = {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}
    receiver = Receiver()
    try:
        assert requests.put(f"{stack.api}/webhooks/config", json={"webhook_url": receiver.url}, headers=headers,
                            timeout=10).status_code == 200
        ids = []
        for n in range(PAYMENTS):
            made = requests.post(f"{stack.api}/payments", json={"amount": 5000 + n, "currency": "INR", "method": "upi",
                                                                "vpa": "success@upi"}, headers=headers, timeout=10)
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])

        def final() -> bool:
            return all(requests.get(f"{stack.api}/payments/{i}", headers=headers, timeout=10).json()["status"] == "success"
                       for i in ids)

        eventually("every payment final", final)
        refund = requests.post(f"{stack.api}/payments/{ids[0]}/refunds", json={"amount": 1000}, headers=headers, timeout=10)
        assert refund.status_code == 201, refund.text
        eventually("the refund processed", lambda: requests.get(f"{stack.api}/refunds/{refund.json()['id']}", headers=headers,
                                                                 timeout=10).json()["status"] == "processed")
        # payment.created, .pending and .success per payment; refund.created and .processed.
        eventually("every webhook delivered", lambda: len(receiver.received()) >= 3 * PAYMENTS + 2)
    finally:
        receiver.close()
    return {"headers": headers, "payments": ids}


def test_each_api_service_times_its_requests_by_route_template_and_status(stack, traffic):
    payments = samples(stack.env["PAYMENTS_PORT"])
    name = "gateway_http_request_duration_seconds_count"
    # The WSGI fast path's routes carry Flask's templates, never a payment id.
    assert value(payments, name, method="POST", route="/api/v1/payments", status="201") >= PAYMENTS
    assert value(payments, name, method="GET", route="/api/v1/payments/<payment_id>", status="200") >= PAYMENTS
    assert not [key for key in payments if any("pay_" in v for _, v in key[1])], "a payment id became a label value"
    # A histogram: cumulative buckets up to +Inf, which equals the count; the sum is positive.
    labels = {"method": "POST", "route": "/api/v1/payments", "status": "201"}
    buckets = sorted(((float(dict(key[1])["le"]), v) for key, v in payments.items()
                      if key[0] == "gateway_http_request_duration_seconds_bucket"
                      and {k: v for k, v in key[1] if k != "le"} == labels))
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1] == (float("inf"), value(payments, name, **labels))
    assert 0 < value(payments, "gateway_http_request_duration_seconds_sum", **labels) < 10 * buckets[-1][1]

    refunds = samples(stack.env["REFUNDS_PORT"])
    assert value(refunds, name, method="POST", route="/api/v1/payments/<payment_id>/refunds", status="201") >= 1
    auth = samples(stack.env["AUTH_PORT"])
    assert value(auth, name, method="GET", route="/internal/verify", status="200") >= 1
    webhooks = samples(stack.env["WEBHOOKS_PORT"])
    assert value(webhooks, name, method="PUT", route="/api/v1/webhooks/config", status="200") >= 1


def test_an_unknown_path_is_one_label_not_a_new_series(stack, traffic):
    for junk in ("/api/v1/payments/x/y/z", "/api/v1/payments/pay_nope/not-a-route"):
        assert requests.get(f"{stack.base}{junk}", headers=traffic["headers"], timeout=10).status_code == 404
    found = samples(stack.env["PAYMENTS_PORT"])
    assert value(found, "gateway_http_request_duration_seconds_count", method="GET", route="unmatched", status="404") >= 2
    assert not [key for key in found if any("not-a-route" in v or "x/y/z" in v for _, v in key[1])]


def drained(port: str, *gauges: tuple[str, dict[str, str]]) -> dict:
    """The worker's samples once every named gauge reads 0 (its backlog drained)."""

    def check() -> dict | None:
        found = samples(port)
        return found if all(value(found, name, **labels) == 0 for name, labels in gauges) else None

    return eventually(f"{[name for name, _ in gauges]} at 0", check)


def test_the_payments_worker_reports_its_backlog_outbox_and_queue(stack, traffic):
    found = drained(stack.env["PAYMENTS_WORKER_METRICS_PORT"], ("gateway_bank_backlog", {"status": "pending"}),
                    ("gateway_bank_backlog", {"status": "processing"}))
    assert value(found, "gateway_bank_overdue_seconds") == 0
    assert 0 <= value(found, "gateway_outbox_lag_seconds", outbox="payments") < 5
    # created, pending and success of this module's payments, at least.
    assert value(found, "gateway_outbox_published_events_total", outbox="payments") >= 3 * PAYMENTS
    assert value(found, "gateway_celery_queue_length", queue="payments") >= 0
    assert value(found, "gateway_db_pool_connections", state="open") >= 1
    assert value(found, "gateway_db_pool_connections", state="waiting") == 0
    assert value(found, "process_cpu_seconds_total") > 0


def test_the_refunds_worker_reports_its_backlog_and_outbox(stack, traffic):
    found = drained(stack.env["REFUNDS_WORKER_METRICS_PORT"], ("gateway_refund_backlog", {}))
    assert value(found, "gateway_refund_overdue_seconds") == 0
    assert value(found, "gateway_outbox_published_events_total", outbox="refunds") >= 2
    assert 0 <= value(found, "gateway_outbox_lag_seconds", outbox="refunds") < 5
    assert value(found, "gateway_celery_queue_length", queue="refunds") >= 0


def test_the_webhooks_worker_counts_attempts_by_outcome(stack, traffic):
    found = samples(stack.env["WEBHOOKS_WORKER_METRICS_PORT"])
    assert value(found, "gateway_webhook_attempts_total", outcome="delivered") >= 3 * PAYMENTS + 2
    for outcome in ("http_error", "timeout", "connection_error", "refused", "other"):
        assert value(found, "gateway_webhook_attempts_total", outcome=outcome) is not None, outcome
    assert value(found, "gateway_webhook_backlog") is not None
    assert value(found, "gateway_celery_queue_length", queue="webhooks") >= 0


def test_nginx_stub_status_counts_the_requests(stack, traffic):
    status, text = curl(stack.env["NGINX_STATUS_PORT"], "/stub_status")
    assert status == 200
    lines = text.splitlines()
    assert lines[0].startswith("Active connections: ")
    accepts, handled, served = (int(n) for n in lines[2].split())
    assert served >= 4 * PAYMENTS and handled == accepts
    assert curl(stack.env["NGINX_STATUS_PORT"], "/")[0] == 404


def test_no_metrics_through_the_public_gateway(stack, traffic):
    headers = traffic["headers"]
    for path in ("/metrics", "/stub_status", "/api/v1/metrics", "/api/v1/payments/metrics", "/razorpay/v1/metrics"):
        for auth in ({}, headers):
            response = requests.get(f"{stack.base}{path}", headers=auth, timeout=10)
            assert response.status_code in (400, 401, 404), (path, response.status_code)
            assert "gateway_http_request" not in response.text and "Active connections" not in response.text
    # A /metrics request carrying the gateway's secret came through nginx: the service refuses it too.
    status, body = curl(stack.env["PAYMENTS_PORT"], headers={"X-Gateway-Secret": stack.env["GATEWAY_SECRET"]})
    assert status == 404 and "gateway_http_request" not in body


def test_prometheus_scrapes_every_target_of_the_generated_config(stack, traffic, tmp_path):
    # Prometheus itself (Debian's binary, unpacked by tools/system-deps.sh test), on the scrape config
    # tools.prometheus_config writes for this stack: every service and worker target is up, and the
    # series arrive. nginx's job needs nginx-prometheus-exporter, which is not run here.
    binary = shutil.which("prometheus") or str(ROOT / ".venv" / "prometheus" / "usr" / "bin" / "prometheus")
    if not Path(binary).exists():
        pytest.skip("no Prometheus binary: run tools/system-deps.sh test")
    config = prometheus_config.scrape_config(stack.env)
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] != "gateway-nginx"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    with open(tmp_path / "prometheus.log", "wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        services = {c["labels"]["service"] for job in config["scrape_configs"] for c in job["static_configs"]}

        def all_up() -> list | None:
            try:
                targets = requests.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
            except (requests.RequestException, ValueError):
                return None
            return targets if len(targets) == len(services) and all(t["health"] == "up" for t in targets) else None

        targets = eventually(f"Prometheus scraping all {len(services)} targets", all_up, timeout=60)
        assert {t["labels"]["service"] for t in targets} == services
        assert services >= {"auth", "payments", "refunds", "webhooks", "payments-worker", "refunds-worker", "webhooks-worker"}

        def series(query: str) -> list:
            return requests.get(f"{api}/query", params={"query": query}, timeout=5).json()["data"]["result"]

        posts = eventually("the POST /payments series in Prometheus", lambda: series(
            'gateway_http_request_duration_seconds_count{service="payments",route="/api/v1/payments",status="201"}'))
        assert float(posts[0]["value"][1]) >= PAYMENTS
        for query in ('gateway_bank_backlog{status="pending"}', "gateway_refund_backlog", 'gateway_webhook_attempts_total{outcome="delivered"}',
                      "gateway_outbox_lag_seconds", "gateway_celery_queue_length"):
            assert eventually(query, lambda query=query: series(query)), query
    finally:
        proc.terminate()
        proc.wait(timeout=30)
