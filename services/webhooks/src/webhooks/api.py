"""HTTP routes of the webhooks service (thin: parse, call service, dump)."""

from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from gateway_common.db import Database
from gateway_common.http import Blueprint, current_merchant
from gateway_common.schemas import ErrorEnvelopeSchema

from webhooks import service, stream
from webhooks.config import WebhookConfig
from webhooks.models import Delivery, Endpoint, Event
from webhooks.schemas import (
    DeliveryDetail,
    DeliveryList,
    DeliveryQuery,
    EndpointCreate,
    EndpointList,
    EndpointUpdate,
    EndpointWithSecret,
    EventDetail,
    EventList,
    EventQuery,
    ReplayRequest,
    ReplayResponse,
    ResendRequest,
    ResendResponse,
    RetryResponse,
    RotateSecretRequest,
    StreamQuery,
    TestWebhookResponse,
    WebhookConfigSchema,
    WebhookConfigUpdate,
    WebhookSecretSchema,
)

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1", description="Webhook endpoint, delivery logs, retries")


def _db() -> Database:
    return current_app.extensions["db"]


def _cfg() -> WebhookConfig:
    return current_app.extensions["webhook_config"]


def _dispatch() -> service.Dispatch:
    return current_app.extensions["webhook_dispatch"]


@blp.route("/webhooks/config")
class Config(MethodView):
    @blp.response(200, WebhookConfigSchema)
    def get(self) -> Endpoint:
        """Return the webhook URL and signing secret (created on first use)."""
        return service.get_config(_db(), current_merchant())

    @blp.arguments(WebhookConfigUpdate)
    @blp.response(200, WebhookConfigSchema)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Invalid or disallowed URL")
    def put(self, body: dict) -> Endpoint:
        """Set the webhook URL (null or "" removes it)."""
        return service.update_config(_db(), _cfg(), current_merchant(), body["webhook_url"], body.get("format"))


@blp.route("/webhooks/regenerate-secret")
class RegenerateSecret(MethodView):
    @blp.response(200, WebhookSecretSchema)
    def post(self) -> Endpoint:
        """Replace the signing secret; later attempts are signed with the new one."""
        return service.regenerate_secret(_db(), current_merchant())


@blp.route("/webhooks/test")
class TestWebhook(MethodView):
    @blp.response(202, TestWebhookResponse)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="No webhook URL configured")
    def post(self) -> Delivery:
        """Send a ``webhook.test`` event to the configured URL."""
        return service.send_test_webhook(_db(), _cfg(), current_merchant(), _dispatch(), _notify())


@blp.route("/webhooks")
class Deliveries(MethodView):
    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryList)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Bad query, or a cursor that is not in the list")
    def get(self, query: dict) -> dict:
        """List webhook logs, newest first (``payment_id`` narrows to one payment and its refunds).

        ``starting_after``/``ending_before`` page by log id (``whlog_...``).
        """
        page = service.list_deliveries(_db(), current_merchant(), query)
        return page.body(page.items)


@blp.route("/webhooks/<string:delivery_id>")
class DeliveryView(MethodView):
    @blp.response(200, DeliveryDetail)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown log or another merchant's")
    def get(self, delivery_id: str) -> Delivery:
        """Return one webhook log with its payload and last response (body truncated to 1 KiB)."""
        return service.get_delivery(_db(), current_merchant(), delivery_id)


@blp.route("/webhooks/<string:delivery_id>/retry")
class RetryView(MethodView):
    @blp.response(200, RetryResponse)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown log or another merchant's")
    def post(self, delivery_id: str) -> Delivery:
        """Reset the log's attempts to 0 and deliver it again."""
        return service.retry_delivery(_db(), _cfg(), current_merchant(), delivery_id, _dispatch())


def _notify() -> service.Notify:
    return current_app.extensions["event_notify"]


def _event_detail(event: Event, deliveries: list) -> dict:
    return {"id": event.id, "type": event.type, "created_at": event.created_at, "data": event.data,
            "deliveries": deliveries}


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(EventQuery, location="query")
    @blp.response(200, EventList)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Invalid filter or a cursor that names no event of yours")
    def get(self, query: dict) -> dict:
        """List events, newest first; ``type`` takes an exact type or ``payment.*``; cursor pagination."""
        page = service.list_events(_db(), current_merchant(), query)
        return {"data": page.items, "has_more": page.has_more}


@blp.route("/events/<string:event_id>")
class EventView(MethodView):
    @blp.response(200, EventDetail)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown event or another merchant's")
    def get(self, event_id: str) -> dict:
        """Return one event with its deliveries, one per endpoint."""
        return _event_detail(*service.get_event(_db(), current_merchant(), event_id))


