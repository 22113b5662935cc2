"""Stored events, several endpoints, Standard Webhooks signatures, resend, replay, pruning, the stream's reads."""

from __future__ import annotations

import json
import time

import pytest
from gateway_common.events import make_event
from standardwebhooks import Webhook, WebhookVerificationError
from webhooks import repository, service, stream
from webhooks.models import MAX_ENDPOINTS


def headers_for(merchant_id: str) -> dict[str, str]:
    return {"X-Gateway-Secret": "test-gateway-secret", "X-Merchant-Id": merchant_id}


def payment_event(merchant: str, kind: str = "payment.success", payment_id: str = "pay_Ab12Cd34Ef56Gh78", **extra) -> dict:
    event = make_event(kind, merchant, {"payment": {"id": payment_id, "amount": 50000, "status": "success"}})
    event.update(extra)
    return event


def refund_event(merchant: str, kind: str = "refund.processed") -> dict:
    return make_event(kind, merchant, {"refund": {"id": "rfnd_AAAAAAAAAAAAAAAA", "payment_id": "pay_Ab12Cd34Ef56Gh78"}})


def add_endpoint(client, merchant: str, url: str, events: list[str] | None = None, server=None) -> dict:
    """Create an endpoint; a receiver ``server`` given is told its secret (it verifies every request)."""
    body = {"url": url, "description": "test"} | ({"enabled_events": events} if events else {})
    response = client.post("/api/v1/webhook-endpoints", json=body, headers=headers_for(merchant))
    assert response.status_code == 201, response.json
    if server is not None:
        server.state.secret = response.json["secret"]
    return response.json


def events_page(client, merchant: str, query: str = "") -> dict:
    response = client.get(f"/api/v1/events{query}", headers=headers_for(merchant))
    assert response.status_code == 200, response.json
    return response.json


# Leave nothing of the test's merchant due: later tests sweep every due delivery of the database.
pytestmark = pytest.mark.usefixtures("nothing_left_due")


# --- events -------------------------------------------------------------------------------


def test_every_event_is_stored_once_without_any_endpoint(app, db, harness, merchant):
    events = [payment_event(merchant, "payment.created"), payment_event(merchant), refund_event(merchant)]
    assert service.handle_events(db, harness.cfg, events, harness.collector) == []  # no endpoint: no delivery
    service.handle_events(db, harness.cfg, events, harness.collector)  # re-published: stored once
    page = events_page(app.test_client(), merchant)
    assert [e["id"] for e in page["data"]] == [e["id"] for e in reversed(events)]
    assert page["has_more"] is False
    first = page["data"][-1]
    assert set(first) == {"id", "type", "created_at", "data"}
    assert first["type"] == "payment.created"
    assert first["data"] == events[0]["data"]
    assert first["created_at"].endswith("Z")


