"""Wire shapes of the refunds API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway_common.pagination import ListPageSchema
from gateway_common.schemas import RequestSchema, amount_field
from gateway_common.timeutil import iso
from marshmallow import Schema, ValidationError, fields, validate

REASON_MAX = 255


def _no_nul(value: str) -> None:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the driver.
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")


class UtcDateTime(fields.DateTime):
    """A timestamp written as ``2026-01-15T10:30:00Z``."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso(value)


class CreateRefundRequest(RequestSchema):
    amount = amount_field(1, metadata={"description": "Minor units; at most what is still refundable"})
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=REASON_MAX), _no_nul],
        metadata={"description": "Free text shown to the merchant, up to 255 characters"},
    )


class RefundSchema(Schema):
    id = fields.String(required=True, metadata={"example": "rfnd_Ab12Cd34Ef56Gh78"})
    payment_id = fields.String(required=True)
    merchant_id = fields.String(required=True)
    amount = fields.Integer(required=True)
    reason = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "processed"]})
    created_at = UtcDateTime(required=True)
    processed_at = UtcDateTime(allow_none=True)


class RefundListSchema(ListPageSchema):
    data = fields.List(fields.Nested(RefundSchema), required=True)


_refund_schema = RefundSchema()


def refund_resource(refund: object) -> dict:
    """Return the refund object exactly as ``GET /refunds/{id}`` answers it."""
    return _refund_schema.dump(refund)
