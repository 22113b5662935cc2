"""Verify webhook deliveries: the Standard Webhooks headers and the gateway's own timestamped form."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from paygate.errors import WebhookVerificationError

TOLERANCE_SECONDS = 300
PREFIX = "whsec_"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _fresh(timestamp: str, tolerance: int, now: float | None) -> int:
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("invalid timestamp") from None
    if abs((time.time() if now is None else now) - sent) > tolerance:
        raise WebhookVerificationError("timestamp outside the tolerance")
    return sent


class Webhook:
    """``Webhook(secret).verify(body, headers)``: check a delivery over its raw body; return the event."""

    def __init__(self, secret: str, *, tolerance: int = TOLERANCE_SECONDS) -> None:
        self.secret = secret
        self.tolerance = tolerance

    def verify(self, body: bytes | str, headers: Mapping[str, str], *, now: float | None = None) -> dict:
        """Return the parsed event if a signature over exactly ``body`` checks out and is recent."""
        raw = body.encode() if isinstance(body, str) else bytes(body)
        found = _lower(headers)
        if "webhook-signature" in found:
            self._verify_standard(raw, found, now)
        elif "x-webhook-signature-v2" in found:
            self._verify_v2(raw, found["x-webhook-signature-v2"], now)
        else:
            raise WebhookVerificationError("no signature header")
        try:
            return json.loads(raw)
        except ValueError:
            raise WebhookVerificationError("the body is not JSON") from None

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """Return the headers a delivery of ``body`` carries, signed with this secret (both forms)."""
        legacy = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        v2 = hmac.new(self.secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Id": msg_id,
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Signature": legacy,
            "X-Webhook-Signature-V2": f"t={timestamp},v1={v2}",
        }
        try:
            headers["webhook-signature"] = self._standard(msg_id, timestamp, body)
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(timestamp)
        except WebhookVerificationError:
            pass  # a secret that is not base64 signs the gateway's own headers only
        return headers

    def _standard(self, msg_id: str, timestamp: int, body: bytes) -> str:
        try:
            key = base64.b64decode(self.secret.removeprefix(PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookVerificationError("the secret is not a Standard Webhooks secret") from None
        digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode()

    def _verify_standard(self, body: bytes, headers: dict[str, str], now: float | None) -> None:
        msg_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
        if not msg_id or not timestamp:
            raise WebhookVerificationError("missing webhook-id or webhook-timestamp")
        sent = _fresh(timestamp, self.tolerance, now)
        expected = self._standard(msg_id, sent, body)
        if not any(hmac.compare_digest(expected, given) for given in headers["webhook-signature"].split()):
            raise WebhookVerificationError("no matching signature")

    def _verify_v2(self, body: bytes, header: str, now: float | None) -> None:
        try:
            fields = dict(part.split("=", 1) for part in header.split(","))
            timestamp, given = fields["t"], fields["v1"]
        except (KeyError, ValueError):
            raise WebhookVerificationError("malformed X-Webhook-Signature-V2") from None
        _fresh(timestamp, self.tolerance, now)
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            raise WebhookVerificationError("no matching signature")


def new_secret() -> str:
    """Return a fresh Standard Webhooks secret (``whsec_`` + base64 of 24 random bytes)."""
    import secrets

    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
