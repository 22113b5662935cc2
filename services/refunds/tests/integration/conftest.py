"""Fixtures for the refunds integration tests: the app on the throwaway database, payments to refund."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from gateway_common.config import Settings
from gateway_common.db import PoolSettings
from gateway_common.ids import new_id
from psycopg.rows import dict_row
from refunds import create_app

GATEWAY_SECRET = "test-gateway-secret"


@pytest.fixture(scope="session")
def settings(service_env: dict[str, str]) -> Settings:
    """Settings of the refunds service on the throwaway database; refunds are due at once."""
    # Enough pooled connections for the concurrency tests' threads.
    return dataclasses.replace(Settings.from_env("refunds"), db_pool=PoolSettings(max_size=32), test_processing_delay_ms=0)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    app.extensions["db"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def admin(database_url: str) -> Iterator[psycopg.Connection]:
    """A superuser connection (autocommit) for arranging payments and inspecting rows."""
    conn = psycopg.connect(database_url, row_factory=dict_row)
    conn.autocommit = True
    yield conn
    conn.close()


def headers_for(merchant_id: str) -> dict[str, str]:
    """Return the headers nginx sends for an authenticated merchant."""
    return {"X-Merchant-Id": merchant_id, "X-Gateway-Secret": GATEWAY_SECRET}


@pytest.fixture
def merchant() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def headers(merchant: str) -> dict[str, str]:
    return headers_for(merchant)


@pytest.fixture
def other_headers() -> dict[str, str]:
    return headers_for(str(uuid.uuid4()))


@pytest.fixture
def make_payment(admin: psycopg.Connection, merchant: str) -> Callable[..., str]:
    """Insert a payment row as the payments service would have it; return its id."""

    def make(amount: int = 10_000, status: str = "success", merchant_id: str | None = None) -> str:
        payment_id = new_id("pay_")
        with admin.cursor() as cur:
            cur.execute(
                "INSERT INTO payments.payments (id, merchant_id, amount, currency, method, status, vpa) "
                "VALUES (%s, %s, %s, 'INR', 'upi', %s, 'success@upi')",
                (payment_id, merchant_id or merchant, amount, status),
            )
        return payment_id

    return make
