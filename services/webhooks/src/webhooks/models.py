"""Webhook domain objects, the retry schedule and the body sent to merchants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_WEBHOOK_SECRET = "whsec_test_abc123"  # noqa: S105 - the documented test credential

# Wait before attempt 1..5, each counted from the previous attempt.
RETRY_INTERVALS: tuple[int, ...] = (0, 60, 300, 1800, 7200)
TEST_RETRY_INTERVALS: tuple[int, ...] = (0, 5, 10, 15, 20)
MAX_ATTEMPTS = len(RETRY_INTERVALS)
RESPONSE_BODY_LIMIT = 1024
TEST_EVENT = "webhook.test"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str | None
    secret: str


@dataclass(frozen=True)
class Delivery:
    id: str
    merchant_id: str
    event_id: str
    event_type: str
    payment_id: str | None
    body: bytes
    url: str
    status: DeliveryStatus
    attempts: int
    next_retry_at: datetime | None
    last_attempt_at: datetime | None
    response_code: int | None
    response_body: str | None
    last_error: str | None
    created_at: datetime

    @property
    def payload(self) -> dict:
        """The JSON body this delivery sends."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one attempt; the token proves the lease."""

    delivery_id: str
    lease_token: str
    merchant_id: str = ""


@dataclass(frozen=True)
class Job:
    """What one attempt needs: the frozen body and the endpoint's current URL and secret."""

    delivery_id: str
    event_id: str
    body: bytes
    attempts: int
    url: str | None
    secret: str
    lease_token: str


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one HTTP attempt."""

    ok: bool
    response_code: int | None = None
    response_body: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """Where a delivery goes after an attempt."""

    status: DeliveryStatus
    next_retry_in: float | None


def after_attempt(attempts_made: int, ok: bool, intervals: tuple[int, ...] = RETRY_INTERVALS) -> Outcome:
    """Decide status and the wait before the next attempt after attempt number ``attempts_made``."""
    if ok:
        return Outcome(DeliveryStatus.SUCCESS, None)
    if attempts_made >= len(intervals):
        return Outcome(DeliveryStatus.FAILED, None)
    return Outcome(DeliveryStatus.PENDING, float(intervals[attempts_made]))


def webhook_body(event: dict) -> bytes:
    """Serialise the body merchants receive (the envelope without ``merchant_id``)."""
    body = {"id": event["id"], "event": event["event"], "timestamp": event["timestamp"], "data": event["data"]}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def payment_id_of(event: dict) -> str | None:
    """Return the payment an event is about (a refund's payment for refund events)."""
    data = event.get("data") or {}
    payment = data.get("payment")
    if isinstance(payment, dict) and isinstance(payment.get("id"), str):
        return payment["id"]
    refund = data.get("refund")
    if isinstance(refund, dict) and isinstance(refund.get("payment_id"), str):
        return refund["payment_id"]
    return None


def truncate_text(raw: bytes | str | None, limit: int = RESPONSE_BODY_LIMIT) -> str | None:
    """Return at most ``limit`` characters of a response body, safe for a TEXT column."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text.replace("\x00", "\ufffd")[:limit]
