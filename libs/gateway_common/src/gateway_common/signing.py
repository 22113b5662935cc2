"""HMAC-SHA256 webhook signatures over the exact bytes sent."""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``body`` keyed with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_v2(secret: str, timestamp: int, body: bytes) -> str:
    """Return the ``t=...,v1=...`` header value signing ``"<t>.<body>"``."""
    digest = sign(secret, str(timestamp).encode() + b"." + body)
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Check an ``X-Webhook-Signature`` header in constant time."""
    return hmac.compare_digest(sign(secret, body), signature or "")


def verify_v2(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Check an ``X-Webhook-Signature-V2`` header and reject stale timestamps."""
    try:
        fields = dict(part.split("=", 1) for part in (header or "").split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, str(timestamp).encode() + b"." + body)
    return hmac.compare_digest(expected, given)
