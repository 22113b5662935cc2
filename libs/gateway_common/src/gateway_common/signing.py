"""HMAC-SHA256 signatures: webhooks over the exact bytes sent, and the payment signature."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

DEFAULT_TOLERANCE_SECONDS = 300
STANDARD_PREFIX = "whsec_"


def sign(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``body`` keyed with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_v2(secret: str, timestamp: int, body: bytes) -> str:
    """Return the ``t=...,v1=...`` header value signing ``"<t>.<body>"``."""
    digest = sign(secret, str(timestamp).encode() + b"." + body)
    return f"t={timestamp},v1={digest}"


def payment_signature(api_secret: str, order_id: str, payment_id: str) -> str:
    """Return Razorpay's ``razorpay_signature``: hex HMAC-SHA256 of ``"<order_id>|<payment_id>"`` keyed with the API secret."""
    return sign(api_secret, f"{order_id}|{payment_id}".encode())


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


# Standard Webhooks (https://www.standardwebhooks.com/): "webhook-signature: v1,<base64>" over
# "<id>.<timestamp>.<body>", keyed with the base64-decoded part of the secret after "whsec_".


def new_standard_secret() -> str:
    """Return a Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return STANDARD_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _standard_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(STANDARD_PREFIX), validate=True)


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,<base64 HMAC-SHA256>`` signature of ``"<id>.<timestamp>.<body>"``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()).decode()


def verify_standard(
    secret: str, msg_id: str, timestamp: str, body: bytes, header: str, *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None,
) -> bool:
    """Check a ``webhook-signature`` header (one or more space-separated signatures) and the timestamp."""
    try:
        sent = int(timestamp)
        expected = sign_standard(secret, msg_id, sent, body)
    except (ValueError, binascii.Error):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        return False
    return any(hmac.compare_digest(expected, candidate) for candidate in (header or "").split())
