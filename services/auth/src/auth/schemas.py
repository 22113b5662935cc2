"""Wire shapes of the auth API."""

from __future__ import annotations

from gateway_common.schemas import RequestSchema, StrictInteger, UtcTimestamp
from marshmallow import Schema, fields, validate

from auth.models import CLOCK_MAX_ADVANCE


class LoginRequest(RequestSchema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class MerchantSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)


class LoginResponse(Schema):
    token = fields.String(required=True)
    merchant = fields.Nested(MerchantSchema, required=True)
    expires_at = fields.String(required=True)


class MerchantProfile(MerchantSchema):
    api_key = fields.String(allow_none=True)
    api_secret_hint = fields.String(allow_none=True)


class RotatedKeys(Schema):
    api_key = fields.String(required=True)
    api_secret = fields.String(required=True)


class TestMerchant(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    api_key = fields.String(required=True)
    seeded = fields.Boolean(required=True)


class LogoutResponse(Schema):
    message = fields.String(required=True)


class AdvanceClockRequest(RequestSchema):
    seconds = StrictInteger(
        required=True,
        validate=validate.Range(
            min=1, max=CLOCK_MAX_ADVANCE, error=f"seconds must be a whole number from 1 to {CLOCK_MAX_ADVANCE}"
        ),
        metadata={"description": "How far to move the merchant's clock ahead (at most 10 years per call)."},
    )


class TestClockSchema(Schema):
    now = UtcTimestamp(required=True, metadata={"description": "The merchant's clock (ISO 8601, UTC)."})
    offset_seconds = fields.Integer(required=True, metadata={"description": "How far it runs ahead of real time."})
