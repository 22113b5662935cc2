"""Wire shapes of the payments API (marshmallow); the serializers the API and events share are compiled from them."""

from __future__ import annotations

import math

import marshmallow as ma
from gateway_common.money import CURRENCIES
from gateway_common.pagination import ListPageSchema, ListQuerySchema
from gateway_common.schemas import RequestSchema, UtcTimestamp, amount_field, compile_dump
from marshmallow import Schema, fields, validate, validates_schema

from payments.models import Method, PaymentStatus

_CURRENCY = validate.OneOf(sorted(CURRENCIES), error="currency must be a supported ISO 4217 code")
_METHOD = validate.OneOf([m.value for m in Method], error="method must be one of: upi, card")
_STATUS = validate.OneOf(
    [s.value for s in PaymentStatus], error="status must be one of: pending, processing, success, failed"
)


class Text(fields.String):
    """A string PostgreSQL can store (no NUL characters)."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("Must not contain NUL characters.")
        return text


class NoteValue(fields.Field):
    """A notes value: a string (max 512), a finite number, a boolean or null."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> object:
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        if isinstance(value, str) and len(value) <= 512 and "\x00" not in value:
            return value
        raise ma.ValidationError("notes values must be strings (max 512 characters), numbers or booleans")


class StringOrInt(fields.Field):
    """A string or an integer (not a boolean), kept as given for the validators."""

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> object:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ma.ValidationError("Must be a string or an integer.")
        return value


# ---------------------------------------------------------------- requests


class CreateOrderRequest(RequestSchema):
    amount = amount_field(100)
    currency = fields.String(load_default="INR", validate=_CURRENCY)
    receipt = Text(load_default=None, allow_none=True, validate=validate.Length(max=40))
    notes = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=256)),
        values=NoteValue(allow_none=True),
        load_default=dict,
        validate=validate.Length(max=15, error="notes may have at most 15 keys"),
    )


class CardRequest(RequestSchema):
    # Presence and format are checked by the validators so they answer INVALID_CARD / EXPIRED_CARD.
    number = fields.String(load_default=None, validate=validate.Length(max=64))
    expiry_month = StringOrInt(load_default=None)
    expiry_year = StringOrInt(load_default=None)
    cvv = fields.String(load_default=None, validate=validate.Length(max=16))
    holder_name = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))


class CreatePaymentRequest(RequestSchema):
    order_id = Text(validate=validate.Length(min=1, max=64))
    method = fields.String(required=True, validate=_METHOD)
    vpa = Text(validate=validate.Length(max=255))
    card = fields.Nested(CardRequest)
    amount = amount_field(100, required=False)
    currency = fields.String(validate=_CURRENCY)

    @validates_schema
    def _shape(self, data: dict, **kwargs: object) -> None:
        if "order_id" not in data and "amount" not in data:
            raise ma.ValidationError("order_id or amount is required", "order_id")
        if data.get("method") == Method.UPI and "card" in data:
            raise ma.ValidationError("card is not allowed for method upi", "card")
        if data.get("method") == Method.CARD and "vpa" in data:
            raise ma.ValidationError("vpa is not allowed for method card", "vpa")


class PublicPaymentRequest(CreatePaymentRequest):
    order_id = Text(required=True, validate=validate.Length(min=1, max=64))
    key = Text(validate=validate.Length(min=1, max=128))


class CaptureRequest(RequestSchema):
    amount = amount_field(100, required=False)
    currency = fields.String(validate=_CURRENCY)


class PaymentListQuery(ListQuerySchema):
    status = fields.String(validate=_STATUS)
    method = fields.String(validate=_METHOD)
    q = Text(validate=validate.Length(max=64))


class StatsQuery(Schema):
    class Meta:
        unknown = ma.EXCLUDE

    days = fields.Integer(load_default=14, validate=validate.Range(min=1, max=366))


class AuthenticateRequest(RequestSchema):
    otp = Text(validate=validate.Length(min=1, max=32))
    cancel = fields.Boolean(truthy={True}, falsy={False})
    key = Text(validate=validate.Length(min=1, max=128))

    @validates_schema
    def _one_answer(self, data: dict, **kwargs: object) -> None:
        if data.get("cancel") and "otp" in data:
            raise ma.ValidationError("give either otp or cancel, not both", "otp")
        if not data.get("cancel") and "otp" not in data:
            raise ma.ValidationError("otp is required (or cancel: true)", "otp")