def test_list_filters_by_type_wildcard_and_time_window(app, db, harness, merchant):
    old = payment_event(merchant, "payment.failed", timestamp=int(time.time()) - 7200)
    recent = [payment_event(merchant, "payment.failed"), payment_event(merchant, "payment.success"), refund_event(merchant)]
    service.handle_events(db, harness.cfg, [old, *recent], harness.collector)
    client = app.test_client()
    assert [e["id"] for e in events_page(client, merchant, "?type=payment.failed")["data"]] == [recent[0]["id"], old["id"]]
    assert [e["type"] for e in events_page(client, merchant, "?type=payment.*")["data"]] == [
        "payment.success", "payment.failed", "payment.failed"]
    assert [e["type"] for e in events_page(client, merchant, "?type=refund.*")["data"]] == ["refund.processed"]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    assert len(events_page(client, merchant, f"?created_gte={since}")["data"]) == 3
    assert [e["id"] for e in events_page(client, merchant, f"?created_lte={since}")["data"]] == [old["id"]]
    for bad in ("?type=payment.%25", "?type=PAYMENT", "?limit=0", "?limit=101", "?created_gte=yesterday",
                "?starting_after=evt_x&ending_before=evt_y"):
        response = client.get(f"/api/v1/events{bad}", headers=headers_for(merchant))
        assert response.status_code == 400, bad
        assert response.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_cursor_pagination_pages_both_ways(app, db, harness, merchant, other_merchant):
    events = [payment_event(merchant, "payment.created", f"pay_{i:016d}") for i in range(5)]
    service.handle_events(db, harness.cfg, events, harness.collector)
    newest_first = [e["id"] for e in reversed(events)]
    client = app.test_client()
    first = events_page(client, merchant, "?limit=2")
    assert [e["id"] for e in first["data"]] == newest_first[:2] and first["has_more"]
    second = events_page(client, merchant, f"?limit=2&starting_after={newest_first[1]}")
    assert [e["id"] for e in second["data"]] == newest_first[2:4] and second["has_more"]
    last = events_page(client, merchant, f"?limit=2&starting_after={newest_first[3]}")
    assert [e["id"] for e in last["data"]] == newest_first[4:] and not last["has_more"]
    back = events_page(client, merchant, f"?limit=2&ending_before={newest_first[4]}")
    assert [e["id"] for e in back["data"]] == newest_first[2:4] and back["has_more"]
    top = events_page(client, merchant, f"?limit=2&ending_before={newest_first[2]}")
    assert [e["id"] for e in top["data"]] == newest_first[:2] and not top["has_more"]
    # Another merchant's event is no cursor of this one's, and shows nothing.
    foreign = client.get(f"/api/v1/events?starting_after={newest_first[0]}", headers=headers_for(other_merchant))
    assert foreign.status_code == 400
    assert events_page(client, other_merchant)["data"] == []


@pytest.fixture
def other_merchant() -> str:
    import uuid

    return str(uuid.uuid4())


def test_event_detail_shows_each_endpoints_delivery_and_hides_from_others(
    app, db, harness, merchant, other_merchant, receivers, url_of
):
    client = app.test_client()
    server, other = receivers("whsec_unused"), receivers("whsec_unused")
    one = add_endpoint(client, merchant, url_of(server), ["payment.*"], server)
    two = add_endpoint(client, merchant, url_of(other), ["payment.success"], other)
    event = payment_event(merchant, "payment.success")
    created = service.handle_events(db, harness.cfg, [event], harness.collector)
    assert len(created) == 2
    harness.deliver_collected()
    detail = client.get(f"/api/v1/events/{event['id']}", headers=headers_for(merchant)).json
    assert detail["id"] == event["id"] and detail["type"] == "payment.success"
    assert {d["endpoint_id"] for d in detail["deliveries"]} == {one["id"], two["id"]}
    for delivery in detail["deliveries"]:
        assert delivery["status"] == "success" and delivery["attempts"] == 1 and delivery["response_code"] == 200
    for path in (f"/api/v1/events/{event['id']}", f"/api/v1/events/{event['id']}/resend"):
        method = client.post if path.endswith("resend") else client.get
        response = method(path, headers=headers_for(other_merchant), json={})
        assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND_ERROR"


def test_resend_delivers_again_to_subscribed_endpoints_or_one(app, db, harness, merchant, receivers, url_of):
    client = app.test_client()
    event = payment_event(merchant, "payment.failed")
    service.handle_events(db, harness.cfg, [event], harness.collector)
    nothing = client.post(f"/api/v1/events/{event['id']}/resend", json={}, headers=headers_for(merchant))
    assert nothing.status_code == 400  # no endpoint is subscribed
    server = receivers("whsec_unused")
    payments = add_endpoint(client, merchant, url_of(server), ["payment.failed"], server)
    add_endpoint(client, merchant, url_of(server) + "?refunds", ["refund.*"])
    resent = client.post(f"/api/v1/events/{event['id']}/resend", headers=headers_for(merchant))
    assert resent.status_code == 202, resent.json
    assert resent.json["event_id"] == event["id"] and len(resent.json["deliveries"]) == 1
    assert harness.deliver_collected() == ["success"]
    again = client.post(f"/api/v1/events/{event['id']}/resend", json={"endpoint_id": payments["id"]}, headers=headers_for(merchant))
    assert again.json["deliveries"] == resent.json["deliveries"]  # the same delivery, attempted afresh
    assert harness.deliver_collected() == ["success"]
    received = [json.loads(r.body)["id"] for r in server.state.requests]
    assert received == [event["id"], event["id"]]
    unknown = client.post(f"/api/v1/events/{event['id']}/resend", json={"endpoint_id": "we_AAAAAAAAAAAAAAAA"}, headers=headers_for(merchant))
    assert unknown.status_code == 404


