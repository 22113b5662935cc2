"""Errors of the refunds service (all in the API.md envelope)."""

from __future__ import annotations

from gateway_common.errors import BadRequestError, NotFoundError


class PaymentNotFoundError(NotFoundError):
    description = "Payment not found"


class RefundNotFoundError(NotFoundError):
    description = "Refund not found"


class PaymentNotRefundableError(BadRequestError):
    description = "Payment not in refundable state"


class RefundAmountExceededError(BadRequestError):
    description = "Refund amount exceeds available amount"
