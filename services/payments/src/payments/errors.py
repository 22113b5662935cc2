"""Error codes of the payments service."""

from __future__ import annotations

from gateway_common.errors import BadRequestError, NotFoundError


class InvalidVpaError(BadRequestError):
    code = "INVALID_VPA"
    description = "Invalid VPA"


class InvalidCardError(BadRequestError):
    code = "INVALID_CARD"
    description = "Invalid card details"


class ExpiredCardError(BadRequestError):
    code = "EXPIRED_CARD"
    description = "Card expiry is invalid or in the past"


class NotCapturableError(BadRequestError):
    description = "Payment not in capturable state"


class OrderNotFoundError(NotFoundError):
    description = "Order not found"


class PaymentNotFoundError(NotFoundError):
    description = "Payment not found"
