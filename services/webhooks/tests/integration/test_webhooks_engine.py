"""The worker's delivery engine: a merchant's deliveries run side by side, capped per host, on kept-alive connections."""

from __future__ import annotations

import dataclasses
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gateway_common.events import make_event
from webhooks import sender, service
from webhooks.engine import DeliveryEngine

PER_HOST = 3


class _Gate(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server.state
        with state["lock"]:
            state["active"] += 1
            state["max_active"] = max(state["max_active"], state["active"])
            state["ids"].append(self.headers["X-Webhook-Id"])
            state["connections"].add(self.client_address)
        try:
            # Answers only once PER_HOST requests are in at the same time: serialised attempts would stall here.
            state["gate"].wait(timeout=10)
        except threading.BrokenBarrierError:
            state["broken"] = True
        with state["lock"]:
            state["active"] -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gate_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gate)
    server.daemon_threads = True
    server.state = {
        "lock": threading.Lock(), "active": 0, "max_active": 0, "ids": [], "connections": set(),
        "gate": threading.Barrier(PER_HOST), "broken": False,
    }
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.state["gate"].abort()
    server.shutdown()
    server.server_close()


def test_one_merchants_deliveries_run_side_by_side_up_to_the_per_host_cap(db, harness, merchant, gate_server, wait_for):
    service.update_config(db, harness.cfg, merchant, f"http://127.0.0.1:{gate_server.server_address[1]}/hook")
    cfg = dataclasses.replace(harness.cfg, per_host=PER_HOST)
    engine = DeliveryEngine(db, cfg, sender.make_session(allow_private=True, pool_size=8), senders=16, per_host=PER_HOST)
    events = [make_event("payment.success", merchant, {"payment": {"id": f"pay_Eg{i:02d}Cd34Ef56Gh78"}}) for i in range(4 * PER_HOST)]

    created = service.handle_events(db, cfg, events, engine.submit)
    assert len(created) == len(events)
    wait_for(lambda: engine.in_flight() == 0, timeout=30)

    state = gate_server.state
    assert not state["broken"]
    assert state["max_active"] == PER_HOST
    assert sorted(state["ids"]) == sorted(e["id"] for e in events)  # each exactly once
    assert len(state["connections"]) <= PER_HOST  # connections were kept alive and reused
    with db.transaction() as tx:
        tx.cursor.execute(
            "SELECT status, attempts, lease_token FROM webhooks.deliveries WHERE id = ANY(%s)", (created,)
        )
        rows = tx.cursor.fetchall()
    assert {(r["status"], r["attempts"], r["lease_token"]) for r in rows} == {("success", 1, None)}


def test_stale_claims_are_not_attempted(db, harness, merchant, gate_server, wait_for):
    service.update_config(db, harness.cfg, merchant, f"http://127.0.0.1:{gate_server.server_address[1]}/hook")
    event = make_event("payment.failed", merchant, {"payment": {"id": "pay_St12Cd34Ef56Gh78"}})
    (delivery_id,) = service.handle_events(db, harness.cfg, [event], harness.collector)
    (claim,) = harness.collector.take()
    engine = DeliveryEngine(db, harness.cfg, sender.make_session(allow_private=True), senders=2, per_host=PER_HOST)
    engine.submit([dataclasses.replace(claim, lease_token="not-the-lease")])
    wait_for(lambda: engine.in_flight() == 0, timeout=10)
    assert gate_server.state["ids"] == []
    with db.transaction() as tx:
        tx.cursor.execute("SELECT status, attempts FROM webhooks.deliveries WHERE id = %s", (delivery_id,))
        assert tx.cursor.fetchone() == {"status": "pending", "attempts": 0}
