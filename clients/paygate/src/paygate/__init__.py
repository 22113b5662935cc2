"""Python client and command line for the payment gateway simulator."""

from paygate.client import Client, Page, StreamedEvent
from paygate.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ExpiredCardError,
    IdempotencyKeyInUseError,
    IdempotencyKeyMismatchError,
    InvalidCardError,
    InvalidVpaError,
    NotFoundError,
    PaygateError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    WebhookVerificationError,
)
from paygate.webhook import Webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "ExpiredCardError",
    "IdempotencyKeyInUseError",
    "IdempotencyKeyMismatchError",
    "InvalidCardError",
    "InvalidVpaError",
    "NotFoundError",
    "Page",
    "PaygateError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "StreamedEvent",
    "Webhook",
    "WebhookVerificationError",
]
