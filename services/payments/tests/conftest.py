"""Fixtures of the payments service's tests: the app, its database and seeded merchants."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest

TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
OTHER_MERCHANT_ID = "7d1f2c3e-0000-4000-8000-000000000002"
TEST_API_KEY = "key_test_abc123"
OTHER_API_KEY = "key_test_other0001"
GATEWAY_SECRET = "test-gateway-secret"


def gateway_headers(merchant_id: str = TEST_MERCHANT_ID) -> dict[str, str]:
    """Headers nginx adds after authenticating a merchant."""
    return {"X-Gateway-Secret": GATEWAY_SECRET, "X-Merchant-Id": merchant_id}


@pytest.fixture(scope="session")
def admin_conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A superuser connection to the throwaway database (autocommit)."""
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def merchants(admin_conn: psycopg.Connection) -> dict[str, str]:
    """Seed two merchants with public API keys, as the auth service would."""
    with admin_conn.cursor() as cur:
        for merchant_id, name, key in (
            (TEST_MERCHANT_ID, "Test Merchant", TEST_API_KEY),
            (OTHER_MERCHANT_ID, "Other Merchant", OTHER_API_KEY),
        ):
            cur.execute(
                "INSERT INTO auth.merchants (id, name, email, password_hash) VALUES (%s, %s, %s, 'x') "
                "ON CONFLICT (id) DO NOTHING",
                (merchant_id, name, f"{uuid.uuid4().hex}@example.com"),
            )
            cur.execute(
                "INSERT INTO auth.api_keys (api_key, merchant_id, secret_hash, secret_hint) VALUES (%s, %s, %s, 'x') "
                "ON CONFLICT (api_key) DO NOTHING",
                (key, merchant_id, hashlib.sha256(b"secret").hexdigest()),
            )
    return {"test": TEST_MERCHANT_ID, "other": OTHER_MERCHANT_ID}


@pytest.fixture(scope="session")
def app(service_env: dict[str, str], merchants: dict[str, str]):
    """The payments Flask app against the throwaway database and Redis."""
    from dataclasses import replace

    from gateway_common.config import Settings
    from gateway_common.db import PoolSettings
    from payments import create_app

    # Room for the concurrency tests' 16 threads (gunicorn sizes the pool to its threads).
    application = create_app(replace(Settings.from_env("payments"), db_pool=PoolSettings(max_size=32)))
    application.testing = True
    yield application
    application.extensions["db"].close()


@pytest.fixture
def client(app):
    """A Flask test client."""
    return app.test_client()


@pytest.fixture(scope="session")
def db(app):
    """The app's database pool, for calling service functions directly."""
    return app.extensions["db"]


@pytest.fixture
def headers() -> dict[str, str]:
    """Gateway headers of the test merchant."""
    return gateway_headers(TEST_MERCHANT_ID)


@pytest.fixture
def other_headers() -> dict[str, str]:
    """Gateway headers of another merchant."""
    return gateway_headers(OTHER_MERCHANT_ID)


@pytest.fixture
def drive_bank(db):
    """Run the bank in-process (no delay) until the given payments are final; return their statuses."""
    import time

    from payments import bank_schedule
    from payments.bank import BankConfig

    def drive(payment_ids: list[str], config: BankConfig | None = None, timeout: float = 15.0) -> dict[str, str]:
        config = config or BankConfig(test_mode=True, test_delay_ms=0, test_success=True)
        deadline = time.monotonic() + timeout
        while True:
            dispatched: list[list[str]] = []
            bank_schedule.sweep_due(db, config, lambda ids, countdown: dispatched.append(ids))
            for batch in dispatched:
                bank_schedule.process_payments(db, config, batch)
            with db.transaction() as tx:
                tx.cursor.execute("SELECT id, status FROM payments.payments WHERE id = ANY(%s)", (list(payment_ids),))
                statuses = {r["id"]: r["status"] for r in tx.cursor.fetchall()}
            if all(s in ("success", "failed") for s in statuses.values()) and len(statuses) == len(set(payment_ids)):
                return statuses
            if time.monotonic() > deadline:
                raise AssertionError(f"payments not final in time: {statuses}")

    return drive