def test_events_are_pruned_after_30_days_in_bounded_batches(db, harness, merchant):
    month_ago = int(time.time()) - 31 * 86400
    old = [payment_event(merchant, "payment.created", timestamp=month_ago) for _ in range(3)]
    young = payment_event(merchant, "payment.created")
    service.handle_events(db, harness.cfg, [*old, young], harness.collector)

    def stored() -> set[str]:
        with db.transaction() as tx:
            return {e.id for e in repository.list_events(tx, merchant, {"limit": 100}).items}

    # Other tests' events may be older in seq order; prune until this merchant's old ones are gone.
    deadline = time.monotonic() + 30
    while stored() & {e["id"] for e in old} and time.monotonic() < deadline:
        assert service.prune_events(db, batch=2) <= 2
    assert stored() == {young["id"]}


# --- endpoints ----------------------------------------------------------------------------


def test_endpoint_crud_and_the_limit(app, merchant, other_merchant, receivers, url_of):
    client = app.test_client()
    url = url_of(receivers("whsec_unused"))
    created = add_endpoint(client, merchant, url, ["payment.success", "refund.*"])
    assert set(created) == {"id", "url", "enabled_events", "description", "status", "disabled_reason", "format", "secret",
                            "created_at"}
    assert created["id"].startswith("we_") and created["status"] == "enabled" and created["disabled_reason"] is None
    assert created["format"] == "gateway"
    assert created["secret"].startswith("whsec_") and len(created["secret"]) == 6 + 32
    listed = client.get("/api/v1/webhook-endpoints", headers=headers_for(merchant)).json["data"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    fetched = client.get(f"/api/v1/webhook-endpoints/{created['id']}", headers=headers_for(merchant)).json
    assert fetched == created
    patched = client.patch(f"/api/v1/webhook-endpoints/{created['id']}", json={"enabled_events": ["*"], "status": "disabled"},
                           headers=headers_for(merchant))
    assert patched.status_code == 200 and patched.json["enabled_events"] == ["*"] and patched.json["status"] == "disabled"
    for bad in ({"url": "ftp://x"}, {"enabled_events": []}, {"enabled_events": ["Payment"]}, {"status": "paused"}, {"nope": 1},
                {"format": "stripe"}, {"format": None}):
        response = client.patch(f"/api/v1/webhook-endpoints/{created['id']}", json=bad, headers=headers_for(merchant))
        assert response.status_code == 400, bad
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/webhook-endpoints/{created['id']}", json={}, headers=headers_for(other_merchant))
        assert response.status_code == 404
    for _ in range(MAX_ENDPOINTS - 1):
        add_endpoint(client, merchant, url)
    beyond = client.post("/api/v1/webhook-endpoints", json={"url": url}, headers=headers_for(merchant))
    assert beyond.status_code == 400 and "16" in beyond.json["error"]["description"]
    assert client.delete(f"/api/v1/webhook-endpoints/{created['id']}", headers=headers_for(merchant)).status_code == 204
    assert client.get(f"/api/v1/webhook-endpoints/{created['id']}", headers=headers_for(merchant)).status_code == 404
    add_endpoint(client, merchant, url)  # room again


def test_two_endpoints_with_different_filters_get_exactly_their_events(app, db, harness, merchant, receivers, url_of):
    client = app.test_client()
    payments_rx, refunds_rx = receivers("whsec_unused"), receivers("whsec_unused")
    add_endpoint(client, merchant, url_of(payments_rx), ["payment.success", "payment.failed"], payments_rx)
    add_endpoint(client, merchant, url_of(refunds_rx), ["refund.*"], refunds_rx)
    events = [payment_event(merchant, "payment.created"), payment_event(merchant, "payment.success"),
              payment_event(merchant, "payment.failed"), refund_event(merchant, "refund.created"), refund_event(merchant)]
    service.handle_events(db, harness.cfg, events, harness.collector)
    harness.deliver_collected()
    assert sorted(json.loads(r.body)["id"] for r in payments_rx.state.requests) == sorted(e["id"] for e in events[1:3])
    assert sorted(json.loads(r.body)["id"] for r in refunds_rx.state.requests) == sorted(e["id"] for e in events[3:])


def test_standard_webhooks_library_verifies_deliveries_unmodified(app, db, harness, merchant, receivers, url_of):
    client = app.test_client()
    server = receivers("whsec_unused")
    endpoint = add_endpoint(client, merchant, url_of(server), server=server)
    service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    harness.deliver_collected()
    (request,) = server.state.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert Webhook(endpoint["secret"]).verify(request.body, headers)["event"] == "payment.success"
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body.replace(b"50000", b"50001"), headers)
    # The legacy headers come too, keyed with the secret as text (the old receivers keep working).
    assert request.event is not None


