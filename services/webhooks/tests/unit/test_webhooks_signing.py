"""Delivery headers verify with the gateway's signing helpers and with the merchant-side helper."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import time
from pathlib import Path

import pytest
from gateway_common import signing
from webhooks.sender import signed_headers

ROOT = Path(__file__).resolve().parents[4]
SECRET = "whsec_test_abc123"
BODY = b'{"id":"evt_1","event":"payment.success","timestamp":1705315870,"data":{}}'


def _load_verify_helper():
    spec = importlib.util.spec_from_file_location("webhook_verify", ROOT / "examples" / "webhook_verify.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


verify_helper = _load_verify_helper()


def test_headers_sign_the_exact_body() -> None:
    headers = signed_headers(SECRET, "evt_1", BODY, now=1_700_000_000)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Webhook-Id"] == "evt_1"
    assert headers["X-Webhook-Timestamp"] == "1700000000"
    assert headers["X-Webhook-Signature"] == hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    expected_v2 = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature-V2"] == f"t=1700000000,v1={expected_v2}"
    assert signing.verify(SECRET, BODY, headers["X-Webhook-Signature"])
    assert signing.verify_v2(SECRET, BODY, headers["X-Webhook-Signature-V2"], now=1_700_000_010)
    # Razorpay's names for the same signature and id (client.utility.verify_webhook_signature).
    assert headers["X-Razorpay-Signature"] == headers["X-Webhook-Signature"]
    assert headers["X-Razorpay-Event-Id"] == "evt_1"


def test_merchant_helper_accepts_fresh_v1_and_v2() -> None:
    headers = signed_headers(SECRET, "evt_1", BODY)
    assert verify_helper.verify_webhook(BODY, headers, SECRET)["id"] == "evt_1"
    lower = {k.lower(): v for k, v in headers.items() if k != "X-Webhook-Signature-V2"}
    assert verify_helper.verify_webhook(BODY, lower, SECRET)["event"] == "payment.success"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: ({**h, "X-Webhook-Signature-V2": h["X-Webhook-Signature-V2"].replace("v1=", "v1=0")}, b),
        lambda h, b: (h, b.replace(b"success", b"failed!")),
    ],
)
def test_merchant_helper_rejects_tampering(tamper) -> None:
    headers, body = tamper(signed_headers(SECRET, "evt_1", BODY), BODY)
    with pytest.raises(verify_helper.WebhookVerificationError):
        verify_helper.verify_webhook(body, headers, SECRET)


def test_merchant_helper_rejects_wrong_secret_and_stale_timestamps() -> None:
    headers = signed_headers(SECRET, "evt_1", BODY)
    with pytest.raises(verify_helper.WebhookVerificationError):
        verify_helper.verify_webhook(BODY, headers, "whsec_other")
    old = signed_headers(SECRET, "evt_1", BODY, now=time.time() - 301)
    with pytest.raises(verify_helper.WebhookVerificationError):
        verify_helper.verify_webhook(BODY, old, SECRET)
    v1_only = {k: v for k, v in old.items() if k != "X-Webhook-Signature-V2"}
    with pytest.raises(verify_helper.WebhookVerificationError):
        verify_helper.verify_webhook(BODY, v1_only, SECRET)
    assert not verify_helper.verify_signature_v2(SECRET, BODY, "garbage")
    assert not verify_helper.verify_signature_v2(SECRET, BODY, "")
