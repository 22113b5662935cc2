"""X-Test-Outcome and X-Test-Delay-Ms on POST /payments (fast path and Flask) and /payments/public."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest
from payments.fastpath import FastPath
from werkzeug.test import Client

CARD = {"number": "4111111111111111", "expiry_month": "12", "expiry_year": "2030", "cvv": "123"}


@pytest.fixture
def flask_only(app):
    """A client that skips the fast path (Flask's own wsgi_app)."""
    assert isinstance(app.wsgi_app, FastPath)
    return Client(app.wsgi_app.flask_wsgi)


@pytest.fixture(scope="module")
def live_client(service_env) -> Iterator:
    """A client of the payments app with TEST_MODE off (controls must be refused)."""
    from gateway_common.config import Settings
    from gateway_common.db import PoolSettings
    from payments import create_app

    live = dataclasses.replace(Settings.from_env("payments"), test_mode=False, db_pool=PoolSettings(max_size=2))
    app = create_app(live)
    try:
        yield app.test_client()
    finally:
        app.extensions["db"].close()


def count(admin_conn) -> int:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments")
        return cur.fetchone()[0]


def stored(admin_conn, payment_id: str) -> tuple:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT bank_outcome, bank_error_code, bank_delay_ms FROM payments.payments WHERE id = %s", (payment_id,)
        )
        return cur.fetchone()


def final(client, headers, payment_id: str) -> dict:
    return client.get(f"/api/v1/payments/{payment_id}", headers=headers).get_json()


@pytest.mark.parametrize("route", ["fast path", "flask", "idempotent", "public"])
@pytest.mark.parametrize(
    ("vpa", "outcome", "status", "code"),
    [
        ("failure@upi", "success", "success", None),
        ("success@upi", "failed", "failed", "PAYMENT_FAILED"),
        ("success@upi", "failed:INSUFFICIENT_FUNDS", "failed", "INSUFFICIENT_FUNDS"),
        ("user@okbank", "failed:DO_NOT_HONOUR", "failed", "DO_NOT_HONOUR"),
    ],
)
def test_the_outcome_header_decides_whatever_the_instrument(
    client, flask_only, headers, drive_bank, route, vpa, outcome, status, code
):
    order = client.post("/api/v1/orders", json={"amount": 1500}, headers=headers).get_json()
    body = {"order_id": order["id"], "method": "upi", "vpa": vpa}
    sent = {"X-Test-Outcome": outcome}
    if route == "public":
        response = client.post("/api/v1/payments/public", json=body, headers=sent)
    elif route == "flask":
        response = flask_only.post("/api/v1/payments", json=body, headers={**headers, **sent})
    elif route == "idempotent":
        sent["Idempotency-Key"] = f"controls-{uuid.uuid4()}"
        response = client.post("/api/v1/payments", json=body, headers={**headers, **sent})
    else:
        response = client.post("/api/v1/payments", json=body, headers={**headers, **sent})
    assert response.status_code == 201, response.get_json()
    payment_id = response.get_json()["id"]
    assert drive_bank([payment_id]) == {payment_id: status}
    payment = final(client, headers, payment_id)
    assert payment["error_code"] == code
    if code == "INSUFFICIENT_FUNDS":
        assert payment["error_description"] == "Insufficient funds in the account"
    elif code is not None:
        assert payment["error_description"]


def test_a_card_is_decided_by_the_header_too(client, headers, drive_bank):
    declined = {**CARD, "number": "4000000000000002"}
    response = client.post(
        "/api/v1/payments",
        json={"amount": 900, "method": "card", "card": declined},
        headers={**headers, "X-Test-Outcome": "success"},
    )
    assert response.status_code == 201
    assert drive_bank([response.get_json()["id"]]) == {response.get_json()["id"]: "success"}


