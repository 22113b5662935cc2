"""Verify the gateway's webhook signatures (no dependencies beyond the standard library).

Copy this file into your server. Always verify the RAW request body bytes, before any
JSON parsing, and compare signatures with ``hmac.compare_digest``::

    from webhook_verify import verify_webhook, WebhookVerificationError

    try:
        event = verify_webhook(raw_body, request.headers, "whsec_...")
    except WebhookVerificationError:
        return 400
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The request is not a valid, fresh webhook from the gateway."""


def compute_signature(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``body`` keyed with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    """Check an ``X-Webhook-Signature`` header (v1: HMAC of the body) in constant time."""
    return hmac.compare_digest(compute_signature(secret, body), (signature or "").strip())


def verify_signature_v2(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Check ``X-Webhook-Signature-V2: t=<unix>,v1=<hex>`` and reject timestamps older than ``tolerance``."""
    fields: dict[str, str] = {}
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, value)
    try:
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = compute_signature(secret, str(timestamp).encode() + b"." + body)
    return hmac.compare_digest(expected, given)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict:
    """Verify a delivery (v2 when present, else v1 plus the timestamp header) and return the event."""
    v2 = _header(headers, "X-Webhook-Signature-V2")
    if v2:
        if not verify_signature_v2(secret, body, v2, tolerance=tolerance, now=now):
            raise WebhookVerificationError("invalid or stale X-Webhook-Signature-V2")
    else:
        if not verify_signature(secret, body, _header(headers, "X-Webhook-Signature")):
            raise WebhookVerificationError("invalid X-Webhook-Signature")
        try:
            timestamp = int(_header(headers, "X-Webhook-Timestamp"))
        except ValueError as exc:
            raise WebhookVerificationError("missing X-Webhook-Timestamp") from exc
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            raise WebhookVerificationError("stale X-Webhook-Timestamp")
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationError("body is not JSON") from exc
    if not isinstance(event, dict):
        raise WebhookVerificationError("body is not a JSON object")
    return event
