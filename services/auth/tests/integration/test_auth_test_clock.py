"""The per-merchant test clock of the auth service: advance, read, reset; refused outside test mode."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import secrets
from datetime import UTC, datetime

import psycopg
import pytest
from auth import create_app, service
from auth.models import CLOCK_MAX_ADVANCE, CLOCK_MAX_OFFSET, TEST_MERCHANT_ID
from gateway_common.config import Settings
from gateway_common.db import PoolSettings

GATEWAY = {"X-Gateway-Secret": "test-gateway-secret"}


@pytest.fixture
def merchant(app) -> str:
    """A merchant of this test's own (its clock starts on real time)."""
    db = app.extensions["db"]
    created = service.create_merchant(db, app.extensions["secret_box"], "Clock", f"clock-{secrets.token_hex(4)}@example.com",
                                      "password-123")
    return created["id"]


def _as(merchant_id: str) -> dict:
    return {**GATEWAY, "X-Merchant-Id": merchant_id}


def _seconds_ahead(body: dict) -> float:
    now = datetime.strptime(body["now"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (now - datetime.now(UTC)).total_seconds()


def test_advance_read_and_reset(app, merchant):
    client = app.test_client()
    start = client.get("/api/v1/test/clock", headers=_as(merchant))
    assert start.status_code == 200 and start.json["offset_seconds"] == 0
    assert abs(_seconds_ahead(start.json)) < 5
    advanced = client.post("/api/v1/test/clock/advance", json={"seconds": 3600}, headers=_as(merchant))
    assert advanced.status_code == 200, advanced.json
    assert advanced.json["offset_seconds"] == 3600
    assert abs(_seconds_ahead(advanced.json) - 3600) < 5
    again = client.post("/api/v1/test/clock/advance", json={"seconds": 60}, headers=_as(merchant))
    assert again.json["offset_seconds"] == 3660
    assert client.get("/api/v1/test/clock", headers=_as(merchant)).json["offset_seconds"] == 3660
    # Another merchant's clock did not move.
    assert client.get("/api/v1/test/clock", headers=_as(TEST_MERCHANT_ID)).json["offset_seconds"] == 0
    reset = client.post("/api/v1/test/clock/reset", headers=_as(merchant))
    assert reset.status_code == 200 and reset.json["offset_seconds"] == 0
    assert abs(_seconds_ahead(reset.json)) < 5


def test_the_database_clock_of_a_merchant_is_what_other_services_read(app, merchant, database_url):
    app.test_client().post("/api/v1/test/clock/advance", json={"seconds": 86400}, headers=_as(merchant))
    with psycopg.connect(database_url) as conn:
        ahead, other = conn.execute(
            "SELECT extract(epoch FROM auth.merchant_now(%s) - now()), extract(epoch FROM auth.merchant_now(%s) - now())",
            (merchant, TEST_MERCHANT_ID),
        ).fetchone()
    assert (float(ahead), float(other)) == (86400.0, 0.0)


def test_concurrent_advances_add_up(app, merchant):
    db = app.extensions["db"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: service.advance_clock(db, merchant, 7), range(16)))
    assert service.get_clock(db, merchant).offset_seconds == 16 * 7


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"seconds": 0},
        {"seconds": -60},
        {"seconds": 1.5},
        {"seconds": "60"},
        {"seconds": True},
        {"seconds": None},
        {"seconds": CLOCK_MAX_ADVANCE + 1},
        {"seconds": 10**30},
        {"seconds": 60, "extra": 1},
        [60],
        "60",
    ],
)
def test_bad_input_is_400_and_changes_nothing(app, merchant, body):
    client = app.test_client()
    client.post("/api/v1/test/clock/advance", json={"seconds": 5}, headers=_as(merchant))
    response = client.post("/api/v1/test/clock/advance", data=json.dumps(body), content_type="application/json",
                           headers=_as(merchant))
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "BAD_REQUEST_ERROR" and response.json["error"]["description"]
    assert client.get("/api/v1/test/clock", headers=_as(merchant)).json["offset_seconds"] == 5


def test_malformed_json_is_400(app, merchant):
    client = app.test_client()
    response = client.post("/api/v1/test/clock/advance", data="{seconds: 5", content_type="application/json",
                           headers=_as(merchant))
    assert response.status_code == 400 and response.json["error"]["code"] == "BAD_REQUEST_ERROR"
    assert client.get("/api/v1/test/clock", headers=_as(merchant)).json["offset_seconds"] == 0


def test_the_clock_runs_at_most_100_years_ahead(app, merchant):
    client = app.test_client()
    for _ in range(CLOCK_MAX_OFFSET // CLOCK_MAX_ADVANCE):
        assert client.post("/api/v1/test/clock/advance", json={"seconds": CLOCK_MAX_ADVANCE},
                           headers=_as(merchant)).status_code == 200
    over = client.post("/api/v1/test/clock/advance", json={"seconds": 1}, headers=_as(merchant))
    assert over.status_code == 400 and "reset it first" in over.json["error"]["description"]
    assert client.get("/api/v1/test/clock", headers=_as(merchant)).json["offset_seconds"] == CLOCK_MAX_OFFSET
    assert client.post("/api/v1/test/clock/reset", headers=_as(merchant)).json["offset_seconds"] == 0


def test_the_clock_needs_the_gateway_and_test_mode(app, merchant):
    client = app.test_client()
    assert client.get("/api/v1/test/clock", headers={"X-Merchant-Id": merchant}).status_code == 401
    strict = create_app(dataclasses.replace(Settings.from_env("auth"), test_mode=False, db_pool=PoolSettings(max_size=1)))
    for method, path, body in (("get", "/api/v1/test/clock", None), ("post", "/api/v1/test/clock/advance", {"seconds": 60}),
                               ("post", "/api/v1/test/clock/reset", None)):
        response = getattr(strict.test_client(), method)(path, json=body, headers=_as(merchant))
        assert response.status_code == 400, (path, response.json)
        assert response.json == {"error": {"code": "BAD_REQUEST_ERROR", "description": "Test controls are off"}}
    assert client.get("/api/v1/test/clock", headers=_as(merchant)).json["offset_seconds"] == 0
