"""The WSGI fast path answers GET /payments/{id} and plain POST /payments with Flask's exact bytes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from payments.fastpath import FastPath
from werkzeug.test import Client

REQUEST_ID = {"X-Request-Id": "fastpath-test-1"}


@pytest.fixture
def flask_only(app):
    """A client that skips the fast path (Flask's own wsgi_app)."""
    assert isinstance(app.wsgi_app, FastPath)
    return Client(app.wsgi_app.flask_wsgi)


def _same(fast, slow):
    assert fast.status == slow.status
    assert fast.get_data() == slow.get_data()
    assert list(fast.headers.items()) == list(slow.headers.items())


def _post(client, headers, body, **extra):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(
        "/api/v1/payments",
        data=raw,
        headers={**headers, **REQUEST_ID, "Content-Type": "application/json", **extra},
    )


def test_get_matches_flask_byte_for_byte(client, flask_only, headers, other_headers, drive_bank):
    created = client.post(
        "/api/v1/payments",
        json={"amount": 1000, "method": "upi", "vpa": "success@upi", "order_id": "ref_1"},
        headers=headers,
    ).get_json()
    drive_bank([created["id"]])
    card = client.post(
        "/api/v1/payments",
        json={
            "amount": 1000,
            "method": "card",
            "card": {"number": "4111111111111111", "expiry_month": 12, "expiry_year": 2030, "cvv": "123"},
        },
        headers=headers,
    ).get_json()
    for path, hdrs in (
        (f"/api/v1/payments/{created['id']}", headers),
        (f"/api/v1/payments/{card['id']}", headers),
        (f"/api/v1/payments/{created['id']}", other_headers),  # another merchant's: 404
        ("/api/v1/payments/pay_0000000000000000", headers),
        (f"/api/v1/payments/{created['id']}", {**headers, "X-Gateway-Secret": "wrong"}),
        (f"/api/v1/payments/{created['id']}", {**headers, "X-Merchant-Id": "not-a-uuid"}),
    ):
        _same(client.get(path, headers={**hdrs, **REQUEST_ID}), flask_only.get(path, headers={**hdrs, **REQUEST_ID}))
    generated = client.get(f"/api/v1/payments/{created['id']}", headers=headers)
    assert len(generated.headers["X-Request-Id"]) == 32


def test_post_answers_like_flask(client, flask_only, headers):
    body = {"amount": 50000, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": "bench_ref"}
    fast, slow = _post(client, headers, body), _post(flask_only, headers, body)
    assert fast.status == slow.status == "201 CREATED"
    assert [k for k, _ in fast.headers.items()] == [k for k, _ in slow.headers.items()]
    fast_body, slow_body = fast.get_json(), slow.get_json()
    assert list(fast_body) == list(slow_body)
    for volatile in ("id", "created_at", "updated_at"):
        fast_body.pop(volatile), slow_body.pop(volatile)
    assert fast_body == slow_body
    assert fast.get_data().endswith(b"}\n") and b", " not in fast.get_data()


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 50000, "method": "upi", "vpa": "not a vpa"},
        {"amount": 50000.0, "method": "upi", "vpa": "a@upi"},
        {"amount": True, "method": "upi", "vpa": "a@upi"},
        {"amount": 99, "method": "upi", "vpa": "a@upi"},
        {"amount": 500, "method": "upi", "vpa": "a@upi", "extra": 1},
        {"amount": 500, "method": "upi", "vpa": "a@upi", "currency": "XXX"},
        {"amount": 500, "method": "upi", "vpa": "a@upi", "order_id": ""},
        {"amount": 500, "method": "upi", "vpa": "a\x00@upi"},
        {"method": "upi", "vpa": "a@upi"},
        {"method": "upi", "vpa": "a@upi", "order_id": "order_0000000000000000"},
        {"method": "upi", "vpa": "a@upi", "order_id": "merchant-ref"},
        {"amount": 500, "method": "upi"},
        [1, 2],
        b"{not json",
    ],
)
def test_refused_posts_match_flask_and_create_nothing(client, flask_only, headers, admin_conn, body):
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments")
        before = cur.fetchone()[0]
    fast, slow = _post(client, headers, body), _post(flask_only, headers, body)
    assert fast.status_code >= 400
    _same(fast, slow)
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments")
        assert cur.fetchone()[0] == before


def test_post_for_an_order_and_with_idempotency_key(client, headers):
    order = client.post("/api/v1/orders", json={"amount": 700}, headers=headers).get_json()
    paid = _post(client, headers, {"method": "upi", "vpa": "a@upi", "order_id": order["id"]})
    assert paid.status_code == 201 and paid.get_json()["amount"] == 700
    keyed = {"amount": 500, "method": "upi", "vpa": "a@upi"}
    first = _post(client, headers, keyed, **{"Idempotency-Key": "fastpath-key-1"})
    again = _post(client, headers, keyed, **{"Idempotency-Key": "fastpath-key-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_data() == first.get_data()


def test_the_lookup_keeps_answering_when_its_connection_plans_again(app, client, headers, monkeypatch):
    created = client.post(
        "/api/v1/payments", json={"amount": 1000, "method": "upi", "vpa": "success@upi"}, headers=headers
    ).get_json()
    path = f"/api/v1/payments/{created['id']}"
    first = client.get(path, headers=headers)
    # Connections (and the statements they prepared) now last no time: each lookup plans afresh.
    db = app.extensions["db"]
    db.close()
    monkeypatch.setattr(db, "settings", replace(db.settings, max_lifetime=0.01))
    again = [client.get(path, headers=headers) for _ in range(8)]
    assert first.status_code == 200
    assert [r.status_code for r in again] == [200] * 8
    assert {r.get_json()["id"] for r in [first, *again]} == {created["id"]}
    assert client.get("/api/v1/payments/pay_0000000000000000", headers=headers).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 50000, "method": "upi", "vpa": "success@upi"},
        {"amount": 50000, "currency": "INR", "method": "card", "card": {
            "number": "4111 1111 1111 1111", "expiry_month": 12, "expiry_year": 2030, "cvv": "123", "holder_name": "A B",
        }},
    ],
)
def test_every_body_the_views_schema_accepts_is_answered_by_the_fast_path(app, client, headers, body):
    # One definition of a valid request: what CreatePaymentRequest loads, the fast path answers itself.
    def flask_must_not_answer(environ, start_response):
        raise AssertionError(f"Flask answered {environ['REQUEST_METHOD']} {environ['PATH_INFO']}")

    fast = FastPath(app)
    fast.flask_wsgi = flask_must_not_answer
    created = _post(Client(fast), headers, body)
    assert created.status_code == 201
    assert created.get_json()["method"] == body["method"]
