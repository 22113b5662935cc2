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


class AuthenticationNotRequiredError(BadRequestError):
    description = "Payment does not need authentication"


class AuthenticationAnsweredError(BadRequestError):
    description = "Payment is not awaiting authentication: it was already answered"


class AuthenticationTimedOutError(BadRequestError):
    description = "Payment authentication has timed out"


class AuthenticationDelayError(BadRequestError):
    description = (
        "X-Test-Delay-Ms does not apply to a card that needs authentication: the shopper's answer on the bank's page "
        "decides when it is answered"
    )
