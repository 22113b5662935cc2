"""Retry schedule, the body sent to merchants and what a log remembers."""

from __future__ import annotations

import json

from webhooks.models import (
    RETRY_INTERVALS,
    TEST_RETRY_INTERVALS,
    DeliveryStatus,
    after_attempt,
    payment_id_of,
    truncate_text,
    webhook_body,
)

EVENT = {
    "id": "evt_Ab12Cd34Ef56Gh78",
    "event": "payment.success",
    "timestamp": 1705315870,
    "merchant_id": "550e8400-e29b-41d4-a716-446655440000",
    "data": {"payment": {"id": "pay_Ab12Cd34Ef56Gh78", "amount": 50000, "notes": {"k": "é"}}},
}


def test_schedule_waits_1_5_30_120_minutes_then_fails() -> None:
    waits = [after_attempt(n, ok=False).next_retry_in for n in range(1, 5)]
    assert waits == [60, 300, 1800, 7200]
    assert all(after_attempt(n, ok=False).status == DeliveryStatus.PENDING for n in range(1, 5))
    assert after_attempt(5, ok=False) .status == DeliveryStatus.FAILED
    assert after_attempt(5, ok=False).next_retry_in is None
    assert RETRY_INTERVALS[0] == 0


def test_test_schedule_is_5_10_15_20_seconds() -> None:
    waits = [after_attempt(n, ok=False, intervals=TEST_RETRY_INTERVALS).next_retry_in for n in range(1, 5)]
    assert waits == [5, 10, 15, 20]
    assert after_attempt(5, ok=False, intervals=TEST_RETRY_INTERVALS).status == DeliveryStatus.FAILED


def test_success_ends_the_schedule_at_any_attempt() -> None:
    for n in range(1, 6):
        outcome = after_attempt(n, ok=True)
        assert outcome.status == DeliveryStatus.SUCCESS
        assert outcome.next_retry_in is None


def test_body_is_the_envelope_without_merchant_id() -> None:
    body = webhook_body(EVENT)
    assert json.loads(body) == {k: v for k, v in EVENT.items() if k != "merchant_id"}
    assert list(json.loads(body)) == ["id", "event", "timestamp", "data"]
    assert webhook_body(EVENT) == body


def test_payment_id_comes_from_the_payment_or_the_refund() -> None:
    assert payment_id_of(EVENT) == "pay_Ab12Cd34Ef56Gh78"
    refund = {"data": {"refund": {"id": "rfnd_x", "payment_id": "pay_Zz12Cd34Ef56Gh78"}}}
    assert payment_id_of(refund) == "pay_Zz12Cd34Ef56Gh78"
    assert payment_id_of({"data": {"message": "hi"}}) is None


def test_response_bodies_are_truncated_and_safe_for_text_columns() -> None:
    assert len(truncate_text(b"x" * 5000)) == 1024
    assert truncate_text(b"a\x00b\xff") == "a\ufffdb\ufffd"
    assert truncate_text(None) is None


def test_deliver_batches_are_per_merchant_and_small() -> None:
    from webhooks.models import Claim
    from webhooks.tasks import batches

    claims = [Claim(f"whlog_{i}", "t", "m1") for i in range(23)] + [Claim("whlog_x", "t", "m2")]
    grouped = batches(claims, size=10)
    assert [len(b) for b in grouped] == [10, 10, 3, 1]
    assert all(len({c.merchant_id for c in b}) == 1 for b in grouped)
    assert [c.delivery_id for b in grouped for c in b] == [c.delivery_id for c in claims]
