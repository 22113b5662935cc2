"""Payments domain objects, statuses and pure state transitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway_common.timeutil import iso


class OrderStatus(StrEnum):
    CREATED = "created"
    ATTEMPTED = "attempted"
    PAID = "paid"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"


class AuthStatus(StrEnum):
    """Where a payment that needs the shopper's authentication (3-D Secure) stands."""

    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class Method(StrEnum):
    UPI = "upi"
    CARD = "card"


FINAL_STATUSES = frozenset({PaymentStatus.SUCCESS, PaymentStatus.FAILED})

_PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    # A payment that awaited its shopper's authentication (3-D Secure) is decided when the shopper
    # answers: failed if the authentication failed, else by the bank at once.
    PaymentStatus.PENDING: frozenset({PaymentStatus.PROCESSING, PaymentStatus.SUCCESS, PaymentStatus.FAILED}),
    PaymentStatus.PROCESSING: frozenset({PaymentStatus.SUCCESS, PaymentStatus.FAILED}),
    PaymentStatus.SUCCESS: frozenset(),
    PaymentStatus.FAILED: frozenset(),
}

_ORDER_RANK = {OrderStatus.CREATED: 0, OrderStatus.ATTEMPTED: 1, OrderStatus.PAID: 2}


def can_transition(current: PaymentStatus | str, target: PaymentStatus | str) -> bool:
    """Tell whether a payment may move from ``current`` to ``target``."""
    return PaymentStatus(target) in _PAYMENT_TRANSITIONS[PaymentStatus(current)]


def order_status_after(current: OrderStatus | str, payment_status: PaymentStatus | str) -> OrderStatus:
    """Return an order's status once one of its payments reached ``payment_status``.

    An order only moves forward: created -> attempted (a payment exists) -> paid.
    """
    current = OrderStatus(current)
    wanted = OrderStatus.PAID if PaymentStatus(payment_status) == PaymentStatus.SUCCESS else OrderStatus.ATTEMPTED
    return wanted if _ORDER_RANK[wanted] > _ORDER_RANK[current] else current


@dataclass(frozen=True)
class Order:
    id: str
    merchant_id: str
    amount: int
    currency: str
    receipt: str | None
    notes: dict
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PublicOrder:
    id: str
    amount: int
    currency: str
    status: str
    merchant_name: str | None


@dataclass(frozen=True)
class Payment:
    id: str
    merchant_id: str
    order_id: str | None
    amount: int
    currency: str
    method: str
    status: str
    vpa: str | None
    card_network: str | None
    card_last4: str | None
    error_code: str | None
    error_description: str | None
    captured: bool
    captured_at: datetime | None
    amount_refunded: int
    created_at: datetime
    updated_at: datetime
    auth_status: str | None = None
    auth_expires_at: datetime | None = None

    @property
    def authentication_required(self) -> bool:
        """Tell whether the payment needed the shopper's authentication (3-D Secure)."""
        return self.auth_status is not None

    @property
    def authentication(self) -> dict | None:
        """The ``authentication`` object of the API: required, its status and until when it may be answered."""
        if self.auth_status is None:
            return None
        return {"required": True, "status": self.auth_status, "expires_at": iso(self.auth_expires_at)}


def can_capture(payment: Payment) -> bool:
    """Tell whether a payment may be captured (succeeded and not captured yet)."""
    return payment.status == PaymentStatus.SUCCESS and not payment.captured


@dataclass(frozen=True)
class Instrument:
    """What is kept of a payment instrument: never the card number or CVV."""

    method: Method
    vpa: str | None = None
    card_network: str | None = None
    card_last4: str | None = None
    card_expiry_month: int | None = None
    card_expiry_year: int | None = None
    card_holder_name: str | None = None
    # A deterministic test instrument's answer, decided from the number at creation, or the
    # answer and delay a test chose for this payment (X-Test-Outcome, X-Test-Delay-Ms).
    bank_outcome: str | None = None
    bank_error_code: str | None = None
    bank_delay_ms: int | None = None
    # The card needs the shopper's authentication (3-D Secure) before the bank sees the payment.
    authentication_required: bool = False


@dataclass(frozen=True)
class BankDecision:
    status: PaymentStatus
    error_code: str | None = None
    error_description: str | None = None


ORDER_ALREADY_PAID = BankDecision(
    PaymentStatus.FAILED, "ORDER_ALREADY_PAID", "The order was already paid by another payment; this one was not charged"
)


def one_success_per_order(
    order_refs: list[str | None], decisions: list[BankDecision], paid_orders: set[str]
) -> list[BankDecision]:
    """Let at most one payment of an order succeed: a later success fails with ORDER_ALREADY_PAID.

    ``paid_orders`` are the orders already paid when the batch was locked; within the batch the
    first success (in the given order: the caller passes the oldest attempt first) of an unpaid order wins.
    """
    paid = set(paid_orders)
    settled = []
    for order_ref, decision in zip(order_refs, decisions, strict=True):
        if order_ref is not None and decision.status == PaymentStatus.SUCCESS:
            if order_ref in paid:
                decision = ORDER_ALREADY_PAID
            else:
                paid.add(order_ref)
        settled.append(decision)
    return settled