def test_rotation_signs_with_both_secrets_until_the_old_one_expires(app, db, harness, merchant, receivers, url_of):
    client = app.test_client()
    server = receivers("whsec_unused")
    endpoint = add_endpoint(client, merchant, url_of(server))
    rotated = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                          json={"expire_previous_in_seconds": 3600}, headers=headers_for(merchant))
    assert rotated.status_code == 200 and rotated.json["secret"] != endpoint["secret"]
    server.state.secret = rotated.json["secret"]  # the legacy headers are signed with the current secret
    service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    harness.deliver_collected()
    at_once = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                          json={"expire_previous_in_seconds": 0}, headers=headers_for(merchant)).json
    server.state.secret = at_once["secret"]
    service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    harness.deliver_collected()
    during, after = ({k.lower(): v for k, v in r.headers.items()} for r in server.state.requests)
    bodies = [r.body for r in server.state.requests]
    assert len(during["webhook-signature"].split()) == 2
    for secret in (endpoint["secret"], rotated.json["secret"]):
        Webhook(secret).verify(bodies[0], during)
    Webhook(at_once["secret"]).verify(bodies[1], after)
    with pytest.raises(WebhookVerificationError):
        Webhook(rotated.json["secret"]).verify(bodies[1], after)
    bad = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                      json={"expire_previous_in_seconds": -1}, headers=headers_for(merchant))
    assert bad.status_code == 400


def test_disabled_endpoint_records_without_attempt_and_replay_sends_the_failed(app, db, harness, merchant, receivers, url_of):
    client = app.test_client()
    server = receivers("whsec_unused")
    endpoint = add_endpoint(client, merchant, url_of(server), ["payment.*"], server)
    client.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", json={"status": "disabled"}, headers=headers_for(merchant))
    missed = [payment_event(merchant, "payment.success"), payment_event(merchant, "payment.failed")]
    assert service.handle_events(db, harness.cfg, missed, harness.collector) == []  # nothing due
    detail = client.get(f"/api/v1/events/{missed[0]['id']}", headers=headers_for(merchant)).json
    assert [(d["status"], d["attempts"]) for d in detail["deliveries"]] == [("disabled", 0)]
    refused = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/replay", json={}, headers=headers_for(merchant))
    assert refused.status_code == 400  # enable it first
    client.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", json={"status": "enabled"}, headers=headers_for(merchant))
    delivered = payment_event(merchant, "payment.captured")
    service.handle_events(db, harness.cfg, [delivered, refund_event(merchant)], harness.collector)
    harness.deliver_collected()
    replay = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/replay", json={"only_failed": True},
                         headers=headers_for(merchant))
    assert replay.status_code == 202 and replay.json == {"replayed": 2}
    harness.deliver_collected()
    received = [json.loads(r.body)["id"] for r in server.state.requests]
    assert received[0] == delivered["id"] and sorted(received[1:]) == sorted(e["id"] for e in missed)
    window = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/replay",
                         json={"types": ["payment.failed"], "created_gte": "2020-01-01T00:00:00Z"}, headers=headers_for(merchant))
    assert window.json == {"replayed": 1}
    assert harness.deliver_collected() == ["success"]  # nothing left due for the tests after this one
    for bad in ({"types": ["nope"]}, {"created_gte": "soon"}, {"only_failed": "maybe"}):
        response = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/replay", json=bad, headers=headers_for(merchant))
        assert response.status_code == 400, bad