# ---------------------------------------------------------------- responses (OpenAPI)

_AUTHENTICATION = {
    "description": "Only for a card that needs the shopper's authentication (3-D Secure, test card "
    "4000000000003220): {required: true, status: pending | passed | failed | cancelled | timed_out, expires_at}. "
    "While pending, POST /payments/{id}/authenticate answers it.",
    "only_if": ("authentication_required", True),
    "example": {"required": True, "status": "pending", "expires_at": "2026-01-15T10:45:00Z"},
}


class OrderSchema(Schema):
    id = fields.String(required=True)
    merchant_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    receipt = Text(allow_none=True)
    notes = fields.Dict(required=True)
    status = fields.String(required=True)
    created_at = UtcTimestamp(required=True)
    updated_at = UtcTimestamp(metadata={"description": "not in the answer of POST /orders"})


class OrderListSchema(ListPageSchema):
    data = fields.List(fields.Nested(OrderSchema), required=True)


class PublicOrderSchema(Schema):
    id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)
    merchant_name = fields.String(allow_none=True)


class PaymentSchema(Schema):
    id = fields.String(required=True)
    order_id = fields.String(allow_none=True)
    merchant_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    method = fields.String(required=True)
    status = fields.String(required=True)
    vpa = fields.String(metadata={"description": "UPI payments only", "only_if": ("method", Method.UPI)})
    card_network = fields.String(metadata={"description": "card payments only", "only_if": ("method", Method.CARD)})
    card_last4 = fields.String(metadata={"description": "card payments only", "only_if": ("method", Method.CARD)})
    captured = fields.Boolean(required=True)
    captured_at = UtcTimestamp(allow_none=True)
    amount_refunded = fields.Integer(required=True)
    error_code = fields.String(allow_none=True)
    error_description = fields.String(allow_none=True)
    created_at = UtcTimestamp(required=True)
    updated_at = UtcTimestamp(required=True)
    authentication = fields.Dict(metadata=_AUTHENTICATION)


class PaymentListSchema(ListPageSchema):
    data = fields.List(fields.Nested(PaymentSchema), required=True)


class PublicPaymentSchema(Schema):
    id = fields.String(required=True)
    order_id = fields.String(allow_none=True)
    status = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    method = fields.String(required=True)
    error_code = fields.String(allow_none=True)
    error_description = fields.String(allow_none=True)
    authentication = fields.Dict(metadata=_AUTHENTICATION)
    razorpay_signature = fields.String(
        metadata={"description": 'Once successful (payment of an order): hex HMAC-SHA256 of "<order_id>|<payment_id>" keyed with the API secret'}
    )


class DailyStatsSchema(Schema):
    date = fields.String(required=True)
    count = fields.Integer(required=True)
    success_count = fields.Integer(required=True)
    amount = fields.Integer(required=True)
    success_rate = fields.Float(required=True)


class StatsSchema(Schema):
    total_transactions = fields.Integer(required=True)
    successful_transactions = fields.Integer(required=True)
    failed_transactions = fields.Integer(required=True)
    total_amount = fields.Integer(required=True)
    success_rate = fields.Float(required=True)
    currency = fields.String(required=True)
    daily = fields.List(fields.Nested(DailyStatsSchema), required=True)


class JobsStatusSchema(Schema):
    pending = fields.Integer(required=True)
    processing = fields.Integer(required=True)
    completed = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    worker_status = fields.String(required=True)


# ---------------------------------------------------------------- serializers
# Compiled from the schemas above (one definition of each shape): the API answers with them and
# the events carry exactly what GET /payments/{id} answers.

order_body = compile_dump(OrderSchema)
created_order_body = compile_dump(OrderSchema, exclude=("updated_at",))
public_order_body = compile_dump(PublicOrderSchema)
payment_body = compile_dump(PaymentSchema)
public_payment_body = compile_dump(PublicPaymentSchema, exclude=("razorpay_signature",))
