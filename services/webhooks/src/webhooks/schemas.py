"""Wire shapes of the webhooks API."""

from __future__ import annotations

import marshmallow as ma
from gateway_common.schemas import PageQuerySchema, RequestSchema, UtcTimestamp
from marshmallow import Schema, fields, validate

from webhooks.models import MAX_ATTEMPTS

# Response schemas dump the service's objects (Endpoint, Delivery) directly: one definition of each shape.


class WebhookConfigSchema(Schema):
    webhook_url = fields.String(allow_none=True, required=True, attribute="url")
    webhook_secret = fields.String(required=True, attribute="secret")


class WebhookConfigUpdate(RequestSchema):
    # Length and scheme are checked by the service (one message for the API and the dashboard).
    webhook_url = fields.String(required=True, allow_none=True)


class WebhookSecretSchema(Schema):
    webhook_secret = fields.String(required=True, attribute="secret")


class DeliveryQuery(PageQuerySchema):
    class Meta:
        unknown = ma.EXCLUDE

    payment_id = fields.String(validate=validate.Length(min=1, max=64))


class DeliverySummary(Schema):
    id = fields.String(required=True)
    event = fields.String(required=True, attribute="event_type")
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    created_at = UtcTimestamp(required=True)
    last_attempt_at = UtcTimestamp(allow_none=True)
    next_retry_at = UtcTimestamp(allow_none=True)
    response_code = fields.Integer(allow_none=True)


class DeliveryList(Schema):
    data = fields.List(fields.Nested(DeliverySummary), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class DeliveryDetail(DeliverySummary):
    event_id = fields.String(required=True)
    payment_id = fields.String(allow_none=True)
    url = fields.String(required=True)
    max_attempts = fields.Integer(required=True, dump_default=MAX_ATTEMPTS)
    payload = fields.Dict(required=True)
    response_body = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)


class TestWebhookResponse(DeliverySummary):
    message = fields.String(required=True, dump_default="Test webhook scheduled")


class RetryResponse(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True)
    message = fields.String(required=True, dump_default="Webhook retry scheduled")
