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


def test_razorpay_format_is_razorpays_envelope_with_its_event_names() -> None:
    payment = {
        "id": "pay_Ab12Cd34Ef56Gh78", "order_id": "order_Ab12Cd34Ef56Gh78", "merchant_id": EVENT["merchant_id"],
        "amount": 50000, "currency": "INR", "method": "upi", "status": "success", "vpa": "success@upi",
        "captured": False, "captured_at": None, "amount_refunded": 0, "error_code": None, "error_description": None,
        "created_at": "2024-01-15T10:51:10Z", "updated_at": "2024-01-15T10:51:11Z",
    }
    event = {**EVENT, "data": {"payment": payment}}
    body = json.loads(webhook_body(event, "razorpay"))
    assert list(body) == ["entity", "account_id", "event", "contains", "payload", "created_at"]
    assert (body["entity"], body["event"], body["contains"]) == ("event", "payment.authorized", ["payment"])
    assert body["account_id"] == "acc_550e8400e29b41" and body["created_at"] == 1705315870
    entity = body["payload"]["payment"]["entity"]
    assert (entity["entity"], entity["status"], entity["created_at"]) == ("payment", "authorized", 1705315870)
    assert webhook_body({**event, "event": "payment.pending"}, "razorpay") is None
    assert webhook_body({**event, "event": "payment.created"}, "razorpay") is None
    refund = {"id": "rfnd_Ab12Cd34Ef56Gh78", "payment_id": payment["id"], "merchant_id": EVENT["merchant_id"],
              "amount": 100, "reason": None, "status": "processed", "created_at": "2024-01-15T10:51:10Z",
              "processed_at": "2024-01-15T10:51:12Z"}
    body = json.loads(webhook_body({**EVENT, "event": "refund.processed", "data": {"refund": refund}}, "razorpay"))
    assert body["event"] == "refund.processed" and body["contains"] == ["refund"]
    assert body["payload"]["refund"]["entity"]["status"] == "processed"
    # The gateway's own format is unchanged.
    assert webhook_body(event) == webhook_body(event, "gateway")


def test_order_paid_in_razorpays_format_carries_the_payment_and_razorpays_order_entity() -> None:
    order = {"id": "order_Ab12Cd34Ef56Gh78", "merchant_id": EVENT["merchant_id"], "amount": 50000, "currency": "INR",
             "receipt": "r1", "notes": {}, "status": "paid", "created_at": "2024-01-15T10:51:10Z",
             "updated_at": "2024-01-15T10:51:11Z"}
    payment = {
        "id": "pay_Ab12Cd34Ef56Gh78", "order_id": order["id"], "merchant_id": EVENT["merchant_id"], "amount": 50000,
        "currency": "INR", "method": "upi", "status": "success", "vpa": "success@upi", "captured": False,
        "captured_at": None, "amount_refunded": 0, "error_code": None, "error_description": None,
        "created_at": "2024-01-15T10:51:10Z", "updated_at": "2024-01-15T10:51:11Z",
    }
    body = json.loads(webhook_body({**EVENT, "event": "order.paid", "data": {"order": order, "payment": payment}}, "razorpay"))
    assert (body["event"], body["contains"]) == ("order.paid", ["payment", "order"])
    entity = body["payload"]["order"]["entity"]
    assert entity == {"id": order["id"], "entity": "order", "amount": 50000, "amount_paid": 50000, "amount_due": 0,
                      "currency": "INR", "receipt": "r1", "offer_id": None, "status": "paid", "attempts": None,
                      "notes": [], "created_at": 1705315870}
    assert body["payload"]["payment"]["entity"]["status"] == "authorized"
