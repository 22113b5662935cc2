"""Wire shapes of the webhooks API."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma
from gateway_common.pagination import ListPageSchema, ListQuerySchema
from gateway_common.schemas import RequestSchema, StrictInteger, UtcTimestamp
from marshmallow import Schema, fields, validate

from webhooks.models import MAX_ATTEMPTS, BodyFormat

# Response schemas dump the service's objects (Endpoint, Delivery) directly: one definition of each shape.


_FORMAT_DOC = (
    '"gateway" (the default: {"id", "event", "timestamp", "data"}) or "razorpay" (Razorpay\'s event envelope and '
    "event names, for client.utility.verify_webhook_signature of Razorpay's SDKs; see docs/razorpay.md)"
)


class WebhookConfigSchema(Schema):
    webhook_url = fields.String(allow_none=True, required=True, attribute="url")
    webhook_secret = fields.String(required=True, attribute="secret")
    format = fields.String(required=True, metadata={"enum": [f.value for f in BodyFormat], "description": _FORMAT_DOC})


def _format_field(description: str, **kwargs: object) -> fields.String:
    return fields.String(
        validate=validate.OneOf([f.value for f in BodyFormat], error="format must be one of: gateway, razorpay"),
        metadata={"description": description + _FORMAT_DOC},
        **kwargs,
    )


class WebhookConfigUpdate(RequestSchema):
    # Length and scheme are checked by the service (one message for the API and the dashboard).
    webhook_url = fields.String(required=True, allow_none=True)
    format = _format_field("Unchanged when absent. ")


class WebhookSecretSchema(Schema):
    webhook_secret = fields.String(required=True, attribute="secret")


class DeliveryQuery(ListQuerySchema):
    class Meta:
        unknown = ma.EXCLUDE

    payment_id = fields.String(validate=validate.Length(min=1, max=64))


class DeliverySummary(Schema):
    id = fields.String(required=True)
    endpoint_id = fields.String(required=True)
    event = fields.String(required=True, attribute="event_type")
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    created_at = UtcTimestamp(required=True)
    last_attempt_at = UtcTimestamp(allow_none=True)
    next_retry_at = UtcTimestamp(allow_none=True)
    response_code = fields.Integer(allow_none=True)
    last_error = fields.String(
        allow_none=True,
        metadata={"description": 'Why the last attempt failed: "connection failed: [Errno 111] Connection refused", '
                  '"timed out after 5s", "HTTP 500", "endpoint disabled", ...; null after a success or before an attempt'},
    )


class DeliveryList(ListPageSchema):
    data = fields.List(fields.Nested(DeliverySummary), required=True)


class DeliveryDetail(DeliverySummary):
    event_id = fields.String(required=True)
    payment_id = fields.String(allow_none=True)
    url = fields.String(required=True)
    max_attempts = fields.Integer(required=True, dump_default=MAX_ATTEMPTS)
    payload = fields.Dict(required=True)
    response_body = fields.String(allow_none=True)


class TestWebhookResponse(DeliverySummary):
    message = fields.String(required=True, dump_default="Test webhook scheduled")


class RetryResponse(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True)
    message = fields.String(required=True, dump_default="Webhook retry scheduled")


# -- events and endpoints

EVENT_TYPE_PATTERN = validate.Regexp(
    r"^(\*|[a-z_]{1,40}\.\*|[a-z_]{1,40}\.[a-z_.]{1,40})$",
    error="must be an event type (payment.success), a category wildcard (payment.*) or *",
)


class Event(Schema):
    id = fields.String(required=True)
    type = fields.String(required=True)
    created_at = UtcTimestamp(required=True)
    data = fields.Dict(required=True)


class EventQuery(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    type = fields.String(validate=EVENT_TYPE_PATTERN)
    created_gte = fields.AwareDateTime(default_timezone=UTC)
    created_lte = fields.AwareDateTime(default_timezone=UTC)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    starting_after = fields.String(validate=validate.Length(min=1, max=64))
    ending_before = fields.String(validate=validate.Length(min=1, max=64))

    @ma.validates_schema
    def _one_cursor(self, data: dict, **_: object) -> None:
        if "starting_after" in data and "ending_before" in data:
            raise ma.ValidationError("give starting_after or ending_before, not both")


class EventList(Schema):
    data = fields.List(fields.Nested(Event), required=True)
    has_more = fields.Boolean(required=True)


class EventDeliverySchema(Schema):
    id = fields.String(required=True)
    endpoint_id = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    response_code = fields.Integer(allow_none=True)
    next_retry_at = UtcTimestamp(allow_none=True)
    error = fields.String(allow_none=True, attribute="last_error")


class EventDetail(Event):
    deliveries = fields.List(fields.Nested(EventDeliverySchema), required=True)


class ResendRequest(RequestSchema):
    endpoint_id = fields.String(validate=validate.Length(min=1, max=64))


class ResendResponse(Schema):
    event_id = fields.String(required=True)
    deliveries = fields.List(fields.String(), required=True)


_EVENTS_FIELD = {
    "validate": validate.Length(min=1, max=32),
}


class EndpointSchema(Schema):
    id = fields.String(required=True)
    url = fields.String(required=True)
    enabled_events = fields.List(fields.String(), required=True)
    description = fields.String(allow_none=True)
    status = fields.String(required=True)
    disabled_reason = fields.String(allow_none=True)
    format = fields.String(required=True, metadata={"enum": [f.value for f in BodyFormat], "description": _FORMAT_DOC})
    created_at = UtcTimestamp(required=True)


class EndpointWithSecret(EndpointSchema):
    secret = fields.String(required=True)


class EndpointList(Schema):
    data = fields.List(fields.Nested(EndpointSchema), required=True)


class EndpointCreate(RequestSchema):
    # Length and scheme of the URL are checked by the service (the SSRF policy).
    url = fields.String(required=True)
    enabled_events = fields.List(
        fields.String(validate=EVENT_TYPE_PATTERN), load_default=lambda: ["*"], **_EVENTS_FIELD
    )
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    format = _format_field("Default gateway. ", load_default=BodyFormat.GATEWAY.value)


class EndpointUpdate(RequestSchema):
    url = fields.String()
    enabled_events = fields.List(fields.String(validate=EVENT_TYPE_PATTERN), **_EVENTS_FIELD)
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    status = fields.String(validate=validate.OneOf(["enabled", "disabled"]))
    format = _format_field("Unchanged when absent. ")


class RotateSecretRequest(RequestSchema):
    expire_previous_in_seconds = StrictInteger(load_default=86400, validate=validate.Range(min=0, max=7 * 86400))


class ReplayRequest(RequestSchema):
    created_gte = fields.AwareDateTime(default_timezone=UTC, allow_none=True)
    created_lte = fields.AwareDateTime(default_timezone=UTC, allow_none=True)
    types = fields.List(fields.String(validate=EVENT_TYPE_PATTERN), load_default=list, validate=validate.Length(max=32))
    only_failed = fields.Boolean(load_default=False)


class ReplayResponse(Schema):
    replayed = fields.Integer(required=True)


class StreamQuery(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    types = fields.String(validate=[
        validate.Length(max=500),
        validate.Regexp(r"^(\*|[a-z_]{1,40}\.(\*|[a-z_.]{1,40}))(,(\*|[a-z_]{1,40}\.(\*|[a-z_.]{1,40})))*$",
                        error="types must be a comma-separated list of event types or wildcards (payment.*)"),
    ])
