"""Retention of webhook deliveries: old ones are pruned in bounded batches, and a dead endpoint's rows are bounded."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from gateway_common.events import make_event
from webhooks import repository, service


def headers_for(merchant_id: str) -> dict[str, str]:
    return {"X-Gateway-Secret": "test-gateway-secret", "X-Merchant-Id": merchant_id}


def payment_event(merchant: str, n: int) -> dict:
    return make_event("payment.created", merchant, {"payment": {"id": f"pay_{n:016d}", "amount": 50000}})


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"


def add_endpoint(client, merchant: str, url: str) -> dict:
    response = client.post("/api/v1/webhook-endpoints", json={"url": url}, headers=headers_for(merchant))
    assert response.status_code == 201, response.json
    return response.json


def rows_of(db, endpoint_id: str) -> list[dict]:
    with db.transaction() as tx:
        tx.cursor.execute("SELECT id, event_id, status, attempts FROM webhooks.deliveries WHERE endpoint_id = %s "
                          "ORDER BY seq", (endpoint_id,))
        return tx.cursor.fetchall()


# Leave nothing of the test's merchant due: later tests sweep every due delivery of the database.
pytestmark = pytest.mark.usefixtures("nothing_left_due")


def test_deliveries_past_30_days_are_pruned_by_the_worker_in_bounded_batches(app, db, harness, merchant):
    from webhooks import worker

    client = app.test_client()
    endpoint = add_endpoint(client, merchant, closed_port_url())
    events = [payment_event(merchant, n) for n in range(9)]
    service.handle_events(db, harness.cfg, events, harness.collector)
    harness.collector.take()  # never attempted: the test sets each row's state itself
    ids = {row["event_id"]: row["id"] for row in rows_of(db, endpoint["id"])}
    by_event = [ids[e["id"]] for e in events]
    # Old and finished (success, failed, disabled): pruned. Old but still pending: kept (it has attempts
    # left). Finished within 30 days: kept.
    states = [("success", 31), ("success", 31), ("failed", 40), ("disabled", 90), ("success", 31), ("failed", 31),
              ("pending", 31), ("success", 29), ("failed", 0)]
    with db.transaction() as tx:
        for delivery_id, (status, days) in zip(by_event, states, strict=True):
            tx.cursor.execute(
                "UPDATE webhooks.deliveries SET status = %s, next_retry_at = CASE WHEN %s = 'pending' THEN now() + "
                "interval '1 hour' END, created_at = now() - %s * interval '1 day' WHERE id = %s",
                (status, status, days, delivery_id),
            )
    # One batch deletes at most its bound, oldest first.
    with db.transaction() as tx:
        assert repository.prune_deliveries(tx, 30, 2) == 2
    assert {row["id"] for row in rows_of(db, endpoint["id"])} == set(by_event) - {by_event[3], by_event[2]}

    # The worker's pruner loop does the rest: a pass that deleted anything is followed by the next.
    (pruner,) = [loop for loop in worker.make_loops() if loop.name == "webhooks-pruner"]
    passes = 0
    while pruner.step():
        passes += 1
        assert passes < 100
    assert {row["id"] for row in rows_of(db, endpoint["id"])} == {by_event[6], by_event[7], by_event[8]}
    # The log the merchant reads says the same.
    listed = client.get("/api/v1/webhooks?limit=100", headers=headers_for(merchant)).json
    assert {d["id"] for d in listed["data"]} == {by_event[6], by_event[7], by_event[8]}


def test_a_dead_endpoint_keeps_one_row_per_event_and_only_its_newest_disabled_ones(app, db, harness_for, merchant,
                                                                                   receivers, url_of):
    # Retries are not rows: a delivery is one row per (event, endpoint), its attempts a counter. A dead
    # endpoint's rows grew with its merchant's traffic, because nothing ever removed them: failed ones
    # and, once it was disabled, a ``disabled`` row for every later event. Now they age out after 30
    # days, and a disabled endpoint keeps only its newest ``disabled_deliveries_kept``.
    cfg = dataclasses.replace(app.extensions["webhook_config"], disabled_deliveries_kept=5, circuit_threshold=100)
    strict = harness_for(cfg)
    client = app.test_client()
    dead = add_endpoint(client, merchant, closed_port_url())
    failing = [payment_event(merchant, n) for n in range(4)]
    service.handle_events(db, cfg, failing, strict.collector)
    for _ in range(3):  # three attempts of each, all refused
        assert strict.deliver_collected() == ["pending"] * 4
        with db.transaction() as tx:
            tx.cursor.execute("UPDATE webhooks.deliveries SET next_retry_at = now() WHERE endpoint_id = %s", (dead["id"],))
        strict.sweep()
    strict.collector.take()
    rows = rows_of(db, dead["id"])
    assert [(row["status"], row["attempts"]) for row in rows] == [("pending", 3)] * 4  # 12 attempts, 4 rows

    disabled = client.patch(f"/api/v1/webhook-endpoints/{dead['id']}", json={"status": "disabled"},
                            headers=headers_for(merchant))
    assert disabled.status_code == 200
    later = [payment_event(merchant, n) for n in range(4, 16)]
    assert service.handle_events(db, cfg, later, strict.collector) == []  # nothing to attempt
    assert len(rows_of(db, dead["id"])) == 16  # each recorded as disabled, without an attempt

    # The pruner keeps the newest 5 disabled deliveries, a bounded batch at a time.
    while (pruned := service.prune_deliveries(db, cfg, batch=3)) > 0:
        assert pruned <= 3 + 3  # one batch of expired deliveries (none here) and one of disabled ones
    rows = rows_of(db, dead["id"])
    assert [row["event_id"] for row in rows if row["status"] == "disabled"] == [e["id"] for e in later[-5:]]
    assert [row["status"] for row in rows if row["status"] != "disabled"] == ["pending"] * 4
    # More events add disabled rows, and the next pass takes them back to 5.
    service.handle_events(db, cfg, [payment_event(merchant, n) for n in range(16, 26)], strict.collector)
    while service.prune_deliveries(db, cfg, batch=3):
        pass
    assert sum(row["status"] == "disabled" for row in rows_of(db, dead["id"])) == 5

    # Every event is still stored, so once the endpoint answers and is enabled, a replay of the time
    # window delivers all of them, the pruned ones included.
    server = receivers("whsec_unused")
    enabled = client.patch(f"/api/v1/webhook-endpoints/{dead['id']}", json={"status": "enabled", "url": url_of(server)},
                           headers=headers_for(merchant))
    assert enabled.status_code == 200, enabled.json
    replayed = client.post(f"/api/v1/webhook-endpoints/{dead['id']}/replay", json={}, headers=headers_for(merchant))
    assert replayed.status_code == 202 and replayed.json["replayed"] == 26
    assert len(rows_of(db, dead["id"])) == 26


def test_an_enabled_endpoints_deliveries_are_not_capped(app, db, harness_for, merchant):
    cfg = dataclasses.replace(app.extensions["webhook_config"], disabled_deliveries_kept=2)
    strict = harness_for(cfg)
    endpoint = add_endpoint(app.test_client(), merchant, closed_port_url())
    service.handle_events(db, cfg, [payment_event(merchant, n) for n in range(6)], strict.collector)
    strict.collector.take()
    with db.transaction() as tx:  # finished, but recent
        tx.cursor.execute("UPDATE webhooks.deliveries SET status = 'failed', next_retry_at = NULL WHERE endpoint_id = %s",
                          (endpoint["id"],))
    while service.prune_deliveries(db, cfg, batch=10):
        pass
    assert len(rows_of(db, endpoint["id"])) == 6
