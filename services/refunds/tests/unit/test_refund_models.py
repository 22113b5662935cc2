"""Refund rules and state transitions (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gateway_common.errors import BadRequestError
from refunds import models
from refunds.errors import PaymentNotRefundableError, RefundAmountExceededError
from refunds.models import Balance, Payment, Refund, RefundStatus

AT = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def _refund(status: RefundStatus = RefundStatus.PENDING) -> Refund:
    return Refund(
        "rfnd_" + "a" * 16, "pay_" + "b" * 16, "m", 500, None, status, AT, AT if status == "processed" else None
    )


def _payment(status: str) -> Payment:
    return Payment("pay_" + "b" * 16, "m", 10_000, "INR", status)


def test_mark_processed_sets_status_and_time_once() -> None:
    done = models.mark_processed(_refund(), AT)
    assert done.status is RefundStatus.PROCESSED
    assert done.processed_at == AT
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert models.mark_processed(done, later) == done


def test_only_successful_payments_are_refundable() -> None:
    models.ensure_refundable(_payment("success"))
    with pytest.raises(PaymentNotRefundableError, match="pending"):
        models.ensure_refundable(_payment("pending"))
    with pytest.raises(PaymentNotRefundableError, match="processing"):
        models.ensure_refundable(_payment("processing"))
    with pytest.raises(PaymentNotRefundableError, match="failed"):
        models.ensure_refundable(_payment("failed"))


@pytest.mark.parametrize(
    ("refunded", "amount", "ok"),
    [
        (0, 10_000, True),
        (0, 1, True),
        (9_000, 1_000, True),
        (9_000, 1_001, False),
        (10_000, 1, False),
        (0, 10_001, False),
    ],
)
def test_refund_fits_in_what_is_left(refunded: int, amount: int, ok: bool) -> None:
    balance = Balance("pay_" + "b" * 16, 10_000, refunded)
    if ok:
        models.ensure_available(amount, balance)
    else:
        with pytest.raises(RefundAmountExceededError, match="Refund amount exceeds available amount"):
            models.ensure_available(amount, balance)


@pytest.mark.parametrize("amount", [0, -1])
def test_refund_amount_is_positive(amount: int) -> None:
    with pytest.raises(BadRequestError):
        models.ensure_available(amount, Balance("pay_" + "b" * 16, 10_000, 0))


def test_processing_delay_is_test_delay_or_three_to_five_seconds() -> None:
    assert models.processing_delay_ms(True, 250) == 250
    delays = {models.processing_delay_ms(False, 250) for _ in range(200)}
    assert min(delays) >= 3000
    assert max(delays) <= 5000
    assert len(delays) > 1
