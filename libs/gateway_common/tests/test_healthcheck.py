"""The containers' health check: a service's own /health, or a worker's heartbeat in Redis."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from gateway_common import healthcheck
from gateway_common.workers import heartbeat_key


@pytest.mark.parametrize(("argv", "worker"), [
    (["/usr/local/bin/python", "/usr/local/bin/celery", "-A", "payments.worker", "worker", "-Q", "payments"], "payments-worker"),
    (["celery", "--app", "webhooks.worker", "worker"], "webhooks-worker"),
    (["/usr/local/bin/python", "/usr/local/bin/gunicorn", "-c", "services/refunds/gunicorn.conf.py", "refunds:create_app()"], None),
    (["celery", "-A", "payments.worker", "inspect", "ping"], None),
    ([], None),
])
def test_the_main_process_tells_a_worker_from_a_service(argv, worker):
    assert healthcheck.celery_worker_name(argv) == worker


def test_main_command_reads_a_proc_cmdline(tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/usr/local/bin/python\0/usr/local/bin/celery\0-A\0refunds.worker\0worker\0")
    assert healthcheck.main_command(cmdline)[1:4] == ["/usr/local/bin/celery", "-A", "refunds.worker"]
    assert healthcheck.main_command(tmp_path / "missing") == []


@pytest.fixture
def health_server():
    """A real HTTP server on 127.0.0.1 whose /health answers the status the test sets."""
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "healthy" if state["status"] == 200 else "unhealthy"}).encode()
            self.send_response(state["status"] if self.path == "/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, state
    server.shutdown()
    server.server_close()


def test_a_service_is_healthy_only_while_its_health_answers_200(health_server):
    server, state = health_server
    port = str(server.server_address[1])
    assert healthcheck.check_http(port, "/health") is None
    state["status"] = 503
    assert healthcheck.check_http(port, "/health") == "/health answered 503"
    assert healthcheck.check_http(port, "/nope") == "/nope answered 404"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = str(sock.getsockname()[1])
    assert "unreachable" in healthcheck.check_http(closed, "/health")


def test_the_command_exits_0_or_1_by_the_services_health(health_server):
    server, state = health_server
    env = {"HEALTH_PORT": str(server.server_address[1]), "PATH": "/usr/bin:/bin"}
    run = lambda: subprocess.run([sys.executable, "-m", "gateway_common.healthcheck"], env=env, capture_output=True, text=True)  # noqa: E731
    assert run().returncode == 0
    state["status"] = 503
    failed = run()
    assert failed.returncode == 1 and "503" in failed.stderr


def test_a_worker_is_healthy_only_while_its_heartbeat_for_this_host_is_in_redis(redis_url, monkeypatch):
    prefix = f"hc{secrets.token_hex(4)}"
    monkeypatch.setenv("PUBSUB_PREFIX", prefix)
    monkeypatch.setenv("REDIS_URL", redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        assert "no heartbeat" in healthcheck.check_worker("payments-worker")
        client.set(heartbeat_key(prefix, "refunds-worker", f"{socket.gethostname()}:1"), "{}", ex=15)
        assert "no heartbeat" in healthcheck.check_worker("payments-worker")  # another worker's beat
        client.set(heartbeat_key(prefix, "payments-worker", "other-host:1"), "{}", ex=15)
        assert "no heartbeat" in healthcheck.check_worker("payments-worker")  # another host's beat
        client.set(heartbeat_key(prefix, "payments-worker", f"{socket.gethostname()}:1"), "{}", ex=15)
        assert healthcheck.check_worker("payments-worker") is None
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:9/0")
    assert "Redis unreachable" in healthcheck.check_worker("payments-worker")