def test_default_endpoint_keeps_working_and_is_listed(app, db, harness, merchant, receivers, url_of):
    client = app.test_client()
    server = receivers("whsec_unused")
    config = client.put("/api/v1/webhooks/config", json={"webhook_url": url_of(server)}, headers=headers_for(merchant)).json
    (default,) = client.get("/api/v1/webhook-endpoints", headers=headers_for(merchant)).json["data"]
    assert default["url"] == config["webhook_url"] and default["enabled_events"] == ["*"]
    service.handle_events(db, harness.cfg, [payment_event(merchant)], harness.collector)
    harness.deliver_collected()
    (request,) = server.state.requests
    assert "webhook-signature" not in {k.lower() for k in request.headers}  # the legacy secret signs the old headers only
    rotate = client.post(f"/api/v1/webhook-endpoints/{default['id']}/rotate-secret", json={}, headers=headers_for(merchant))
    assert rotate.status_code == 400
    assert client.delete(f"/api/v1/webhook-endpoints/{default['id']}", headers=headers_for(merchant)).status_code == 204
    assert client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["webhook_url"] is None


# --- the stream's reads -------------------------------------------------------------------


def test_stream_resumes_after_last_event_id_and_filters_types(db, harness, merchant, other_merchant):
    first, second, third = payment_event(merchant, "payment.created"), refund_event(merchant), payment_event(merchant)
    service.handle_events(db, harness.cfg, [first, second, third, payment_event(other_merchant)], harness.collector)
    position = service.stream_start(db, merchant, first["id"])
    _, events = service.stream_read(db, merchant, position, 100)
    assert [e.id for e in events] == [second["id"], third["id"]]
    # An id that is not this merchant's starts "now": nothing of the other merchant leaks.
    position = service.stream_start(db, other_merchant, first["id"])
    assert [e.id for e in service.stream_read(db, other_merchant, position, 100)[1]] == []
    message = stream.sse_message(events[0])
    assert message.startswith(f"id: {second['id']}\nevent: refund.processed\ndata: {{".encode())
    assert message.endswith(b"\n\n") and json.loads(message.split(b"data: ", 1)[1])["id"] == second["id"]


# --- failing endpoints --------------------------------------------------------------------


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"