def test_the_delay_header_sets_this_payments_bank_delay(client, headers, admin_conn, db):
    from payments import bank_schedule
    from payments.bank import BankConfig

    slow = client.post(
        "/api/v1/payments",
        json={"amount": 1000, "method": "upi", "vpa": "success@upi"},
        headers={**headers, "X-Test-Delay-Ms": "600000"},
    ).get_json()
    quick = client.post(
        "/api/v1/payments/public",
        json={"order_id": client.post("/api/v1/orders", json={"amount": 1000}, headers=headers).get_json()["id"],
              "method": "upi", "vpa": "success@upi"},
        headers={"X-Test-Delay-Ms": "0"},
    ).get_json()
    assert stored(admin_conn, slow["id"])[2] == 600000 and stored(admin_conn, quick["id"])[2] == 0
    dispatched: list[tuple[list[str], float]] = []
    config = BankConfig(test_mode=True, test_delay_ms=1000, test_success=True)
    while bank_schedule.sweep_due(db, config, lambda ids, countdown: dispatched.append((ids, countdown))):
        pass
    countdowns = {pid: countdown for ids, countdown in dispatched for pid in ids}
    assert countdowns[slow["id"]] == 600.0
    assert countdowns[quick["id"]] == 0.0
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT id, extract(epoch FROM bank_due_at - updated_at) FROM payments.payments WHERE id = ANY(%s)",
            ([slow["id"], quick["id"]],),
        )
        due_in = dict(cur.fetchall())
    assert round(due_in[slow["id"]]) == 600 and round(due_in[quick["id"]]) == 0
    # Due in ten minutes: the bank does not answer it now.
    assert bank_schedule.process_payments(db, config, [slow["id"]]) == 0
    assert final(client, headers, slow["id"])["status"] == "processing"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Test-Outcome", "maybe"),
        ("X-Test-Outcome", ""),
        ("X-Test-Outcome", "failed:"),
        ("X-Test-Outcome", "failed:lower_case"),
        ("X-Test-Outcome", "failed:AB"),
        ("X-Test-Outcome", "failed:" + "A" * 41),
        ("X-Test-Outcome", "success:CARD_DECLINED"),
        ("X-Test-Outcome", "failed:CARD-DECLINED"),
        ("X-Test-Delay-Ms", "-1"),
        ("X-Test-Delay-Ms", "86400001"),
        ("X-Test-Delay-Ms", "1.5"),
        ("X-Test-Delay-Ms", "1e3"),
        ("X-Test-Delay-Ms", ""),
        ("X-Test-Delay-Ms", "soon"),
    ],
)
@pytest.mark.parametrize("route", ["fast path", "flask", "public"])
def test_invalid_values_are_a_400_and_create_nothing(client, flask_only, headers, admin_conn, header, value, route):
    order = client.post("/api/v1/orders", json={"amount": 1000}, headers=headers).get_json()
    body = {"order_id": order["id"], "method": "upi", "vpa": "success@upi"}
    before = count(admin_conn)
    if route == "public":
        response = client.post("/api/v1/payments/public", json=body, headers={header: value})
    else:
        sender = client if route == "fast path" else flask_only
        response = sender.post("/api/v1/payments", json=body, headers={**headers, header: value})
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "BAD_REQUEST_ERROR" and header in error["description"]
    assert count(admin_conn) == before


def test_fast_path_refuses_like_flask(client, flask_only, headers):
    body = {"amount": 1000, "method": "upi", "vpa": "success@upi"}
    sent = {**headers, "X-Request-Id": "controls-1", "X-Test-Delay-Ms": "-5"}
    fast = client.post("/api/v1/payments", json=body, headers=sent)
    slow = flask_only.post("/api/v1/payments", json=body, headers=sent)
    assert fast.status_code == slow.status_code == 400
    assert fast.get_data() == slow.get_data()


@pytest.mark.parametrize(
    ("path", "extra"),
    [("/api/v1/payments", {"X-Test-Outcome": "success"}), ("/api/v1/payments", {"X-Test-Delay-Ms": "0"}),
     ("/api/v1/payments/public", {"X-Test-Outcome": "failed"}), ("/api/v1/payments/public", {"X-Test-Delay-Ms": "5"})],
)
def test_outside_test_mode_the_controls_are_refused(live_client, client, headers, admin_conn, path, extra):
    order = client.post("/api/v1/orders", json={"amount": 1000}, headers=headers).get_json()
    body = {"order_id": order["id"], "method": "upi", "vpa": "success@upi"}
    before = count(admin_conn)
    response = live_client.post(path, json=body, headers={**headers, **extra})
    assert response.status_code == 400
    assert response.get_json() == {"error": {"code": "BAD_REQUEST_ERROR", "description": "Test controls are off"}}
    assert count(admin_conn) == before
    # Without the headers the same request is a payment.
    assert live_client.post(path, json=body, headers=headers).status_code == 201
