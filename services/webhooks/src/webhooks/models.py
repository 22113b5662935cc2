"""Webhook domain objects, the retry schedule and the body sent to merchants."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway_common import razorpay

TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_WEBHOOK_SECRET = "whsec_test_abc123"  # noqa: S105 - the documented test credential

# Wait before attempt 1..5, each counted from the previous attempt.
RETRY_INTERVALS: tuple[int, ...] = (0, 60, 300, 1800, 7200)
TEST_RETRY_INTERVALS: tuple[int, ...] = (0, 5, 10, 15, 20)
MAX_ATTEMPTS = len(RETRY_INTERVALS)
RESPONSE_BODY_LIMIT = 1024
TEST_EVENT = "webhook.test"


# Events kept at least this long (API.md, Events).
EVENT_RETENTION_DAYS = 30
MAX_ENDPOINTS = 16
WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    # Its endpoint was disabled (or deleted): recorded without an attempt, replayable once enabled.
    DISABLED = "disabled"


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class BodyFormat(StrEnum):
    GATEWAY = "gateway"
    RAZORPAY = "razorpay"


@dataclass(frozen=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str | None
    secret: str
    format: str = BodyFormat.GATEWAY
    is_default: bool = True
    enabled_events: tuple[str, ...] = ("*",)
    description: str | None = None
    status: EndpointStatus = EndpointStatus.ENABLED
    disabled_reason: str | None = None
    created_at: datetime | None = None

    def subscribes_to(self, event_type: str) -> bool:
        """Tell whether this endpoint wants events of ``event_type``."""
        return any(type_matches(pattern, event_type) for pattern in self.enabled_events)


@dataclass(frozen=True)
class Event:
    """A stored event: what the Events API, the stream and every delivery of it are made from."""

    id: str
    merchant_id: str
    type: str
    created_at: datetime
    body: bytes

    @property
    def data(self) -> dict:
        """The ``data`` of the webhook body."""
        return json.loads(self.body)["data"]

    def body_for(self, body_format: str) -> bytes | None:
        """Return the body a delivery of this event sends in ``body_format``, or None if it has no such event.

        The stored body is the gateway's format, sent byte for byte; Razorpay's is made from it.
        """
        if body_format != BodyFormat.RAZORPAY:
            return self.body
        return webhook_body({**json.loads(self.body), "merchant_id": self.merchant_id}, body_format)


@dataclass(frozen=True)
class EventDelivery:
    """One endpoint's delivery of an event, as ``GET /events/{id}`` shows it."""

    id: str
    endpoint_id: str
    status: DeliveryStatus
    attempts: int
    response_code: int | None
    next_retry_at: datetime | None
    last_error: str | None


def type_matches(pattern: str, event_type: str) -> bool:
    """Match an event type against ``*``, ``<category>.*`` or an exact type."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def category_of(event_type: str) -> str:
    """Return the part of an event type before its first dot (``payment`` for ``payment.success``)."""
    return event_type.split(".", 1)[0]


@dataclass(frozen=True)
class Delivery:
    id: str
    merchant_id: str
    endpoint_id: str
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
    endpoint_id: str
    event_id: str
    body: bytes
    attempts: int
    url: str | None
    secret: str
    lease_token: str
    # Standard Webhooks secrets that sign too (the current one, and the previous during a
    # rotation); empty for a default endpoint, whose legacy secret signs the older headers only.
    standard_secrets: tuple[str, ...] = ()


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


def webhook_body(event: dict, body_format: str = BodyFormat.GATEWAY) -> bytes | None:
    """Serialise the body merchants receive, or None when the format has no such event.

    The gateway's format is the envelope without ``merchant_id``; Razorpay's is its event envelope
    with its event names (``payment.success`` is ``payment.authorized``; ``payment.created`` and
    ``payment.pending`` have no Razorpay event and are not sent in that format).
    """
    if body_format == BodyFormat.RAZORPAY:
        body = razorpay.webhook_event(event)
        if body is None:
            return None
    else:
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
