"""The refunds API against a real PostgreSQL: contract, rules, errors, idempotency."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import psycopg
import pytest
from flask.testing import FlaskClient
from gateway_common.db import PoolSettings
from refunds import create_app

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
REFUND_FIELDS = {"id", "payment_id", "merchant_id", "amount", "reason", "status", "created_at", "processed_at"}


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    return body["error"]["description"]


def test_create_refund_answers_pending_refund(
    client: FlaskClient, headers: dict, merchant: str, make_payment: Callable[..., str], admin
) -> None:
    payment_id = make_payment()
    response = client.post(
        f"/api/v1/payments/{payment_id}/refunds", json={"amount": 500, "reason": "Customer request"}, headers=headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    refund = response.get_json()
    assert set(refund) == REFUND_FIELDS
    assert re.fullmatch(r"rfnd_[A-Za-z0-9]{16}", refund["id"])
    assert refund["payment_id"] == payment_id
    assert refund["merchant_id"] == merchant
    assert refund["amount"] == 500
    assert refund["reason"] == "Customer request"
    assert refund["status"] == "pending"
    assert ISO.match(refund["created_at"])
    assert refund["processed_at"] is None

    got = client.get(f"/api/v1/refunds/{refund['id']}", headers=headers)
    assert got.status_code == 200
    assert got.get_json() == refund

    with admin.cursor() as cur:
        cur.execute(
            "SELECT payload FROM refunds.outbox WHERE event_type = 'refund.created' "
            "AND payload->'data'->'refund'->>'id' = %s",
            (refund["id"],),
        )
        rows = cur.fetchall()
    assert len(rows) == 1
    event = rows[0]["payload"]
    assert event["merchant_id"] == merchant
    assert event["data"] == {"refund": refund}


def test_reason_is_optional(client: FlaskClient, headers: dict, make_payment: Callable[..., str]) -> None:
    response = client.post(f"/api/v1/payments/{make_payment()}/refunds", json={"amount": 100}, headers=headers)
    assert response.status_code == 201
    assert response.get_json()["reason"] is None


def test_partial_refunds_up_to_the_payment_amount(
    client: FlaskClient, headers: dict, make_payment: Callable[..., str], admin
) -> None:
    payment_id = make_payment(10_000)
    url = f"/api/v1/payments/{payment_id}/refunds"
    assert client.post(url, json={"amount": 4_000}, headers=headers).status_code == 201
    assert client.post(url, json={"amount": 5_000}, headers=headers).status_code == 201
    description = _error(client.post(url, json={"amount": 1_001}, headers=headers), 400, "BAD_REQUEST_ERROR")
    assert description == "Refund amount exceeds available amount"
    assert client.post(url, json={"amount": 1_000}, headers=headers).status_code == 201
    _error(client.post(url, json={"amount": 1}, headers=headers), 400, "BAD_REQUEST_ERROR")
    with admin.cursor() as cur:
        cur.execute("SELECT coalesce(sum(amount), 0) AS s FROM refunds.refunds WHERE payment_id = %s", (payment_id,))
        assert cur.fetchone()["s"] == 10_000


def test_single_refund_larger_than_payment_is_refused(
    client: FlaskClient, headers: dict, make_payment: Callable[..., str]
) -> None:
    url = f"/api/v1/payments/{make_payment(10_000)}/refunds"
    response = client.post(url, json={"amount": 10_001}, headers=headers)
    assert _error(response, 400, "BAD_REQUEST_ERROR") == "Refund amount exceeds available amount"
    assert client.post(url, json={"amount": 10_000}, headers=headers).status_code == 201


@pytest.mark.parametrize("status", ["pending", "processing", "failed"])
def test_only_successful_payments_can_be_refunded(
    client: FlaskClient, headers: dict, make_payment: Callable[..., str], status: str
) -> None:
    response = client.post(
        f"/api/v1/payments/{make_payment(status=status)}/refunds", json={"amount": 100}, headers=headers
    )
    description = _error(response, 400, "BAD_REQUEST_ERROR")
    assert "refundable state" in description
    assert status in description


def test_unknown_or_foreign_payment_is_not_found(
    client: FlaskClient, headers: dict, other_headers: dict, make_payment: Callable[..., str]
) -> None:
    payment_id = make_payment()
    for url, hdrs in [
        (f"/api/v1/payments/{payment_id}/refunds", other_headers),
        ("/api/v1/payments/pay_0000000000000000/refunds", headers),
        ("/api/v1/payments/not-a-payment/refunds", headers),
    ]:
        _error(client.post(url, json={"amount": 100}, headers=hdrs), 404, "NOT_FOUND_ERROR")
        _error(client.get(url, headers=hdrs), 404, "NOT_FOUND_ERROR")


def test_unknown_or_foreign_refund_is_not_found(
    client: FlaskClient, headers: dict, other_headers: dict, make_payment: Callable[..., str]
) -> None:
    refund = client.post(f"/api/v1/payments/{make_payment()}/refunds", json={"amount": 100}, headers=headers).get_json()
    _error(client.get(f"/api/v1/refunds/{refund['id']}", headers=other_headers), 404, "NOT_FOUND_ERROR")
    _error(client.get("/api/v1/refunds/rfnd_0000000000000000", headers=headers), 404, "NOT_FOUND_ERROR")
    _error(client.get("/api/v1/refunds/%00", headers=headers), 404, "NOT_FOUND_ERROR")


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "500"},
        {"amount": 5.5},
        {"amount": True},
        {"amount": 0},
        {"amount": -500},
        {"amount": None},
        {"amount": 2**70},
        {},
        {"reason": "no amount"},
        {"amount": 500, "currency": "INR"},
        {"amount": 500, "reason": "x" * 256},
        {"amount": 500, "reason": "nul\u0000"},
        {"amount": 500, "reason": 7},
        [500],
        "500",
        None,
    ],
)
def test_bad_bodies_are_400(client: FlaskClient, headers: dict, make_payment: Callable[..., str], body) -> None:
    response = client.post(f"/api/v1/payments/{make_payment()}/refunds", json=body, headers=headers)
    _error(response, 400, "BAD_REQUEST_ERROR")


@pytest.mark.parametrize("raw", [b"{", b'{"amount": 500,}', b"\xff\xfe", b"amount=500", b""])
def test_malformed_json_is_400(
    client: FlaskClient, headers: dict, make_payment: Callable[..., str], raw: bytes
) -> None:
    response = client.post(
        f"/api/v1/payments/{make_payment()}/refunds", data=raw, headers=headers, content_type="application/json"
    )
    _error(response, 400, "BAD_REQUEST_ERROR")


def test_requests_that_bypass_the_gateway_are_refused(client: FlaskClient, merchant: str) -> None:
    for hdrs in [
        {},
        {"X-Merchant-Id": merchant},
        {"X-Merchant-Id": merchant, "X-Gateway-Secret": "wrong"},
        {"X-Merchant-Id": "not-a-uuid", "X-Gateway-Secret": "test-gateway-secret"},
    ]:
        _error(client.get("/api/v1/refunds", headers=hdrs), 401, "AUTHENTICATION_ERROR")


def test_lists_are_paginated_newest_first(
    client: FlaskClient, headers: dict, other_headers: dict, make_payment: Callable[..., str]
) -> None:
    first, second = make_payment(), make_payment()
    created = []
    for payment_id in (first, second, first):
        response = client.post(f"/api/v1/payments/{payment_id}/refunds", json={"amount": 100}, headers=headers)
        created.append(response.get_json())
    client.post(
        f"/api/v1/payments/{make_payment(merchant_id=other_headers['X-Merchant-Id'])}/refunds",
        json={"amount": 100},
        headers=other_headers,
    )

    everything = client.get("/api/v1/refunds", headers=headers).get_json()
    assert everything["total"] == 3
    assert everything["limit"] == 10
    assert everything["offset"] == 0
    assert [r["id"] for r in everything["data"]] == [r["id"] for r in reversed(created)]

    page = client.get("/api/v1/refunds?limit=1&offset=1", headers=headers).get_json()
    assert page == {"data": [everything["data"][1]], "total": 3, "total_is_estimate": False, "has_more": True,
                    "limit": 1, "offset": 1}
    beyond = client.get("/api/v1/refunds?limit=5&offset=10", headers=headers).get_json()
    assert beyond == {"data": [], "total": 3, "total_is_estimate": False, "has_more": False, "limit": 5, "offset": 10}

    of_first = client.get(f"/api/v1/payments/{first}/refunds", headers=headers).get_json()
    assert of_first["total"] == 2
    assert [r["id"] for r in of_first["data"]] == [created[2]["id"], created[0]["id"]]

    for query in ("limit=0", "limit=101", "offset=-1", "limit=abc"):
        _error(client.get(f"/api/v1/refunds?{query}", headers=headers), 400, "BAD_REQUEST_ERROR")
        _error(client.get(f"/api/v1/payments/{first}/refunds?{query}", headers=headers), 400, "BAD_REQUEST_ERROR")

    # Cursors: forward and back through the merchant's refunds and through one payment's.
    ids = [r["id"] for r in everything["data"]]
    after = client.get(f"/api/v1/refunds?limit=1&starting_after={ids[0]}", headers=headers).get_json()
    assert ([r["id"] for r in after["data"]], after["has_more"], after["total"]) == ([ids[1]], True, 3)
    before = client.get(f"/api/v1/refunds?limit=5&ending_before={ids[2]}", headers=headers).get_json()
    assert ([r["id"] for r in before["data"]], before["has_more"]) == (ids[:2], False)
    of_first_after = client.get(
        f"/api/v1/payments/{first}/refunds?starting_after={created[2]['id']}", headers=headers
    ).get_json()
    assert [r["id"] for r in of_first_after["data"]] == [created[0]["id"]]
    # A refund of another payment is not in this payment's list; another merchant's refund is not in
    # the merchant's: both answer exactly like an unknown id.
    theirs = client.get("/api/v1/refunds", headers=other_headers).get_json()["data"][0]["id"]
    unknown = "rfnd_AAAAAAAAAAAAAAAA"
    for url, cursor in ((f"/api/v1/payments/{first}/refunds", created[1]["id"]), ("/api/v1/refunds", theirs),
                        (f"/api/v1/payments/{first}/refunds", theirs)):
        for name in ("starting_after", "ending_before"):
            response = client.get(f"{url}?{name}={cursor}", headers=headers)
            _error(response, 400, "BAD_REQUEST_ERROR")
            assert response.get_json() == client.get(f"{url}?{name}={unknown}", headers=headers).get_json()
            assert cursor not in response.get_data(as_text=True)
    _error(client.get(f"/api/v1/refunds?starting_after={ids[0]}&ending_before={ids[1]}", headers=headers), 400,
           "BAD_REQUEST_ERROR")


def test_idempotency_key_creates_one_refund(
    client: FlaskClient, headers: dict, other_headers: dict, make_payment: Callable[..., str]
) -> None:
    payment_id = make_payment()
    url = f"/api/v1/payments/{payment_id}/refunds"
    keyed = {**headers, "Idempotency-Key": "refund-key-1"}
    first = client.post(url, json={"amount": 700, "reason": "dup"}, headers=keyed)
    again = client.post(url, json={"amount": 700, "reason": "dup"}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers.get("Idempotent-Replayed") == "true"
    _error(client.post(url, json={"amount": 800}, headers=keyed), 422, "IDEMPOTENCY_KEY_MISMATCH")
    listed = client.get(f"/api/v1/payments/{payment_id}/refunds", headers=headers).get_json()
    assert listed["total"] == 1

    # The same key used by another merchant is another key.
    other = make_payment(merchant_id=other_headers["X-Merchant-Id"])
    assert (
        client.post(
            f"/api/v1/payments/{other}/refunds",
            json={"amount": 700, "reason": "dup"},
            headers={**other_headers, "Idempotency-Key": "refund-key-1"},
        ).status_code
        == 201
    )


def test_an_over_refund_answer_is_replayed_with_its_key(
    client: FlaskClient, headers: dict, make_payment: Callable[..., str]
) -> None:
    url = f"/api/v1/payments/{make_payment(1_000)}/refunds"
    keyed = {**headers, "Idempotency-Key": "refund-key-over"}
    first = client.post(url, json={"amount": 5_000}, headers=keyed)
    _error(first, 400, "BAD_REQUEST_ERROR")
    again = client.post(url, json={"amount": 5_000}, headers=keyed)
    assert again.status_code == 400
    assert again.get_data() == first.get_data()


def test_the_balance_check_constraint_backs_the_rule(admin, make_payment: Callable[..., str], client, headers) -> None:
    payment_id = make_payment(1_000)
    client.post(f"/api/v1/payments/{payment_id}/refunds", json={"amount": 600}, headers=headers)
    with admin.cursor() as cur, pytest.raises(psycopg.errors.CheckViolation):
        cur.execute(
            "UPDATE refunds.payment_balances SET refunded_total = refunded_total + 600 WHERE payment_id = %s",
            (payment_id,),
        )


def test_health(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["database"] == "connected"


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"amount": ' + "9" * 5000 + "}",
        '{"amount": 100, "reason": "\\ud800"}',
        '{"amount": 100, "\\udc00": 1}',
    ],
    ids=["deep array", "5000-digit amount", "lone surrogate reason", "lone surrogate key"],
)
def test_hostile_bodies_are_a_400_envelope_and_store_nothing(client, admin, headers, make_payment, raw):
    """Before: 500 for each (the loader's RecursionError/ValueError, PostgreSQL refusing the surrogate)."""
    payment_id = make_payment()
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM refunds.refunds WHERE payment_id = %s", (payment_id,))
        before = cur.fetchone()["n"]
    for extra in ({}, {"Idempotency-Key": f"hostile-{payment_id}"}):
        response = client.post(
            f"/api/v1/payments/{payment_id}/refunds", data=raw, content_type="application/json", headers={**headers, **extra}
        )
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        assert response.get_json()["error"]["description"].startswith("Request body is not valid JSON")
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM refunds.refunds WHERE payment_id = %s", (payment_id,))
        assert cur.fetchone()["n"] == before
        cur.execute("SELECT count(*) AS n FROM refunds.idempotency_keys WHERE key = %s", (f"hostile-{payment_id}",))
        assert cur.fetchone()["n"] == 0


def test_the_delay_header_sets_this_refunds_delay(client, headers, make_payment, admin) -> None:
    payment_id = make_payment()
    slow = client.post(
        f"/api/v1/payments/{payment_id}/refunds", json={"amount": 100}, headers={**headers, "X-Test-Delay-Ms": "90000"}
    )
    plain = client.post(f"/api/v1/payments/{payment_id}/refunds", json={"amount": 100}, headers=headers)
    assert slow.status_code == plain.status_code == 201
    with admin.cursor() as cur:
        cur.execute(
            "SELECT id, extract(epoch FROM due_at - created_at) AS wait FROM refunds.refunds WHERE id = ANY(%s)",
            ([slow.get_json()["id"], plain.get_json()["id"]],),
        )
        waits = {row["id"]: round(row["wait"]) for row in cur.fetchall()}
    # The app's configured delay is 0 (settings fixture); the header asked for 90 s.
    assert waits == {slow.get_json()["id"]: 90, plain.get_json()["id"]: 0}


@pytest.mark.parametrize(
    ("sent", "description"),
    [
        ({"X-Test-Delay-Ms": "-1"}, "X-Test-Delay-Ms must be"),
        ({"X-Test-Delay-Ms": "86400001"}, "X-Test-Delay-Ms must be"),
        ({"X-Test-Outcome": "success"}, "X-Test-Outcome applies to payments only"),
    ],
)
def test_bad_refund_controls_are_400_and_refund_nothing(client, headers, make_payment, admin, sent, description) -> None:
    payment_id = make_payment()
    response = client.post(f"/api/v1/payments/{payment_id}/refunds", json={"amount": 100}, headers={**headers, **sent})
    assert _error(response, 400, "BAD_REQUEST_ERROR").startswith(description)
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM refunds.refunds WHERE payment_id = %s", (payment_id,))
        assert cur.fetchone()["n"] == 0


def test_refund_delay_is_refused_outside_test_mode(settings, headers, make_payment, admin) -> None:
    app = create_app(dataclasses.replace(settings, test_mode=False, db_pool=PoolSettings(max_size=2)))
    try:
        payment_id = make_payment()
        response = app.test_client().post(
            f"/api/v1/payments/{payment_id}/refunds", json={"amount": 100}, headers={**headers, "X-Test-Delay-Ms": "0"}
        )
        assert _error(response, 400, "BAD_REQUEST_ERROR") == "Test controls are off"
        with admin.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM refunds.refunds WHERE payment_id = %s", (payment_id,))
            assert cur.fetchone()["n"] == 0
    finally:
        app.extensions["db"].close()
