"""The one error hierarchy; every error becomes the API.md envelope."""

from __future__ import annotations

import logging

log = logging.getLogger("gateway.http")


class ApiError(Exception):
    """An error the API answers with a status and a stable code."""

    status: int = 500
    code: str = "SERVER_ERROR"
    description: str = "Internal server error"

    def __init__(self, description: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description or self.description)
        if description is not None:
            self.description = description
        self.headers = headers or {}

    def body(self) -> dict:
        """Return the error envelope."""
        return error_body(self.code, self.description)


def error_body(code: str, description: str) -> dict:
    """Build the API.md error envelope."""
    return {"error": {"code": code, "description": description}}


class BadRequestError(ApiError):
    status = 400
    code = "BAD_REQUEST_ERROR"
    description = "Bad request"


class AuthenticationError(ApiError):
    status = 401
    code = "AUTHENTICATION_ERROR"
    description = "Authentication failed"


class NotFoundError(ApiError):
    status = 404
    code = "NOT_FOUND_ERROR"
    description = "The requested resource does not exist"


class MethodNotAllowedError(ApiError):
    status = 405
    code = "BAD_REQUEST_ERROR"
    description = "Method not allowed"


class PayloadTooLargeError(ApiError):
    status = 413
    code = "BAD_REQUEST_ERROR"
    description = "Request body too large"


class IdempotencyKeyInUseError(ApiError):
    status = 409
    code = "IDEMPOTENCY_KEY_IN_USE"
    description = "A request with this Idempotency-Key is still in progress"


class IdempotencyKeyMismatchError(ApiError):
    status = 422
    code = "IDEMPOTENCY_KEY_MISMATCH"
    description = "Idempotency-Key was already used with a different request"


class TransactionConflictError(ApiError):
    status = 409
    code = "CONFLICT_ERROR"
    description = (
        "The request conflicted with concurrent changes to the same data and was rolled back; "
        "nothing was changed. Retry it."
    )

    def __init__(self, description: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(description, headers={"Retry-After": "1", **(headers or {})})


class RateLimitError(ApiError):
    status = 429
    code = "RATE_LIMIT_ERROR"
    description = "Too many requests"


class ServiceUnavailableError(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    description = "A dependency is unavailable; nothing was changed"


class ServerError(ApiError):
    status = 500
    code = "SERVER_ERROR"
    description = "Internal server error"


def invalid_json(error: ValueError | None) -> BadRequestError:
    """Return the 400 for a request body that could not be loaded as JSON."""
    reason = getattr(error, "reason", None)
    log.info("request body refused: %s", reason or "not valid JSON")
    return BadRequestError("Request body is not valid JSON" + (f": {reason}" if reason else ""))
