"""Marshmallow building blocks shared by every service's wire schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from gateway_common.money import MAX_AMOUNT


class StrictInteger(fields.Integer):
    """An integer field that refuses strings, floats and booleans."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: object) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class RequestSchema(ma.Schema):
    """Base for request bodies: unknown fields are an error."""

    class Meta:
        unknown = ma.RAISE


def amount_field(minimum: int, *, required: bool = True, **kwargs: object) -> StrictInteger:
    """Return an integer minor-units amount field with the gateway's range."""
    return StrictInteger(
        required=required,
        validate=validate.Range(
            min=minimum, max=MAX_AMOUNT, error=f"amount must be an integer between {minimum} and {MAX_AMOUNT}"
        ),
        **kwargs,
    )


class PageQuerySchema(ma.Schema):
    """``limit``/``offset`` query parameters of every list endpoint."""

    class Meta:
        unknown = ma.EXCLUDE

    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))


class ErrorEnvelopeDetailSchema(ma.Schema):
    code = fields.String(required=True)
    description = fields.String(required=True)


class ErrorEnvelopeSchema(ma.Schema):
    """The API.md error envelope, for the OpenAPI document."""

    error = fields.Nested(ErrorEnvelopeDetailSchema, required=True)
