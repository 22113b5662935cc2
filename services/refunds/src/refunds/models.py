"""Refund domain objects, statuses and pure rules (no I/O)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from gateway_common.errors import BadRequestError

from refunds.errors import PaymentNotRefundableError, RefundAmountExceededError

# Outside test mode the simulated processor answers after 3-5 s.
PROCESSING_DELAY_MS = (3000, 5000)


class RefundStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    merchant_id: str
    amount: int
    reason: str | None
    status: RefundStatus
    created_at: datetime
    processed_at: datetime | None = None


@dataclass(frozen=True)
class Payment:
    """What the refunds service may read of a payment (``payments.payments_for_refunds``)."""

    id: str
    merchant_id: str
    amount: int
    currency: str
    status: str


@dataclass(frozen=True)
class Balance:
    """How much of a payment is already refunded (pending plus processed)."""

    payment_id: str
    amount: int
    refunded_total: int

    @property
    def available(self) -> int:
        """Return what may still be refunded."""
        return self.amount - self.refunded_total


def mark_processed(refund: Refund, at: datetime) -> Refund:
    """Return the refund processed at ``at``; an already processed refund is unchanged."""
    if refund.status is RefundStatus.PROCESSED:
        return refund
    return replace(refund, status=RefundStatus.PROCESSED, processed_at=at)


def ensure_refundable(payment: Payment) -> None:
    """Refuse refunds of payments that did not succeed, saying why."""
    if payment.status == "success":
        return
    if payment.status == "failed":
        reason = "the payment failed, so there is nothing to refund"
    else:
        reason = f"the payment is {payment.status}; only successful payments can be refunded"
    raise PaymentNotRefundableError(f"Payment not in refundable state: {reason}")


def ensure_available(amount: int, balance: Balance) -> None:
    """Refuse a refund larger than what is still refundable."""
    if amount < 1:
        raise BadRequestError("amount must be at least 1")
    if amount > balance.available:
        raise RefundAmountExceededError()


def processing_delay_ms(test_mode: bool, test_delay_ms: int, chosen: int | None = None) -> int:
    """Return how long the simulated processor takes: ``chosen`` (X-Test-Delay-Ms), the test delay, else 3-5 s."""
    if chosen is not None:
        return chosen
    if test_mode:
        return max(0, test_delay_ms)
    low, high = PROCESSING_DELAY_MS
    return low + secrets.randbelow(high - low + 1)
