"""Request schemas: strict types, unknown fields, amount range, currency and method."""

from __future__ import annotations

import marshmallow as ma
import pytest
from gateway_common.money import MAX_AMOUNT
from payments.schemas import CaptureRequest, CreateOrderRequest, CreatePaymentRequest, PublicPaymentRequest


def test_order_defaults():
    assert CreateOrderRequest().load({"amount": 100}) == {
        "amount": 100,
        "currency": "INR",
        "receipt": None,
        "notes": {},
    }


@pytest.mark.parametrize("amount", ["100", 100.5, True, 99, -100, 0, MAX_AMOUNT + 1, 10**30, None, [100], {"v": 1}])
def test_order_amount_must_be_an_integer_in_range(amount):
    with pytest.raises(ma.ValidationError) as info:
        CreateOrderRequest().load({"amount": amount})
    assert "amount" in info.value.messages


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 100, "currency": "XYZ"},
        {"amount": 100, "currency": "inr"},
        {"amount": 100, "extra": 1},
        {"amount": 100, "notes": "text"},
        {"amount": 100, "notes": {"k": {"nested": 1}}},
        {"amount": 100, "receipt": "r" * 41},
        {},
    ],
)
def test_bad_orders(body):
    with pytest.raises(ma.ValidationError):
        CreateOrderRequest().load(body)


def test_payment_shapes():
    upi = CreatePaymentRequest().load({"order_id": "order_x", "method": "upi", "vpa": "a@b"})
    assert upi == {"order_id": "order_x", "method": "upi", "vpa": "a@b"}
    short = CreatePaymentRequest().load(
        {"amount": 1000, "currency": "INR", "method": "upi", "vpa": "t@upi", "order_id": "order_12345"}
    )
    assert short["amount"] == 1000
    card = CreatePaymentRequest().load(
        {
            "amount": 1000,
            "method": "card",
            "card": {"number": "4111111111111111", "expiry_month": 12, "expiry_year": "2030", "cvv": "123"},
        }
    )
    assert card["card"]["expiry_month"] == 12


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": "order_x", "method": "netbanking"},
        {"order_id": "order_x"},
        {"method": "upi", "vpa": "a@b"},
        {"order_id": "order_x", "method": "upi", "vpa": "a@b", "amount": "100"},
        {"order_id": "order_x", "method": "upi", "vpa": "a@b", "amount": 100.5},
        {"order_id": "order_x", "method": "upi", "vpa": "a@b", "amount": 50},
        {"order_id": "order_x", "method": "upi", "vpa": "a@b", "currency": "ABC"},
        {"order_id": "order_x", "method": "upi", "vpa": "a@b", "surprise": True},
        {"order_id": 5, "method": "upi", "vpa": "a@b"},
        {"order_id": "order_x", "method": "upi", "vpa": "a@b", "card": {}},
        {"order_id": "order_x", "method": "card", "card": {"number": "4111111111111111", "pin": "1"}},
        {"order_id": "order_x", "method": "card", "card": "4111111111111111"},
        {"order_id": "order_x", "method": "card", "card": {"expiry_month": True}},
    ],
)
def test_bad_payments(body):
    with pytest.raises(ma.ValidationError):
        CreatePaymentRequest().load(body)


def test_public_payment_needs_an_order_and_may_carry_the_key():
    assert (
        PublicPaymentRequest().load({"order_id": "order_x", "method": "upi", "vpa": "a@b", "key": "key_1"})["key"]
        == "key_1"
    )
    with pytest.raises(ma.ValidationError):
        PublicPaymentRequest().load({"amount": 100, "method": "upi", "vpa": "a@b"})


def test_capture_amount_is_optional_but_strict():
    assert CaptureRequest().load({}) == {}
    with pytest.raises(ma.ValidationError):
        CaptureRequest().load({"amount": "500"})
