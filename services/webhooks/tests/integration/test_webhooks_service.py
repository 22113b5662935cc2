"""The webhooks service on a real PostgreSQL database: API, fan-out, attempts, schedule, SSRF."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from gateway_common import signing
from gateway_common.config import Settings
from gateway_common.events import make_event
from webhooks import cli, create_app, service
from webhooks.config import WebhookConfig
from webhooks.models import TEST_MERCHANT_ID, TEST_RETRY_INTERVALS, TEST_WEBHOOK_SECRET, Claim


def headers_for(merchant_id: str) -> dict[str, str]:
    return {"X-Gateway-Secret": "test-gateway-secret", "X-Merchant-Id": merchant_id}


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/webhook"


def configure(client, merchant: str, url: str | None) -> dict:
    response = client.put("/api/v1/webhooks/config", json={"webhook_url": url}, headers=headers_for(merchant))
    assert response.status_code == 200, response.json
    return response.json


def log(client, merchant: str, delivery_id: str) -> dict:
    response = client.get(f"/api/v1/webhooks/{delivery_id}", headers=headers_for(merchant))
    assert response.status_code == 200, response.json
    return response.json


def payment_event(merchant: str, kind: str = "payment.success", payment_id: str = "pay_Ab12Cd34Ef56Gh78") -> dict:
    return make_event(kind, merchant, {"payment": {"id": payment_id, "amount": 50000, "status": "success"}})


# --- config -------------------------------------------------------------------------------


def test_config_is_created_lazily_with_a_fresh_secret(app, merchant):
    client = app.test_client()
    first = client.get("/api/v1/webhooks/config", headers=headers_for(merchant))
    assert first.status_code == 200
    assert first.json["webhook_url"] is None
    assert first.json["webhook_secret"].startswith("whsec_")
    assert len(first.json["webhook_secret"]) >= 32
    again = client.get("/api/v1/webhooks/config", headers=headers_for(merchant))
    assert again.json == first.json
    other = client.get("/api/v1/webhooks/config", headers=headers_for(f"{merchant[:-4]}0000"))
    assert other.json["webhook_secret"] != first.json["webhook_secret"]


def test_put_config_sets_and_clears_the_url(app, merchant):
    client = app.test_client()
    body = configure(client, merchant, "http://127.0.0.1:4000/webhook")
    assert body["webhook_url"] == "http://127.0.0.1:4000/webhook"
    assert body["webhook_secret"].startswith("whsec_")
    assert client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json == body
    assert configure(client, merchant, None)["webhook_url"] is None
    assert configure(client, merchant, "")["webhook_url"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"webhook_url": "ftp://example.com/x"},
        {"webhook_url": "not a url"},
        {"webhook_url": "http://"},
        {"webhook_url": "https://example.com/" + "a" * 2100},
        {"webhook_url": 12},
        {"webhook_url": "https://example.com/", "webhook_secret": "whsec_mine"},
        {},
    ],
)
def test_put_config_rejects_bad_bodies_with_the_envelope(app, merchant, body):
    client = app.test_client()
    response = client.put("/api/v1/webhooks/config", json=body, headers=headers_for(merchant))
    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST_ERROR"
    assert client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_url"] is None


def test_malformed_json_is_a_400(app, merchant):
    response = app.test_client().put(
        "/api/v1/webhooks/config", data="{nope", content_type="application/json", headers=headers_for(merchant)
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_requests_that_bypass_the_gateway_are_refused(app, merchant):
    client = app.test_client()
    for headers in ({"X-Merchant-Id": merchant}, {"X-Merchant-Id": merchant, "X-Gateway-Secret": "wrong"}, {}):
        response = client.get("/api/v1/webhooks", headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "AUTHENTICATION_ERROR"


def test_regenerate_secret_replaces_it(app, merchant):
    client = app.test_client()
    before = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    response = client.post("/api/v1/webhooks/regenerate-secret", headers=headers_for(merchant))
    assert response.status_code == 200
    after = response.json["webhook_secret"]
    assert after.startswith("whsec_")
    assert after != before
    assert client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"] == after


def test_seed_gives_the_test_merchant_its_documented_secret_once(app, db, service_env):
    assert cli.main(["seed"]) == 0
    assert cli.main(["seed"]) == 0
    assert service.get_config(db, TEST_MERCHANT_ID).secret == TEST_WEBHOOK_SECRET
    assert service.get_config(db, TEST_MERCHANT_ID).url is None


def test_health_names_its_dependencies(app):
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "healthy"
    assert response.json["database"] == "connected"
    assert response.json["redis"] == "connected"


# --- test event, fan-out and delivery -----------------------------------------------------


def test_test_webhook_needs_a_url(app, merchant):
    response = app.test_client().post("/api/v1/webhooks/test", headers=headers_for(merchant))
    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_test_webhook_is_delivered_signed(app, harness, merchant, receivers):
    client = app.test_client()
    secret = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(secret)
    configure(client, merchant, url_of(server))
    response = client.post("/api/v1/webhooks/test", headers=headers_for(merchant))
    assert response.status_code == 202
    assert response.json["id"].startswith("whlog_") and len(response.json["id"]) == 22
    assert response.json["status"] == "pending"
    assert response.json["event"] == "webhook.test"
    assert harness.deliver_collected() == ["success"]
    (received,) = server.state.requests
    assert received.status == 200
    assert received.event["event"] == "webhook.test"
    assert set(received.event) == {"id", "event", "timestamp", "data"}
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Webhook-Id"] == received.event["id"]
    assert signing.verify(secret, received.body, received.headers["X-Webhook-Signature"])
    assert signing.verify_v2(secret, received.body, received.headers["X-Webhook-Signature-V2"])
    assert received.headers["X-Webhook-Signature-V2"].startswith(f"t={received.headers['X-Webhook-Timestamp']},")
    detail = log(client, merchant, response.json["id"])
    assert detail["status"] == "success"
    assert detail["attempts"] == 1
    assert detail["response_code"] == 200
    assert detail["next_retry_at"] is None
    assert detail["last_attempt_at"] is not None
    assert detail["payload"] == received.event
    assert detail["url"] == url_of(server)
    assert json.loads(detail["response_body"]) == {"received": True}


def test_events_fan_out_once_per_event_and_skip_merchants_without_a_url(app, harness, db, merchant, receivers):
    client = app.test_client()
    secret = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(secret)
    configure(client, merchant, url_of(server))
    event = payment_event(merchant)
    unconfigured = payment_event(f"{merchant[:-4]}ffff")
    created = service.handle_events(db, harness.cfg, [event, event, unconfigured, {"junk": True}], harness.collector)
    assert len(created) == 1
    assert service.handle_events(db, harness.cfg, [event], harness.collector) == []
    assert harness.deliver_collected() == ["success"]
    (received,) = server.state.requests
    assert received.event == {k: v for k, v in event.items() if k != "merchant_id"}
    assert received.headers["X-Webhook-Id"] == event["id"]
    listing = client.get("/api/v1/webhooks", headers=headers_for(merchant)).json
    assert listing["total"] == 1
    assert listing["data"][0]["event"] == "payment.success"


def test_failed_attempts_follow_the_schedule_with_the_same_id_and_bytes(app, harness, db, merchant, receivers):
    client = app.test_client()
    secret = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(secret, fail_first=2)
    configure(client, merchant, url_of(server))
    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    assert harness.deliver_collected() == ["pending"]
    first = log(client, merchant, delivery_id)
    assert first["status"] == "pending"
    assert first["attempts"] == 1
    assert first["response_code"] == 500
    assert "failing on purpose" in first["response_body"]
    assert first["last_error"] == "HTTP 500"
    with db.transaction() as tx:
        tx.cursor.execute(
            "SELECT extract(epoch FROM next_retry_at - last_attempt_at) AS wait FROM webhooks.deliveries WHERE id = %s",
            (delivery_id,),
        )
        assert tx.cursor.fetchone()["wait"] == pytest.approx(TEST_RETRY_INTERVALS[1], abs=0.5)
    assert harness.sweep() == 0  # not due yet
    harness.force_due(delivery_id)
    assert harness.sweep() == 1
    assert harness.deliver_collected() == ["pending"]
    assert log(client, merchant, delivery_id)["attempts"] == 2
    harness.force_due(delivery_id)
    harness.sweep()
    assert harness.deliver_collected() == ["success"]
    done = log(client, merchant, delivery_id)
    assert (done["status"], done["attempts"], done["response_code"], done["last_error"]) == ("success", 3, 200, None)
    bodies = {r.body for r in server.state.requests}
    ids = {r.headers["X-Webhook-Id"] for r in server.state.requests}
    assert len(server.state.requests) == 3 and len(bodies) == 1 and len(ids) == 1


def test_five_failures_end_failed_and_manual_retry_delivers(app, harness, db, merchant, receivers):
    client = app.test_client()
    secret = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(secret, fail_first=5)
    configure(client, merchant, url_of(server))
    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    outcomes = harness.deliver_collected()
    for _ in range(4):
        harness.force_due(delivery_id)
        harness.sweep()
        outcomes += harness.deliver_collected()
    assert outcomes == ["pending"] * 4 + ["failed"]
    failed = log(client, merchant, delivery_id)
    assert (failed["status"], failed["attempts"], failed["next_retry_at"]) == ("failed", 5, None)
    harness.force_due(delivery_id)
    assert harness.sweep() == 0
    retry = client.post(f"/api/v1/webhooks/{delivery_id}/retry", headers=headers_for(merchant))
    assert retry.status_code == 200
    assert retry.json == {"id": delivery_id, "status": "pending", "message": "Webhook retry scheduled"}
    assert log(client, merchant, delivery_id)["attempts"] == 0
    assert harness.deliver_collected() == ["success"]
    done = log(client, merchant, delivery_id)
    assert (done["status"], done["attempts"]) == ("success", 1)
    assert [r.status for r in server.state.requests] == [500] * 5 + [200]


def test_each_attempt_is_signed_with_the_current_secret(app, harness, db, merchant, receivers):
    client = app.test_client()
    old = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(old, fail_first=1)
    configure(client, merchant, url_of(server))
    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    harness.deliver_collected()
    new = client.post("/api/v1/webhooks/regenerate-secret", headers=headers_for(merchant)).json["webhook_secret"]
    server.state.secret = new
    harness.force_due(delivery_id)
    harness.sweep()
    assert harness.deliver_collected() == ["success"]
    first, second = server.state.requests
    assert signing.verify(old, first.body, first.headers["X-Webhook-Signature"])
    assert not signing.verify(old, second.body, second.headers["X-Webhook-Signature"])
    assert signing.verify_v2(new, second.body, second.headers["X-Webhook-Signature-V2"])


# --- logs ---------------------------------------------------------------------------------


def test_logs_are_newest_first_paginated_and_filter_by_payment(app, harness, db, merchant, receivers):
    client = app.test_client()
    server = receivers("whsec_unused")
    configure(client, merchant, url_of(server))
    pay_a, pay_b = "pay_AAAAAAAAAAAAAAAA", "pay_BBBBBBBBBBBBBBBB"
    events = [
        payment_event(merchant, "payment.created", pay_a),
        payment_event(merchant, "payment.success", pay_a),
        payment_event(merchant, "payment.created", pay_b),
        make_event("refund.processed", merchant, {"refund": {"id": "rfnd_AAAAAAAAAAAAAAAA", "payment_id": pay_a}}),
    ]
    for event in events:
        service.handle_events(db, harness.cfg, [event], harness.collector)
    harness.collector.take()
    listing = client.get("/api/v1/webhooks?limit=3&offset=0", headers=headers_for(merchant)).json
    assert listing["total"] == 4 and listing["limit"] == 3 and listing["offset"] == 0
    assert [d["event"] for d in listing["data"]] == ["refund.processed", "payment.created", "payment.success"]
    item = listing["data"][0]
    assert set(item) == {"id", "endpoint_id", "event", "status", "attempts", "created_at", "last_attempt_at", "next_retry_at",
                         "response_code", "last_error"}
    assert item["created_at"].endswith("Z")
    page2 = client.get("/api/v1/webhooks?limit=3&offset=3", headers=headers_for(merchant)).json
    assert [d["event"] for d in page2["data"]] == ["payment.created"]
    only_a = client.get(f"/api/v1/webhooks?payment_id={pay_a}", headers=headers_for(merchant)).json
    assert [d["event"] for d in only_a["data"]] == ["refund.processed", "payment.success", "payment.created"]
    assert only_a["total"] == 3
    none = client.get("/api/v1/webhooks?payment_id=pay_CCCCCCCCCCCCCCCC", headers=headers_for(merchant)).json
    assert none == {"data": [], "total": 0, "total_is_estimate": False, "has_more": False, "limit": 10, "offset": 0}
    assert listing["has_more"] is True and page2["has_more"] is False
    # Cursors by log id, alone and with the payment filter.
    ids = [d["id"] for d in client.get("/api/v1/webhooks", headers=headers_for(merchant)).json["data"]]
    after = client.get(f"/api/v1/webhooks?limit=2&starting_after={ids[0]}", headers=headers_for(merchant)).json
    assert ([d["id"] for d in after["data"]], after["has_more"]) == (ids[1:3], True)
    before = client.get(f"/api/v1/webhooks?limit=2&ending_before={ids[3]}", headers=headers_for(merchant)).json
    assert ([d["id"] for d in before["data"]], before["has_more"]) == (ids[1:3], True)
    filtered = client.get(f"/api/v1/webhooks?payment_id={pay_a}&starting_after={ids[0]}", headers=headers_for(merchant)).json
    assert [d["event"] for d in filtered["data"]] == ["payment.success", "payment.created"]
    stranger = headers_for(f"{merchant[:-4]}eeee")
    for name in ("starting_after", "ending_before"):
        theirs = client.get(f"/api/v1/webhooks?{name}={ids[0]}", headers=stranger)
        unknown = client.get(f"/api/v1/webhooks?{name}=whlog_AAAAAAAAAAAAAAAA", headers=stranger)
        assert theirs.status_code == unknown.status_code == 400
        assert theirs.json == unknown.json
        assert ids[0] not in theirs.get_data(as_text=True)
    both = client.get(f"/api/v1/webhooks?starting_after={ids[0]}&ending_before={ids[1]}", headers=headers_for(merchant))
    assert both.status_code == 400 and both.json["error"]["code"] == "BAD_REQUEST_ERROR"
    for query in ("limit=0", "limit=101", "offset=-1", "limit=abc"):
        bad = client.get(f"/api/v1/webhooks?{query}", headers=headers_for(merchant))
        assert bad.status_code == 400, query
        assert bad.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_another_merchants_log_is_not_found(app, harness, db, merchant, receivers):
    client = app.test_client()
    server = receivers("whsec_unused")
    configure(client, merchant, url_of(server))
    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    harness.collector.take()
    stranger = headers_for(f"{merchant[:-4]}eeee")
    for response in (
        client.get(f"/api/v1/webhooks/{delivery_id}", headers=stranger),
        client.post(f"/api/v1/webhooks/{delivery_id}/retry", headers=stranger),
        client.get("/api/v1/webhooks/whlog_AAAAAAAAAAAAAAAA", headers=headers_for(merchant)),
        client.post("/api/v1/webhooks/whlog_AAAAAAAAAAAAAAAA/retry", headers=headers_for(merchant)),
    ):
        assert response.status_code == 404
        assert response.json["error"]["code"] == "NOT_FOUND_ERROR"
    assert client.get("/api/v1/webhooks", headers=stranger).json["total"] == 0


# --- what a failed attempt records --------------------------------------------------------


class _Odd(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/big":
            payload = b"E" * 5000
            self.send_response(503)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif self.path == "/slow":
            time.sleep(6)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/trickle":
            # Every byte well within a socket timeout, the whole answer far beyond the deadline.
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _attempt_once(client, harness, db, merchant: str, url: str) -> dict:
    configure(client, merchant, url)
    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    assert harness.deliver_collected() == ["pending"]
    return log(client, merchant, delivery_id)


def test_redirects_are_not_followed(app, harness, db, merchant, odd_server):
    detail = _attempt_once(app.test_client(), harness, db, merchant, f"{odd_server}/redirect")
    assert detail["response_code"] == 302
    assert "not followed" in detail["last_error"]


def test_long_response_bodies_are_truncated_to_1_kib(app, harness, db, merchant, odd_server):
    detail = _attempt_once(app.test_client(), harness, db, merchant, f"{odd_server}/big")
    assert detail["response_code"] == 503
    assert detail["response_body"] == "E" * 1024


def test_refused_connections_are_recorded(app, harness, db, merchant):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    detail = _attempt_once(app.test_client(), harness, db, merchant, f"http://127.0.0.1:{port}/webhook")
    assert detail["response_code"] is None
    assert detail["last_error"].startswith("connection failed")


def test_slow_receivers_time_out_after_5_seconds(app, harness, db, merchant, odd_server):
    started = time.monotonic()
    detail = _attempt_once(app.test_client(), harness, db, merchant, f"{odd_server}/slow")
    assert time.monotonic() - started < 8
    assert detail["response_code"] is None
    assert "timed out" in detail["last_error"]


def test_an_answer_trickling_in_is_cut_at_the_5_second_total_deadline(app, harness, db, merchant, odd_server):
    started = time.monotonic()
    detail = _attempt_once(app.test_client(), harness, db, merchant, f"{odd_server}/trickle")
    assert time.monotonic() - started < 6.5  # the trickle alone takes 12 s
    assert detail["response_code"] is None
    assert detail["last_error"] == "timed out after 5s"


# --- durability of the schedule -----------------------------------------------------------


def test_a_failed_dispatch_leaves_the_delivery_due(app, harness, db, merchant, receivers):
    client = app.test_client()
    secret = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(secret)
    configure(client, merchant, url_of(server))

    def broker_down(claims: list[Claim]) -> None:
        raise ConnectionError("redis is restarting")

    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], broker_down)
    with db.transaction() as tx:
        tx.cursor.execute("SELECT lease_token FROM webhooks.deliveries WHERE id = %s", (delivery_id,))
        assert tx.cursor.fetchone()["lease_token"] is None
    assert harness.sweep() >= 1
    harness.deliver_collected()
    assert log(client, merchant, delivery_id)["status"] == "success"
    assert len(server.state.requests) == 1


def test_a_claim_is_used_once_and_an_expired_lease_comes_back(app, harness, db, merchant, receivers):
    client = app.test_client()
    secret = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(secret)
    configure(client, merchant, url_of(server))
    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    (claim,) = harness.collector.take()
    # The worker that held this claim "died": nothing happens until its lease runs out.
    assert service.dispatch_due(db, harness.cfg, harness.collector, [delivery_id]) == 0
    with db.transaction() as tx:
        tx.cursor.execute(
            "UPDATE webhooks.deliveries SET lease_until = now() - interval '1 second' WHERE id = %s", (delivery_id,)
        )
    assert service.dispatch_due(db, harness.cfg, harness.collector, [delivery_id]) == 1
    assert harness.deliver([claim]) == [None]  # stale claim
    (fresh,) = harness.collector.take()
    assert harness.deliver([fresh]) == ["success"]
    assert harness.deliver([fresh]) == [None]  # duplicate task
    assert len(server.state.requests) == 1


def test_schema_refuses_impossible_rows(database_url):
    conn = psycopg.connect(database_url)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg.errors.CheckViolation):
            cur.execute(
                "INSERT INTO webhooks.endpoints (id, merchant_id, url, secret) VALUES "
                "('we_AAAAAAAAAAAAAAAA', gen_random_uuid(), 'file:///etc/passwd', 'whsec_x')"
            )
    finally:
        conn.close()


# --- SSRF outside test mode ---------------------------------------------------------------


@pytest.fixture
def strict_app(service_env, monkeypatch):
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE", raising=False)
    settings = dataclasses.replace(Settings.from_env("webhooks"), test_mode=False)
    app = create_app(settings)
    assert app.extensions["webhook_config"].allow_private is False
    return app


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4000/webhook",
        "http://localhost:4000/webhook",
        "http://[::1]:4000/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
    ],
)
def test_private_urls_are_refused_at_config_time_outside_test_mode(strict_app, merchant, url):
    response = strict_app.test_client().put(
        "/api/v1/webhooks/config", json={"webhook_url": url}, headers=headers_for(merchant)
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_deliveries_to_names_resolving_to_private_addresses_are_refused(strict_app, db, merchant, receivers, harness_for):
    server = receivers("whsec_unused")
    port = server.server_address[1]
    client = strict_app.test_client()
    hostname = socket.gethostname()
    resolved = {info[4][0] for info in socket.getaddrinfo(hostname, port, 0, socket.SOCK_STREAM)}
    strict = harness_for(WebhookConfig(allow_private=False, intervals=TEST_RETRY_INTERVALS))
    urls = [f"http://{hostname}:{port}/webhook"] if resolved <= {"127.0.0.1", "::1"} else []
    # A URL stored while private destinations were allowed, or whose DNS changed since.
    urls.append(f"http://127.0.0.1:{port}/webhook")
    for index, url in enumerate(urls):
        if index == 0 and urls[0].startswith(f"http://{hostname}"):
            configure(client, merchant, url)
        else:
            with db.transaction() as tx:
                tx.cursor.execute("UPDATE webhooks.endpoints SET url = %s WHERE merchant_id = %s", (url, merchant))
        (delivery_id,) = service.handle_events(db, strict.cfg, [payment_event(merchant)], strict.collector)
        assert strict.deliver_collected() == ["pending"]
        detail = log(client, merchant, delivery_id)
        assert detail["last_error"] == "destination not allowed"
        assert detail["response_code"] is None
        assert detail["attempts"] == 1
    assert server.state.requests == []


def test_a_task_that_outruns_the_claiming_commit_still_delivers(app, harness, db, merchant, receivers):
    client = app.test_client()
    secret = client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_secret"]
    server = receivers(secret)
    configure(client, merchant, url_of(server))

    def eager_worker(claims: list[Claim]) -> None:
        # As in the worker, the engine gets the claims while the claiming transaction is still open.
        harness.engine.submit(claims)
        time.sleep(0.3)  # let the engine's takeover reach the row before the claim commits

    (delivery_id,) = service.handle_events(db, harness.cfg, [payment_event(merchant)], eager_worker)
    assert harness.engine.drain(timeout=15)
    detail = log(client, merchant, delivery_id)
    assert (detail["status"], detail["attempts"]) == ("success", 1)
    assert len(server.state.requests) == 1


# --- SSRF in test mode: only WEBHOOK_ALLOW_PRIVATE opens private destinations -------------


def test_test_mode_alone_does_not_open_private_destinations(service_env, db, merchant, receivers, monkeypatch, harness_for):
    monkeypatch.setenv("TEST_MODE", "true")
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE", raising=False)
    settings = Settings.from_env("webhooks")
    assert settings.test_mode is True
    app = create_app(settings)
    cfg: WebhookConfig = app.extensions["webhook_config"]
    assert cfg.allow_private is False
    server = receivers("whsec_unused")
    url = url_of(server)
    refused = app.test_client().put("/api/v1/webhooks/config", json={"webhook_url": url}, headers=headers_for(merchant))
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "BAD_REQUEST_ERROR"
    # A loopback URL already stored (say, before the setting changed) is refused at delivery time too.
    with db.transaction() as tx:
        tx.cursor.execute(
            "INSERT INTO webhooks.endpoints (id, merchant_id, url, secret, is_default) "
            "VALUES ('we_T3stM0deOnly0001', %s, %s, 'whsec_x', true) "
            "ON CONFLICT (merchant_id) WHERE is_default DO UPDATE SET url = EXCLUDED.url",
            (merchant, url),
        )
    strict = harness_for(cfg)
    (delivery_id,) = service.handle_events(db, cfg, [payment_event(merchant)], strict.collector)
    assert strict.deliver_collected() == ["pending"]
    assert log(app.test_client(), merchant, delivery_id)["last_error"] == "destination not allowed"
    assert server.state.requests == []


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_webhook_allow_private_false_or_unset_keeps_the_policy(service_env, monkeypatch, value):
    monkeypatch.setenv("TEST_MODE", "true")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", value)
    assert WebhookConfig.from_settings(Settings.from_env("webhooks")).allow_private is False


def test_webhook_allow_private_true_opens_loopback(service_env, merchant, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    app = create_app(dataclasses.replace(Settings.from_env("webhooks"), test_mode=False))
    assert app.extensions["webhook_config"].allow_private is True
    response = app.test_client().put(
        "/api/v1/webhooks/config", json={"webhook_url": "http://127.0.0.1:4000/webhook"}, headers=headers_for(merchant)
    )
    assert response.status_code == 200