def test_a_refusing_endpoint_trips_its_circuit_then_is_disabled_with_an_event(app, db, merchant, harness_for, receivers, url_of):
    import dataclasses

    cfg = dataclasses.replace(app.extensions["webhook_config"], probe_seconds=0.5, disable_after_seconds=2.0)
    strict = harness_for(cfg)
    client = app.test_client()
    dead = add_endpoint(client, merchant, _closed_port_url(), ["payment.*"])
    watcher = receivers("whsec_unused")
    add_endpoint(client, merchant, url_of(watcher), ["webhook_endpoint.disabled"], watcher)
    events = [payment_event(merchant, "payment.created", f"pay_{i:016d}") for i in range(12)]
    assert len(service.handle_events(db, cfg, events, strict.collector)) == 12
    statuses = strict.deliver_collected()
    assert statuses == ["pending"] * 12  # 12 failures in a row: the circuit is open

    def attempts() -> int:
        with db.transaction() as tx:
            tx.cursor.execute("SELECT coalesce(sum(attempts), 0) AS n FROM webhooks.deliveries WHERE endpoint_id = %s",
                              (dead["id"],))
            return int(tx.cursor.fetchone()["n"])

    def sweep_now(everything: bool = False) -> None:
        # The retries' schedule is skipped; a delivery the circuit put off until its next probe is not
        # (unless ``everything``).
        with db.transaction() as tx:
            tx.cursor.execute("UPDATE webhooks.deliveries SET next_retry_at = now() WHERE endpoint_id = %s "
                              "AND status = 'pending' AND next_retry_at > now() + %s * interval '1 second'",
                              (dead["id"], 0 if everything else 1))
        strict.sweep()
        strict.deliver_collected()

    sweep_now()  # every retry is due, but the circuit holds them: no attempt
    assert attempts() == 12
    deadline = time.monotonic() + 10
    while client.get(f"/api/v1/webhook-endpoints/{dead['id']}", headers=headers_for(merchant)).json["status"] == "enabled":
        assert time.monotonic() < deadline, "the failing endpoint was not disabled"
        time.sleep(0.2)
        sweep_now()  # at most one probe per 0.5 s gets through
    made = attempts()
    assert 13 <= made <= 12 + 10, made  # the probes only, not 12 deliveries x retries
    endpoint = client.get(f"/api/v1/webhook-endpoints/{dead['id']}", headers=headers_for(merchant)).json
    assert endpoint["disabled_reason"] == "failing"
    (disabled_event,) = events_page(client, merchant, "?type=webhook_endpoint.disabled")["data"]
    assert disabled_event["data"]["webhook_endpoint"]["id"] == dead["id"]
    strict.deliver_collected()
    strict.sweep()
    strict.deliver_collected()
    assert [json.loads(r.body)["event"] for r in watcher.state.requests] == ["webhook_endpoint.disabled"]
    # What is still pending for it is recorded as disabled, without an attempt.
    sweep_now(everything=True)
    assert attempts() == made
    detail = client.get(f"/api/v1/events/{events[0]['id']}", headers=headers_for(merchant)).json
    assert [d["status"] for d in detail["deliveries"]] == ["disabled"]
    # The probes went to the least-tried deliveries: none spent its five attempts on them.
    with db.transaction() as tx:
        tx.cursor.execute("SELECT status, attempts FROM webhooks.deliveries WHERE endpoint_id = %s", (dead["id"],))
        rows = tx.cursor.fetchall()
    assert {row["status"] for row in rows} == {"disabled"}
    assert max(row["attempts"] for row in rows) <= 2


def test_a_success_closes_the_circuit(app, db, merchant, harness_for, receivers, url_of):
    import dataclasses

    cfg = dataclasses.replace(app.extensions["webhook_config"], probe_seconds=0.3)
    strict = harness_for(cfg)
    client = app.test_client()
    server = receivers("whsec_unused", fail_first=6)
    endpoint = add_endpoint(client, merchant, url_of(server), ["payment.*"], server)
    service.handle_events(db, cfg, [payment_event(merchant, "payment.created", f"pay_{i:016d}") for i in range(6)],
                          strict.collector)
    assert strict.deliver_collected() == ["pending"] * 6
    time.sleep(0.4)
    with db.transaction() as tx:
        tx.cursor.execute("UPDATE webhooks.deliveries SET next_retry_at = now() WHERE endpoint_id = %s", (endpoint["id"],))
    strict.sweep()
    strict.deliver_collected()

    def statuses() -> list[str]:
        with db.transaction() as tx:
            tx.cursor.execute("SELECT status FROM webhooks.deliveries WHERE endpoint_id = %s ORDER BY status",
                              (endpoint["id"],))
            return [row["status"] for row in tx.cursor.fetchall()]

    assert statuses() == ["pending"] * 5 + ["success"]  # one probe; the rest held back
    # The probe's success closed the circuit and released what it held back: all due now, no waiting
    # for the hold (an hour in production) or the next probe.
    with db.transaction() as tx:
        tx.cursor.execute("SELECT count(*) AS n FROM webhooks.deliveries WHERE endpoint_id = %s AND status = 'pending' "
                          "AND NOT held AND next_retry_at <= now()", (endpoint["id"],))
        assert tx.cursor.fetchone()["n"] == 5
    strict.sweep()
    strict.deliver_collected()
    assert statuses() == ["success"] * 6  # closed again: all go


