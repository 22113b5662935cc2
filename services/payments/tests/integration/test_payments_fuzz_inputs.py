"""Inputs fuzzers like: NUL characters, non-finite numbers, odd ids, deep nesting: 4xx, never 5xx."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/orders", {"amount": 100, "receipt": "a\x00b"}),
        ("/api/v1/orders", {"amount": 100, "notes": {"k\x00": "v"}}),
        ("/api/v1/orders", {"amount": 100, "notes": {"k": "v\x00"}}),
        ("/api/v1/payments", {"amount": 100, "method": "upi", "vpa": "a\x00@b"}),
        ("/api/v1/payments", {"amount": 100, "method": "upi", "vpa": "a@b", "order_id": "ref\x00"}),
        ("/api/v1/payments", {"amount": 100, "method": "card", "card": {"number": "4111\x001111", "cvv": "123"}}),
        ("/api/v1/payments/public", {"order_id": "order_x", "method": "upi", "vpa": "a@b", "key": "k\x00"}),
    ],
)
def test_nul_characters_are_rejected(client, headers, path, body):
    response = client.post(path, json=body, headers=headers)
    assert 400 <= response.status_code < 500, response.get_json()
    assert "error" in response.get_json()


def test_non_finite_numbers_in_notes_are_rejected(client, headers):
    response = client.post(
        "/api/v1/orders",
        data='{"amount": 100, "notes": {"k": NaN}}',
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/%00",
        "/api/v1/orders/order_%00%00",
        "/api/v1/orders/" + "x" * 5000,
        "/api/v1/orders/%00/public",
        "/api/v1/payments/%00",
        "/api/v1/payments/%00/public",
        "/api/v1/payments?q=%00",
        "/api/v1/payments?limit=99999999999999999999",
        "/api/v1/payments/stats?days=1e9",
    ],
)
def test_odd_paths_and_queries_are_4xx(client, headers, path):
    response = client.get(path, headers=headers)
    assert 400 <= response.status_code < 500, (path, response.get_json())


def test_capture_of_odd_ids_is_404(client, headers):
    assert client.post("/api/v1/payments/%00/capture", headers=headers).status_code == 404


DEEP_ARRAY = "[" * 20_000 + "]" * 20_000  # under 64 KiB: the fast path reads it itself
HOSTILE_BODIES = {
    "deep array": DEEP_ARRAY,
    "deep object": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "deep array as a field": '{"amount": 1000, "method": "upi", "vpa": "success@upi", "currency": ' + DEEP_ARRAY + "}",
    "5000-digit amount": '{"amount": ' + "9" * 5000 + ', "method": "upi", "vpa": "success@upi"}',
    "lone surrogate as the order reference": '{"amount": 1000, "method": "upi", "vpa": "success@upi", "order_id": "\\ud800"}',
    "lone surrogate in the vpa": '{"amount": 1000, "method": "upi", "vpa": "a\\udc00@upi"}',
    "lone surrogate as a key": '{"amount": 1000, "method": "upi", "vpa": "success@upi", "\\ud800": 1}',
    "lone surrogate top-level": '"\\ud800"',
    "huge exponent": '{"amount": 1e999, "method": "upi", "vpa": "success@upi"}',
}
ORDER_BODIES = {
    "lone surrogate as receipt": '{"amount": 1000, "receipt": "\\ud800"}',
    "lone surrogate as a notes key": '{"amount": 1000, "notes": {"\\udc00": "v"}}',
    "lone surrogate as a notes value": '{"amount": 1000, "notes": {"k": "\\udbff"}}',
    "5000-digit notes value": '{"amount": 1000, "notes": {"k": ' + "1" * 5000 + "}}",
    "deep notes value": '{"amount": 1000, "notes": {"k": ' + DEEP_ARRAY + "}}",
}


def _counts(db) -> tuple[int, int, int]:
    with db.transaction() as tx:
        tx.cursor.execute(
            "SELECT (SELECT count(*) FROM payments.orders) AS o, (SELECT count(*) FROM payments.payments) AS p, "
            "(SELECT count(*) FROM payments.idempotency_keys) AS k"
        )
        row = tx.cursor.fetchone()
    return row["o"], row["p"], row["k"]


@pytest.mark.parametrize(("path", "raw"), [
    *(("/api/v1/payments", raw) for raw in HOSTILE_BODIES.values()),
    *(("/api/v1/orders", raw) for raw in (*ORDER_BODIES.values(), *HOSTILE_BODIES.values())),
    *(("/api/v1/payments/public", raw) for raw in HOSTILE_BODIES.values()),
], ids=[f"payments-{n}" for n in HOSTILE_BODIES] + [f"orders-{n}" for n in (*ORDER_BODIES, *HOSTILE_BODIES)]
    + [f"public-{n}" for n in HOSTILE_BODIES])
@pytest.mark.parametrize("idempotency_key", [None, "hostile-key"])
def test_hostile_bodies_are_a_400_envelope_and_store_nothing(client, db, headers, path, raw, idempotency_key):
    """Before: 500 (and an HTML 500 from the POST /payments fast path for deep nesting)."""
    before = _counts(db)
    extra = {"Idempotency-Key": f"{idempotency_key}-{len(raw)}-{hash(raw)}"} if idempotency_key else {}
    if path.endswith("/public"):
        extra["X-Api-Key"] = "key_test_abc123"
    response = client.post(path, data=raw, content_type="application/json", headers={**headers, **extra})
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.content_type == "application/json"
    assert response.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"
    assert _counts(db) == before


@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/v1/payments", "limit"), ("/api/v1/payments", "offset"), ("/api/v1/orders", "limit"),
     ("/api/v1/orders", "offset"), ("/api/v1/payments/stats", "days")],
)
@pytest.mark.parametrize("digits", ["9" * 5000, "-" + "9" * 5000])
def test_5000_digit_query_numbers_are_a_400(client, headers, path, name, digits):
    response = client.get(f"{path}?{name}={digits}", headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"
