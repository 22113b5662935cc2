"""One exception class per error ``code`` of the gateway's error envelope."""

from __future__ import annotations


class PaygateError(Exception):
    """Base of every error this package raises."""


class APIConnectionError(PaygateError):
    """The gateway could not be reached (after the automatic retries)."""


class APIError(PaygateError):
    """An error answer from the gateway: ``{"error": {"code", "description"}}`` with its HTTP status."""

    code = "SERVER_ERROR"

    def __init__(self, description: str, *, status: int, code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        if code is not None:
            self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.description}"


class AuthenticationError(APIError):
    code = "AUTHENTICATION_ERROR"


class BadRequestError(APIError):
    code = "BAD_REQUEST_ERROR"


class NotFoundError(APIError):
    code = "NOT_FOUND_ERROR"


class InvalidVpaError(BadRequestError):
    code = "INVALID_VPA"


class InvalidCardError(BadRequestError):
    code = "INVALID_CARD"


class ExpiredCardError(BadRequestError):
    code = "EXPIRED_CARD"


class IdempotencyKeyMismatchError(APIError):
    code = "IDEMPOTENCY_KEY_MISMATCH"


class IdempotencyKeyInUseError(APIError):
    code = "IDEMPOTENCY_KEY_IN_USE"


class ConflictError(APIError):
    code = "CONFLICT_ERROR"


class RateLimitError(APIError):
    code = "RATE_LIMIT_ERROR"


class ServiceUnavailableError(APIError):
    code = "SERVICE_UNAVAILABLE"


class ServerError(APIError):
    code = "SERVER_ERROR"


ERRORS_BY_CODE: dict[str, type[APIError]] = {
    cls.code: cls
    for cls in (
        AuthenticationError, BadRequestError, NotFoundError, InvalidVpaError, InvalidCardError, ExpiredCardError,
        IdempotencyKeyMismatchError, IdempotencyKeyInUseError, ConflictError, RateLimitError,
        ServiceUnavailableError, ServerError,
    )
}


def error_for(status: int, body: object, request_id: str | None = None) -> APIError:
    """Return the exception for an error answer (an unknown code still gets its status and code)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return APIError(f"HTTP {status}", status=status, code="SERVER_ERROR", request_id=request_id)
    code = str(error.get("code") or "SERVER_ERROR")
    cls = ERRORS_BY_CODE.get(code, APIError)
    return cls(str(error.get("description") or code), status=status, code=code, request_id=request_id)


class WebhookVerificationError(PaygateError):
    """A webhook's signature, id or timestamp does not check out."""