def test_an_open_circuit_holds_its_deliveries_back_instead_of_reclaiming_them_at_every_probe(
    app, db, merchant, harness_for, receivers, url_of
):
    import dataclasses

    cfg = dataclasses.replace(app.extensions["webhook_config"], probe_seconds=0.3, hold_seconds=3600.0)
    strict = harness_for(cfg)
    client = app.test_client()
    dead = add_endpoint(client, merchant, _closed_port_url(), ["payment.*"])
    service.handle_events(db, cfg, [payment_event(merchant, "payment.created", f"pay_{i:016d}") for i in range(30)],
                          strict.collector)
    assert strict.deliver_collected() == ["pending"] * 30  # 30 refused: the circuit is open

    def rows() -> dict[str, dict]:
        with db.transaction() as tx:
            tx.cursor.execute("SELECT id, status, held, attempts, next_retry_at > now() + interval '30 minutes' AS far, "
                              "updated_at FROM webhooks.deliveries WHERE endpoint_id = %s", (dead["id"],))
            return {row["id"]: row for row in tx.cursor.fetchall()}

    time.sleep(0.4)
    with db.transaction() as tx:  # every retry due now (the schedule skipped)
        tx.cursor.execute("UPDATE webhooks.deliveries SET next_retry_at = now() WHERE endpoint_id = %s", (dead["id"],))
    strict.sweep()
    strict.deliver_collected()
    first = rows()
    assert sum(r["attempts"] for r in first.values()) == 31  # one probe
    far = [i for i, r in first.items() if r["far"]]
    assert len(far) == 28 and all(first[i]["held"] for i in far)  # held for the hold, not the next probe
    # Later probes claim only what waits for them: the 28 held rows are not touched again.
    for _ in range(3):
        time.sleep(0.35)
        strict.sweep()
        strict.deliver_collected()
    later = rows()
    assert sum(r["attempts"] for r in later.values()) <= 31 + 3
    assert all(later[i]["updated_at"] == first[i]["updated_at"] for i in far)
    # Disabling the endpoint releases them at once: each is recorded as disabled without an attempt.
    changed = client.patch(f"/api/v1/webhook-endpoints/{dead['id']}", json={"status": "disabled"},
                           headers=headers_for(merchant))
    assert changed.status_code == 200, changed.json
    made = sum(r["attempts"] for r in rows().values())
    strict.sweep()
    strict.deliver_collected()
    final = rows()
    assert all(final[i]["status"] == "disabled" and not final[i]["held"] for i in far)
    assert sum(r["attempts"] for r in final.values()) == made


# --- the body format (Razorpay's or the gateway's) belongs to each endpoint ---------------------


