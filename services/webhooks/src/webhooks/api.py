"""HTTP routes of the webhooks service (thin: parse, call service, dump)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from gateway_common.db import Database
from gateway_common.http import Blueprint, current_merchant
from gateway_common.schemas import ErrorEnvelopeSchema

from webhooks import service
from webhooks.config import WebhookConfig
from webhooks.models import Delivery, Endpoint
from webhooks.schemas import (
    DeliveryDetail,
    DeliveryList,
    DeliveryQuery,
    RetryResponse,
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
        return service.update_config(_db(), _cfg(), current_merchant(), body["webhook_url"])


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
        return service.send_test_webhook(_db(), _cfg(), current_merchant(), _dispatch())


@blp.route("/webhooks")
class Deliveries(MethodView):
    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryList)
    def get(self, query: dict) -> dict:
        """List webhook logs, newest first (``payment_id`` narrows to one payment and its refunds)."""
        deliveries, total = service.list_deliveries(
            _db(), current_merchant(), query["limit"], query["offset"], query.get("payment_id")
        )
        return {"data": deliveries, "total": total, "limit": query["limit"], "offset": query["offset"]}


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
