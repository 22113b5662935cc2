"""paygate without a gateway: signatures (against the Standard Webhooks reference library), errors, pages."""

from __future__ import annotations

import time

import pytest
from paygate import Page, Webhook, WebhookVerificationError
from paygate.errors import APIError, InvalidVpaError, NotFoundError, error_for
from paygate.webhook import new_secret
from standardwebhooks import Webhook as StandardWebhook

BODY = b'{"id":"evt_1","event":"payment.success","timestamp":1700000000,"data":{"payment":{"id":"pay_1"}}}'


def test_signed_headers_verify_with_paygate_and_the_reference_library():
    secret = new_secret()
    headers = Webhook(secret).sign("evt_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["id"] == "evt_1"
    assert StandardWebhook(secret).verify(BODY, {k.lower(): v for k, v in headers.items()})["id"] == "evt_1"


def test_reference_library_signatures_verify_with_paygate():
    secret = new_secret()
    now = int(time.time())
    from datetime import UTC, datetime

    signature = StandardWebhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), BODY.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": f"v1,bogus {signature}"}
    assert Webhook(secret).verify(BODY, headers)["event"] == "payment.success"


@pytest.mark.parametrize("change", ["body", "secret", "stale", "no-headers", "v2-body", "v2-stale"])
def test_tampered_or_stale_deliveries_are_refused(change):
    secret = new_secret()
    now = time.time()
    headers = Webhook(secret).sign("evt_1", int(now - (301 if change.endswith("stale") else 0)), BODY)
    body = BODY.replace(b"pay_1", b"pay_2") if change.endswith("body") else BODY
    if change.startswith("v2"):
        headers = {k: v for k, v in headers.items() if not k.startswith("webhook-")}
    if change == "no-headers":
        headers = {}
    verifier = Webhook(new_secret() if change == "secret" else secret)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body, headers)


def test_a_legacy_secret_verifies_the_gateways_own_headers():
    headers = Webhook("whsec_test_abc123").sign("evt_1", int(time.time()), BODY)
    assert "webhook-signature" not in headers  # not a base64 secret: no Standard Webhooks signature
    assert Webhook("whsec_test_abc123").verify(BODY, headers)["id"] == "evt_1"


def test_one_exception_class_per_error_code():
    error = error_for(404, {"error": {"code": "NOT_FOUND_ERROR", "description": "Payment not found"}}, "req-1")
    assert isinstance(error, NotFoundError) and error.status == 404 and error.request_id == "req-1"
    assert isinstance(error_for(400, {"error": {"code": "INVALID_VPA", "description": "bad"}}), InvalidVpaError)
    unknown = error_for(418, {"error": {"code": "TEAPOT", "description": "?"}})
    assert type(unknown) is APIError and unknown.code == "TEAPOT"
    assert error_for(502, "<html>").status == 502


def test_pages_follow_their_cursor():
    pages = {0: Page([{"id": 1}, {"id": 2}], True), 1: Page([{"id": 3}], False)}
    pages[0]._next = lambda: pages[1]
    assert [item["id"] for item in pages[0].auto_paging_iter()] == [1, 2, 3]