def test_an_endpoint_in_razorpays_format_gets_razorpays_envelope_and_names(app, db, harness, merchant, receivers, url_of):
    import razorpay

    client = app.test_client()
    server = receivers("whsec_unused")
    endpoint = client.post("/api/v1/webhook-endpoints", json={"url": url_of(server), "format": "razorpay",
                                                              "enabled_events": ["payment.*"]},
                           headers=headers_for(merchant)).json
    assert endpoint["format"] == "razorpay"
    server.state.secret = endpoint["secret"]
    payment = {"id": "pay_Ab12Cd34Ef56Gh78", "order_id": "order_Ab12Cd34Ef56Gh78", "merchant_id": merchant,
               "amount": 50000, "currency": "INR", "method": "upi", "status": "success", "vpa": "success@upi",
               "captured": False, "captured_at": None, "amount_refunded": 0, "error_code": None,
               "error_description": None, "created_at": "2024-01-15T10:51:10Z", "updated_at": "2024-01-15T10:51:11Z"}
    created, success = (make_event(kind, merchant, {"payment": payment}) for kind in ("payment.created", "payment.success"))
    # An event Razorpay's translation cannot read is logged and left out of that format, not a stuck batch.
    broken = payment_event(merchant, "payment.captured")
    service.handle_events(db, harness.cfg, [created, broken, success], harness.collector)
    harness.deliver_collected()
    (request,) = server.state.requests  # payment.created has no Razorpay event: not sent in this format
    body = json.loads(request.body)
    assert (body["entity"], body["event"], body["contains"]) == ("event", "payment.authorized", ["payment"])
    assert body["payload"]["payment"]["entity"]["id"] == "pay_Ab12Cd34Ef56Gh78"
    # Razorpay's SDK and the Standard Webhooks library both verify it with the endpoint's secret.
    utility = razorpay.Client(auth=("key", "secret")).utility
    assert utility.verify_webhook_signature(request.body.decode(), request.headers["X-Razorpay-Signature"],
                                            endpoint["secret"])
    assert request.headers["X-Razorpay-Event-Id"] == success["id"]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert Webhook(endpoint["secret"]).verify(request.body, headers)["event"] == "payment.authorized"
    # The stored event keeps the gateway's form; the delivery log keeps the body as sent.
    stored = client.get(f"/api/v1/events/{success['id']}", headers=headers_for(merchant)).json
    assert stored["type"] == "payment.success" and stored["deliveries"][0]["endpoint_id"] == endpoint["id"]
    # An event the format has no name for cannot be resent there; the others can.
    refused = client.post(f"/api/v1/events/{created['id']}/resend", json={"endpoint_id": endpoint["id"]},
                          headers=headers_for(merchant))
    assert refused.status_code == 400 and "format" in refused.json["error"]["description"]
    nowhere = client.post(f"/api/v1/events/{created['id']}/resend", json={}, headers=headers_for(merchant))
    assert nowhere.status_code == 400 and nowhere.json["error"]["code"] == "BAD_REQUEST_ERROR"
    replayed = client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/replay", json={}, headers=headers_for(merchant))
    assert replayed.status_code == 202 and replayed.json == {"replayed": 1}
    harness.deliver_collected()
    assert [json.loads(r.body)["event"] for r in server.state.requests] == ["payment.authorized"] * 2
    # Back to the gateway's format with PATCH: later events come in it.
    patched = client.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", json={"format": "gateway"},
                           headers=headers_for(merchant))
    assert patched.status_code == 200 and patched.json["format"] == "gateway"
    later = make_event("payment.failed", merchant, {"payment": {**payment, "status": "failed"}})
    service.handle_events(db, harness.cfg, [later], harness.collector)
    harness.deliver_collected()
    assert json.loads(server.state.requests[-1].body) == {k: later[k] for k in ("id", "event", "timestamp", "data")}
    # A resend makes the body again in the endpoint's format now.
    again = client.post(f"/api/v1/events/{success['id']}/resend", json={"endpoint_id": endpoint["id"]},
                        headers=headers_for(merchant))
    assert again.status_code == 202
    harness.deliver_collected()
    assert json.loads(server.state.requests[-1].body) == {k: success[k] for k in ("id", "event", "timestamp", "data")}


def test_the_default_endpoints_format_is_the_one_webhooks_config_sets(app, merchant, receivers, url_of):
    client = app.test_client()
    url = url_of(receivers("whsec_unused"))
    config = client.put("/api/v1/webhooks/config", json={"webhook_url": url, "format": "razorpay"},
                        headers=headers_for(merchant)).json
    assert config["format"] == "razorpay"
    (default,) = client.get("/api/v1/webhook-endpoints", headers=headers_for(merchant)).json["data"]
    assert default["format"] == "razorpay" and default["url"] == url
    # A URL change without a format keeps it; PATCH through /webhook-endpoints is the same endpoint.
    assert client.put("/api/v1/webhooks/config", json={"webhook_url": url + "?v=2"},
                      headers=headers_for(merchant)).json["format"] == "razorpay"
    client.patch(f"/api/v1/webhook-endpoints/{default['id']}", json={"format": "gateway"}, headers=headers_for(merchant))
    assert client.get("/api/v1/webhooks/config", headers=headers_for(merchant)).json["format"] == "gateway"
    for bad in ("xml", 1, None):
        response = client.post("/api/v1/webhook-endpoints", json={"url": url, "format": bad}, headers=headers_for(merchant))
        assert response.status_code == 400 and response.json["error"]["code"] == "BAD_REQUEST_ERROR", bad
    assert len(client.get("/api/v1/webhook-endpoints", headers=headers_for(merchant)).json["data"]) == 1
