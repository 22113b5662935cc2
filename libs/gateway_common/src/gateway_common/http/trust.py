"""Trust in the gateway: its secret, the merchant it verified, and routes only for test mode."""

from __future__ import annotations

import hmac
import logging
import uuid

from flask import current_app, request

from gateway_common.config import Settings
from gateway_common.errors import (
    AuthenticationError,
    NotFoundError,
)

log = logging.getLogger("gateway.http")

MERCHANT_HEADER = "X-Merchant-Id"
GATEWAY_SECRET_HEADER = "X-Gateway-Secret"  # noqa: S105 - a header name


def came_through_gateway(given: str, secret: str) -> bool:
    """Tell whether an ``X-Gateway-Secret`` value is the gateway's secret (in constant time)."""
    return hmac.compare_digest(given.encode(), secret.encode())


def require_gateway() -> None:
    """Refuse a request that did not come through the gateway (wrong internal secret)."""
    settings: Settings = current_app.extensions["gateway_settings"]
    if not came_through_gateway(request.headers.get(GATEWAY_SECRET_HEADER, ""), settings.gateway_secret):
        raise AuthenticationError("Request did not come through the gateway")


def require_test_mode() -> None:
    """Answer 404 for a test-only route unless the service runs with ``TEST_MODE=true``."""
    settings: Settings = current_app.extensions["gateway_settings"]
    if not settings.test_mode:
        log.info("test-only route %s refused: TEST_MODE is off", request.path)
        raise NotFoundError("The requested URL was not found")


def merchant_id() -> str:
    """Return the merchant id nginx verified; refuse requests that bypass the gateway."""
    require_gateway()
    value = request.headers.get(MERCHANT_HEADER, "")
    if not value:
        raise AuthenticationError("Missing or invalid credentials")
    return value


def canonical_merchant(value: str) -> str:
    """Return a merchant id in its canonical UUID form, else 401."""
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise AuthenticationError("Missing or invalid credentials") from exc


def current_merchant() -> str:
    """Return the gateway-verified merchant id as a canonical UUID, else 401."""
    return canonical_merchant(merchant_id())