@blp.route("/events/<string:event_id>/resend")
class ResendView(MethodView):
    @blp.arguments(ResendRequest)
    @blp.response(202, ResendResponse)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="No enabled endpoint subscribed, endpoint disabled, or its format lacks the event")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown event or endpoint, or another merchant's")
    def post(self, body: dict, event_id: str) -> dict:
        """Deliver an event again to one endpoint, or to every enabled endpoint subscribed to its type."""
        deliveries = service.resend_event(
            _db(), _cfg(), current_merchant(), event_id, body.get("endpoint_id"), _dispatch()
        )
        return {"event_id": event_id, "deliveries": deliveries}


@blp.route("/webhook-endpoints")
class EndpointsView(MethodView):
    @blp.response(200, EndpointList)
    def get(self) -> dict:
        """List webhook endpoints (the default one too, once it has a URL)."""
        return {"data": service.list_endpoints(_db(), current_merchant())}

    @blp.arguments(EndpointCreate)
    @blp.response(201, EndpointWithSecret)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Invalid or disallowed URL, or 16 endpoints already")
    def post(self, body: dict) -> Endpoint:
        """Add a webhook endpoint with its own Standard Webhooks secret and event filter."""
        endpoint, _ = service.create_endpoint(
            _db(), _cfg(), current_merchant(), body["url"], body["enabled_events"], body.get("description"),
            body["format"],
        )
        return endpoint


@blp.route("/webhook-endpoints/<string:endpoint_id>")
class EndpointView(MethodView):
    @blp.response(200, EndpointWithSecret)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown endpoint or another merchant's")
    def get(self, endpoint_id: str) -> Endpoint:
        """Return one webhook endpoint with its secret."""
        return service.get_endpoint(_db(), current_merchant(), endpoint_id)

    @blp.arguments(EndpointUpdate)
    @blp.response(200, EndpointWithSecret)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Invalid field")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown endpoint or another merchant's")
    def patch(self, body: dict, endpoint_id: str) -> Endpoint:
        """Change the URL, event filter, description or status (enabled, disabled)."""
        return service.update_endpoint(_db(), _cfg(), current_merchant(), endpoint_id, body)

    @blp.response(204)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown endpoint or another merchant's")
    def delete(self, endpoint_id: str) -> None:
        """Delete a webhook endpoint (the default one only loses its URL)."""
        service.delete_endpoint(_db(), current_merchant(), endpoint_id)


@blp.route("/webhook-endpoints/<string:endpoint_id>/rotate-secret")
class RotateSecretView(MethodView):
    @blp.arguments(RotateSecretRequest)
    @blp.response(200, EndpointWithSecret)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Invalid expiry, or the default endpoint")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown endpoint or another merchant's")
    def post(self, body: dict, endpoint_id: str) -> Endpoint:
        """Give the endpoint a new secret; the old one signs too until it expires."""
        return service.rotate_endpoint_secret(
            _db(), current_merchant(), endpoint_id, body["expire_previous_in_seconds"]
        )


@blp.route("/webhook-endpoints/<string:endpoint_id>/replay")
class ReplayView(MethodView):
    @blp.arguments(ReplayRequest)
    @blp.response(202, ReplayResponse)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Invalid window or types, or endpoint disabled")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown endpoint or another merchant's")
    def post(self, body: dict, endpoint_id: str) -> dict:
        """Deliver the events of a time window to this endpoint again (all, or only the failed ones)."""
        replayed = service.replay_endpoint(
            _db(), _cfg(), current_merchant(), endpoint_id, created_gte=body.get("created_gte"),
            created_lte=body.get("created_lte"), types=body["types"], only_failed=body["only_failed"],
            dispatch=_dispatch(),
        )
        return {"replayed": replayed}


# The live stream is served by a process of its own (``create_stream_app``, behind nginx's
# ``/api/v1/events/stream``): each listener holds a thread for as long as it listens.
stream_blp = Blueprint("events_stream", __name__, url_prefix="/api/v1", description="The live event stream (SSE)")


@stream_blp.route("/events/stream")
class EventStream(MethodView):
    @stream_blp.arguments(StreamQuery, location="query")
    @stream_blp.doc(responses={"200": {"description": "Server-Sent Events: `id: <evt id>`, `event: <type>`, "
                                "`data: <webhook body>`; a comment heartbeat every 15 s",
                                "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    def get(self, query: dict) -> Response:
        """Stream the merchant's events as they happen; ``Last-Event-ID`` first sends every stored event after it."""
        messages = stream.listen(
            _db(), current_app.extensions["redis"], current_app.extensions["pubsub_prefix"], current_merchant(),
            stream.parse_types(query.get("types")), request.headers.get("Last-Event-ID"),
        )
        return Response(
            messages,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
