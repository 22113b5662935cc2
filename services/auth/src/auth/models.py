"""Auth domain objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_MERCHANT_NAME = "Test Merchant"
TEST_MERCHANT_EMAIL = "test@example.com"
TEST_MERCHANT_PASSWORD = "password123"  # noqa: S105 - the documented test credential
TEST_API_KEY = "key_test_abc123"
TEST_API_SECRET = "secret_test_xyz789"  # noqa: S105 - the documented test credential


@dataclass(frozen=True)
class Merchant:
    id: str
    name: str
    email: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    api_key: str
    merchant_id: str
    secret_hash: str
    secret_hint: str


@dataclass(frozen=True)
class Session:
    merchant: Merchant
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class LoginThrottle:
    """How many failed logins one account may have per window (``LOGIN_MAX_FAILURES`` per ``LOGIN_FAILURE_WINDOW_SECONDS``)."""

    max_failures: int = 10
    window_seconds: int = 900


@dataclass(frozen=True)
class LoginAttempt:
    """One counted login attempt: the account's failures so far in its window, this one included."""

    account_key: str
    window_start: datetime
    failures: int
    retry_after_seconds: float


# A test clock moves at most this far per advance, and at most CLOCK_MAX_OFFSET ahead in all
# (the table's CHECK); anything further is no test a merchant means to run.
CLOCK_MAX_ADVANCE = 10 * 365 * 86400
CLOCK_MAX_OFFSET = 100 * 365 * 86400


@dataclass(frozen=True)
class TestClock:
    """A merchant's test clock: its time (``now``) and how far it runs ahead of real time."""

    now: datetime
    offset_seconds: int
