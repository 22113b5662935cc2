"""Unit tests of the shared library: no I/O."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from flask import Flask
from gateway_common import errors, ids, money, signing
from gateway_common.config import ConfigError, Settings, with_user
from gateway_common.events import events_from_task
from gateway_common.http import create_base_app, describe_validation
from gateway_common.idempotency import fingerprint
from gateway_common.schemas import RequestSchema, StrictInteger, amount_field
from marshmallow import ValidationError


def test_new_id_has_prefix_and_sixteen_alphanumerics():
    values = {ids.new_id("pay_") for _ in range(1000)}
    assert len(values) == 1000
    for value in values:
        assert ids.is_id(value, "pay_")
    assert not ids.is_id("pay_short", "pay_")
    assert not ids.is_id("order_" + "a" * 16, "pay_")


def test_format_amount_in_rupees():
    assert money.format_amount(50000) == "₹500.00"
    assert money.format_amount(100, "INR") == "₹1.00"
    assert money.format_amount(123456789, "INR") == "₹12,34,567.89"  # lakhs and crores
    assert money.format_amount(1002818246000, "INR") == "₹10,02,81,82,460.00"
    assert money.format_amount(99999, "INR") == "₹999.99"
    assert money.format_amount(-150000, "INR") == "-₹1,500.00"
    assert money.format_amount(123456789, "USD") == "$1,234,567.89"
    assert money.format_amount(2**63 - 1, "INR") == "₹92,23,37,20,36,85,47,758.07"


def test_compact_amounts_in_crores_and_lakhs():
    # The overview card held ₹10,028,182,460.00 and overflowed; the compact form fits.
    assert money.format_amount_compact(1002818246000, "INR") == "₹1,002.8 Cr"
    assert money.format_amount_compact(1250000000, "INR") == "₹1.2 Cr"  # 1.25 Cr truncated, never rounded up
    assert money.format_amount_compact(1250000, "INR") == "₹12,500.00"  # below a lakh: exact
    assert money.format_amount_compact(12500000, "INR") == "₹1.2 L"
    assert money.format_amount_compact(320000000, "USD") == "$3.2 M"
    assert money.format_amount_compact(2**63 - 1, "INR") == "₹9,22,33,72,036.8 Cr"
    assert money.format_amount(500, "JPY") == "¥500"
    assert money.is_currency("INR") and not money.is_currency("XYZ")


def test_signatures_verify_and_reject_tampering_and_stale_timestamps():
    body = b'{"id":"evt_1","event":"payment.success"}'
    sig = signing.sign("whsec_test_abc123", body)
    assert len(sig) == 64
    assert signing.verify("whsec_test_abc123", body, sig)
    assert not signing.verify("whsec_other", body, sig)
    assert not signing.verify("whsec_test_abc123", body + b" ", sig)
    now = int(time.time())
    header = signing.sign_v2("whsec_test_abc123", now, body)
    assert header.startswith(f"t={now},v1=")
    assert signing.verify_v2("whsec_test_abc123", body, header)
    assert not signing.verify_v2("whsec_test_abc123", body, header, now=now + 301)
    assert not signing.verify_v2("whsec_test_abc123", body, "garbage")


def test_error_envelope_shape():
    err = errors.NotFoundError("Payment not found")
    assert err.status == 404
    assert err.body() == {"error": {"code": "NOT_FOUND_ERROR", "description": "Payment not found"}}
    assert errors.IdempotencyKeyMismatchError().status == 422
    assert errors.IdempotencyKeyInUseError().status == 409
    assert errors.ServiceUnavailableError().code == "SERVICE_UNAVAILABLE"


def test_strict_integer_refuses_strings_floats_and_booleans():
    class Body(RequestSchema):
        amount = amount_field(100)
        count = StrictInteger()

    assert Body().load({"amount": 100}) == {"amount": 100}
    for bad in ("100", 100.5, True, 99, -5, 2**63):
        with pytest.raises(ValidationError):
            Body().load({"amount": bad})
    with pytest.raises(ValidationError) as info:
        Body().load({"amount": 100, "extra": 1})
    assert "extra" in describe_validation(info.value.messages)


def test_describe_validation_is_readable():
    text = describe_validation({"json": {"amount": ["Not a valid integer."], "card": {"number": ["Missing data for required field."]}}})
    assert text == "amount: Not a valid integer.; card.number: Missing data for required field."


def test_fingerprint_ignores_json_key_order_but_not_values():
    a = fingerprint("k", "POST", "/api/v1/payments", b'{"a": 1, "b": 2}')
    assert a == fingerprint("k", "POST", "/api/v1/payments", b'{"b":2,"a":1}')
    assert a != fingerprint("k", "POST", "/api/v1/payments", b'{"a": 1, "b": 3}')
    assert a != fingerprint("k", "POST", "/api/v1/orders", b'{"a": 1, "b": 2}')


def test_fingerprint_is_keyed_for_json_and_other_bodies():
    for body in (b'{"number": "4111111111111111"}', b"number=4111111111111111&cvv=123"):
        mine = fingerprint("k", "POST", "/x", body)
        assert mine != fingerprint("other", "POST", "/x", body)
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body[:1] == b"{" else body
        assert mine != hashlib.sha256(b"POST /x\n" + canonical).hexdigest()


def test_fingerprint_hashes_what_canonical_returns():
    def hide_secret(body, keyed):
        return {**body, "secret": keyed(body["secret"].replace(" ", ""))} if isinstance(body, dict) else body

    a = fingerprint("k", "POST", "/x", b'{"secret": "12 34", "cvv": 1}', hide_secret)
    assert a == fingerprint("k", "POST", "/x", b'{"cvv": 1, "secret": "1234"}', hide_secret)
    assert a != fingerprint("k", "POST", "/x", b'{"cvv": 1, "secret": "1235"}', hide_secret)
    assert fingerprint("k", "POST", "/x", b"not json", hide_secret) == fingerprint("k", "POST", "/x", b"not json")


def test_settings_derive_a_fingerprint_key_from_the_gateway_secret_unless_given():
    derived = Settings(service="s", gateway_secret="one").fingerprint_key
    assert derived and derived != Settings(service="s", gateway_secret="two").fingerprint_key
    assert "one" not in derived
    assert Settings(service="s", gateway_secret="one", fingerprint_key="own").fingerprint_key == "own"


def test_with_user_replaces_credentials():
    assert with_user("postgresql://postgres@127.0.0.1:5432/db", "svc_payments", "pw") == "postgresql://svc_payments:pw@127.0.0.1:5432/db"


def _app() -> Flask:
    app, _ = create_base_app(Settings(service="unit"), title="unit")

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    @app.get("/missing")
    def missing():
        raise errors.NotFoundError("Order not found")

    @app.post("/echo")
    def echo():
        from gateway_common.http import parse_json_object

        return parse_json_object()

    return app


def test_app_answers_every_error_in_the_envelope():
    client = _app().test_client()
    boom = client.get("/boom")
    assert boom.status_code == 500
    assert boom.json == {"error": {"code": "SERVER_ERROR", "description": "Internal server error"}}
    assert "secret internals" not in boom.get_data(as_text=True)
    assert client.get("/missing").json["error"] == {"code": "NOT_FOUND_ERROR", "description": "Order not found"}
    assert client.get("/nope").json["error"]["code"] == "NOT_FOUND_ERROR"
    method = client.delete("/missing")
    assert method.status_code == 405 and method.json["error"]["code"] == "BAD_REQUEST_ERROR"
    bad_json = client.post("/echo", data="{oops", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json["error"]["code"] == "BAD_REQUEST_ERROR"
    too_big = client.post("/echo", data=b"x" * (1024 * 1024 + 1), content_type="application/json")
    assert too_big.status_code == 413 and too_big.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_request_id_is_echoed_when_well_formed_and_generated_otherwise():
    client = _app().test_client()
    assert client.get("/missing", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = client.get("/missing", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert generated != "bad id with spaces" and len(generated) == 32


def test_events_from_task_reads_the_relays_json_text_and_older_lists():
    event = {"id": "evt_1", "event": "payment.success", "timestamp": 1, "merchant_id": "m", "data": {}}
    assert events_from_task('[{"id": "evt_1", "event": "payment.success", "timestamp": 1, "merchant_id": "m", "data": {}}]') == [event]
    assert events_from_task([event]) == [event]
    assert events_from_task(b"[]") == []
    # Not a JSON array: nothing to handle, and no exception for Celery to retry forever.
    assert events_from_task("[{") == []
    assert events_from_task('{"id": "evt_1"}') == []
    assert events_from_task(None) == []


def test_iso_formats_utc_seconds_from_any_zone():
    from datetime import UTC, datetime, timedelta, timezone

    from gateway_common.timeutil import iso

    assert iso(None) is None
    assert iso(datetime(2026, 1, 15, 10, 30, 0, 999999, tzinfo=UTC)) == "2026-01-15T10:30:00Z"
    assert iso(datetime(2026, 1, 15, 16, 0, 5, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == "2026-01-15T10:30:05Z"
    assert iso(datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-1)))) == "2026-01-01T01:00:00Z"


def test_services_refuse_to_start_with_the_public_gateway_secret_outside_test_mode(monkeypatch):
    monkeypatch.setenv("TEST_MODE", "false")
    monkeypatch.delenv("GATEWAY_SECRET", raising=False)
    with pytest.raises(ConfigError, match="GATEWAY_SECRET"):
        Settings.from_env("payments")
    monkeypatch.setenv("GATEWAY_SECRET", "dev-gateway-secret")
    with pytest.raises(ConfigError, match="GATEWAY_SECRET is the public development default"):
        Settings.from_env("payments")
    monkeypatch.setenv("GATEWAY_SECRET", "a-real-random-value")
    assert Settings.from_env("payments").gateway_secret == "a-real-random-value"
    # A local test-mode run keeps its working default.
    monkeypatch.setenv("TEST_MODE", "true")
    monkeypatch.delenv("GATEWAY_SECRET")
    assert Settings.from_env("payments").gateway_secret == "dev-gateway-secret"


@pytest.mark.parametrize("test_mode", ["true", "false"])
def test_an_empty_gateway_secret_is_refused(monkeypatch, test_mode):
    # Empty would match a request that sends no X-Gateway-Secret header at all.
    monkeypatch.setenv("TEST_MODE", test_mode)
    monkeypatch.setenv("GATEWAY_SECRET", " ")
    with pytest.raises(ConfigError, match="GATEWAY_SECRET is empty"):
        Settings.from_env("auth")


# ---------------------------------------------------------------- test controls


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("success", ("success", None)),
        ("failed", ("failed", None)),
        (" failed:CARD_DECLINED ", ("failed", "CARD_DECLINED")),
        ("failed:ABC", ("failed", "ABC")),
        ("failed:" + "A" * 40, ("failed", "A" * 40)),
    ],
)
def test_outcome_header_values(value, expected):
    from gateway_common.http.controls import parse_test_outcome

    parsed = parse_test_outcome(value, test_mode=True)
    assert (parsed if parsed is None else (parsed.status, parsed.error_code)) == expected


@pytest.mark.parametrize(
    "value", ["", "Success", "failed:", "failed:AB", "failed:_AB", "failed:A1B", "success:ABC", "failed:" + "A" * 41]
)
def test_bad_outcome_header_values_are_400(value):
    from gateway_common.errors import BadRequestError
    from gateway_common.http.controls import parse_test_outcome

    with pytest.raises(BadRequestError, match="X-Test-Outcome"):
        parse_test_outcome(value, test_mode=True)


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("0", 0), (" 250 ", 250), ("86400000", 86_400_000)])
def test_delay_header_values(value, expected):
    from gateway_common.http.controls import parse_test_delay_ms

    assert parse_test_delay_ms(value, test_mode=True) == expected


@pytest.mark.parametrize("value", ["", "-1", "86400001", "1.5", "1e3", "０", "999999999"])
def test_bad_delay_header_values_are_400(value):
    from gateway_common.errors import BadRequestError
    from gateway_common.http.controls import parse_test_delay_ms

    with pytest.raises(BadRequestError, match="X-Test-Delay-Ms"):
        parse_test_delay_ms(value, test_mode=True)


def test_controls_are_off_outside_test_mode_whatever_the_value():
    from gateway_common.errors import BadRequestError
    from gateway_common.http.controls import read_test_controls

    for sent in ({"X-Test-Outcome": "success"}, {"X-Test-Delay-Ms": "0"}, {"X-Test-Delay-Ms": "junk"}):
        with pytest.raises(BadRequestError, match=r"^Test controls are off$"):
            read_test_controls(sent.get, test_mode=False)
    assert read_test_controls({}.get, test_mode=False).outcome is None


def test_outcome_is_refused_where_only_the_delay_applies():
    from gateway_common.errors import BadRequestError
    from gateway_common.http.controls import read_test_controls

    with pytest.raises(BadRequestError, match="payments only"):
        read_test_controls({"X-Test-Outcome": "success"}.get, test_mode=True, outcome=False)
    assert read_test_controls({"X-Test-Delay-Ms": "7"}.get, test_mode=True, outcome=False).delay_ms == 7


def test_secret_box_round_trips_rotates_and_refuses_bad_keys():
    from gateway_common.secretbox import SecretBox, derive_key, new_key

    old, new = new_key(), new_key()
    token = SecretBox(old).encrypt("secret_test_xyz789")
    assert "secret_test_xyz789" not in token
    assert SecretBox(old).decrypt(token) == "secret_test_xyz789"
    # Rotation: the new key first encrypts; the old one, listed after it, still opens old tokens.
    rotated = SecretBox(f"{new},{old}")
    assert rotated.decrypt(token) == "secret_test_xyz789"
    assert SecretBox(new).decrypt(rotated.encrypt("x")) == "x"
    assert SecretBox(new).decrypt(token) is None
    assert SecretBox(old).decrypt(None) is None
    assert SecretBox(old).decrypt("not-a-token") is None
    for bad in ("", "short", "not base64 at all!"):
        with pytest.raises(ConfigError):
            SecretBox(bad)
    # Unset API_SECRET_KEY: derived from the gateway secret, so every service agrees on it.
    assert Settings(service="x", gateway_secret="g").api_secret_key == derive_key("g")
    assert SecretBox(derive_key("g")).decrypt(SecretBox(derive_key("g")).encrypt("s")) == "s"


def test_payment_signature_is_razorpays():
    expected = hmac.new(b"secret_test_xyz789", b"order_A|pay_B", hashlib.sha256).hexdigest()
    assert signing.payment_signature("secret_test_xyz789", "order_A", "pay_B") == expected


def test_razorpay_error_translation():
    from gateway_common import razorpay

    status, body = razorpay.translate_error(400, "BAD_REQUEST_ERROR", "amount: amount must be an integer between 100 and 9")
    assert status == 400
    assert body["error"]["code"] == "BAD_REQUEST_ERROR" and body["error"]["field"] == "amount"
    assert set(body["error"]) == {"code", "description", "source", "step", "reason", "metadata", "field"}
    assert razorpay.translate_error(400, "INVALID_VPA", "Invalid VPA")[1]["error"]["field"] == "vpa"
    assert razorpay.translate_error(404, "NOT_FOUND_ERROR", "Payment not found") == (400, razorpay.error_body(
        razorpay.ID_NOT_FOUND, reason="id_not_found"))
    for status_in, description in ((404, "The requested URL was not found"), (405, "Method not allowed")):
        status, body = razorpay.translate_error(status_in, "NOT_FOUND_ERROR", description)
        assert (status, body["error"]["description"]) == (400, razorpay.URL_NOT_FOUND)
    assert razorpay.translate_error(503, "SERVICE_UNAVAILABLE", "down")[1]["error"]["code"] == "SERVER_ERROR"
    assert razorpay.translate_error(409, "IDEMPOTENCY_KEY_IN_USE", "busy")[1]["error"]["reason"] == "idempotency_key_in_use"
    assert razorpay.collection([{"a": 1}]) == {"entity": "collection", "count": 1, "items": [{"a": 1}]}
    assert razorpay.notes({}) == [] and razorpay.notes({"k": "v"}) == {"k": "v"}
