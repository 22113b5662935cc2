"""HTTP routes of the payments service (thin: parse, call service, dump)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Response, current_app, g, jsonify, request
from flask.views import MethodView
from gateway_common import http
from gateway_common.db import Database
from gateway_common.http import Blueprint, current_merchant, note_unavailable, require_test_mode
from gateway_common.schemas import ErrorEnvelopeSchema, PageQuerySchema
from gateway_common.workers import alive_workers

from payments import service
from payments.schemas import (
    CaptureRequest,
    CreateOrderRequest,
    CreatePaymentRequest,
    JobsStatusSchema,
    OrderListSchema,
    OrderSchema,
    PaymentListQuery,
    PaymentListSchema,
    PaymentSchema,
    PublicOrderSchema,
    PublicPaymentRequest,
    PublicPaymentSchema,
    StatsQuery,
    StatsSchema,
    created_order_body,
    order_body,
    payment_body,
    public_order_body,
    public_payment_body,
)

log = logging.getLogger(__name__)

# Request schemas are passed as instances: webargs would otherwise build one per request.
blp = Blueprint("payments", __name__, url_prefix="/api/v1", description="Orders, payments and capture")
public = Blueprint("public", __name__, url_prefix="/api/v1", description="Checkout endpoints (no secret)")
ops = Blueprint("ops", __name__, description="Health and test endpoints")

# The one definition of a valid POST /payments body, shared with the WSGI fast path.
CREATE_PAYMENT_REQUEST = CreatePaymentRequest()
WORKERS = {"payments": "payments-worker", "refunds": "refunds-worker", "webhooks": "webhooks-worker"}


def _db() -> Database:
    return current_app.extensions["db"]


def _redis() -> redis.Redis:
    return current_app.extensions["redis"]


def public_merchant() -> str:
    """Resolve the merchant of a checkout request from its public key (header or body ``key``)."""
    if "public_merchant" not in g:
        key = request.headers.get("X-Api-Key")
        if not key:
            body = request.get_json(silent=True)
            candidate = body.get("key") if isinstance(body, dict) else None
            key = candidate if isinstance(candidate, str) else None
        g.public_merchant = service.merchant_for_public_key(_db(), key)
    return g.public_merchant


def once_per_key(scope: Callable[[], str]) -> Callable:
    """Make a view honour ``Idempotency-Key`` (scoped by ``scope()``; card data never fingerprinted)."""
    return http.once_per_key("payments", scope, canonical=service.idempotency_form)


def _page(items: list[dict], page: service.Page) -> dict:
    return {"data": items, "total": page.total, "limit": page.limit, "offset": page.offset}


# ---------------------------------------------------------------- orders


@blp.route("/orders")
class Orders(MethodView):
    @once_per_key(current_merchant)
    @blp.arguments(CreateOrderRequest())
    @blp.alt_response(201, schema=OrderSchema, success=True, description="The created order")
    @blp.alt_response(400, schema=ErrorEnvelopeSchema)
    def post(self, body: dict) -> tuple[dict, int]:
        """Create an order."""
        order = service.create_order(_db(), current_merchant(), body)
        return created_order_body(order), 201

    @blp.arguments(PageQuerySchema(), location="query")
    @blp.alt_response(200, schema=OrderListSchema, success=True)
    def get(self, query: dict) -> dict:
        """List the merchant's orders, newest first."""
        page = service.list_orders(_db(), current_merchant(), query["limit"], query["offset"])
        return _page([order_body(o) for o in page.items], page)


@blp.route("/orders/<order_id>")
class OrderById(MethodView):
    @blp.alt_response(200, schema=OrderSchema, success=True)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema)
    def get(self, order_id: str) -> dict:
        """Return one of the merchant's orders."""
        return order_body(service.get_order(_db(), current_merchant(), order_id))


@public.route("/orders/<order_id>/public")
class PublicOrderView(MethodView):
    @public.alt_response(200, schema=PublicOrderSchema, success=True)
    @public.alt_response(404, schema=ErrorEnvelopeSchema)
    def get(self, order_id: str) -> dict:
        """Return what the checkout page may show of an order."""
        return public_order_body(service.get_public_order(_db(), order_id))


# ---------------------------------------------------------------- payments


@blp.route("/payments")
class Payments(MethodView):
    @once_per_key(current_merchant)
    @blp.arguments(CREATE_PAYMENT_REQUEST)
    @blp.alt_response(201, schema=PaymentSchema, success=True, description="The payment, pending")
    @blp.alt_response(400, schema=ErrorEnvelopeSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema)
    def post(self, body: dict) -> tuple[dict, int]:
        """Create a payment; the simulated bank decides it asynchronously.

        Answers 201 with ``status: pending`` at once. With an ``order_id`` of this merchant the amount
        and currency come from the order (a given ``amount``/``currency`` must equal them; a paid order
        is refused with 400). Otherwise ``amount`` is required and ``order_id``, if given, is kept as the
        merchant's own reference. Invalid instruments answer INVALID_VPA, INVALID_CARD or EXPIRED_CARD
        and create nothing. The full card number and CVV are never stored or returned.
        """
        payment = service.create_payment(_db(), current_merchant(), body)
        return payment_body(payment), 201

    @blp.arguments(PaymentListQuery(), location="query")
    @blp.alt_response(200, schema=PaymentListSchema, success=True)
    def get(self, query: dict) -> dict:
        """List the merchant's payments, newest first (filters: status, method, q = payment or order id)."""
        page = service.list_payments(_db(), current_merchant(), query)
        return _page([payment_body(p) for p in page.items], page)


@blp.route("/payments/list")
class PaymentsList(MethodView):
    @blp.arguments(PaymentListQuery(), location="query")
    @blp.alt_response(200, schema=PaymentListSchema, success=True)
    def get(self, query: dict) -> dict:
        """List the merchant's payments (alias of GET /payments)."""
        page = service.list_payments(_db(), current_merchant(), query)
        return _page([payment_body(p) for p in page.items], page)


@blp.route("/payments/stats")
class PaymentStats(MethodView):
    @blp.arguments(StatsQuery(), location="query")
    @blp.alt_response(200, schema=StatsSchema, success=True)
    def get(self, query: dict) -> dict:
        """Summarise the merchant's payments for the dashboard."""
        return service.payment_stats(_db(), current_merchant(), query["days"])


@blp.route("/payments/<payment_id>")
class PaymentById(MethodView):
    @blp.alt_response(200, schema=PaymentSchema, success=True)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema)
    def get(self, payment_id: str) -> dict:
        """Return one of the merchant's payments."""
        return payment_body(service.get_payment(_db(), current_merchant(), payment_id))


@blp.route("/payments/<payment_id>/capture")
class Capture(MethodView):
    @once_per_key(current_merchant)
    @blp.arguments(CaptureRequest(), required=False)
    @blp.alt_response(200, schema=PaymentSchema, success=True)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Payment not in capturable state")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema)
    def post(self, body: dict, payment_id: str) -> dict:
        """Capture a successful payment (amount, if given, must equal the payment's)."""
        return payment_body(service.capture_payment(_db(), current_merchant(), payment_id, body))


@public.route("/payments/public")
class PublicPayments(MethodView):
    @once_per_key(public_merchant)
    @public.arguments(PublicPaymentRequest())
    @public.alt_response(201, schema=PaymentSchema, success=True)
    @public.alt_response(400, schema=ErrorEnvelopeSchema)
    @public.alt_response(401, schema=ErrorEnvelopeSchema)
    @public.alt_response(404, schema=ErrorEnvelopeSchema)
    def post(self, body: dict) -> tuple[dict, int]:
        """Create a payment from the checkout page (public key, no secret).

        The key comes from the ``X-Api-Key`` header or the body's ``key``; it must belong to the
        merchant of ``order_id`` (an existing order, else 404). Otherwise the same as POST /payments.
        """
        merchant = public_merchant()
        body.pop("key", None)
        payment = service.create_payment(_db(), merchant, body, require_order=True)
        return payment_body(payment), 201


@public.route("/payments/<payment_id>/public")
class PublicPaymentView(MethodView):
    @public.alt_response(200, schema=PublicPaymentSchema, success=True)
    @public.alt_response(404, schema=ErrorEnvelopeSchema)
    def get(self, payment_id: str) -> dict:
        """Return a payment's status for the checkout page."""
        return public_payment_body(service.get_public_payment(_db(), payment_id))


# ---------------------------------------------------------------- health and test


def _workers() -> dict[str, str]:
    alive = alive_workers(_redis(), current_app.extensions["gateway_settings"].pubsub_prefix)
    return {name: ("running" if alive.get(worker) else "stopped") for name, worker in WORKERS.items()}


@public.route("/test/jobs/status")
class JobsStatus(MethodView):
    @public.alt_response(200, schema=JobsStatusSchema, success=True)
    def get(self) -> dict:
        """Count payments by processing state and report whether the payments worker is alive."""
        require_test_mode()
        body: dict[str, Any] = service.job_counts(_db())
        try:
            body["worker_status"] = _workers()["payments"]
        except redis.exceptions.RedisError:
            body["worker_status"] = "stopped"
        return body


@ops.route("/health")
class Health(MethodView):
    def get(self) -> tuple[Response, int]:
        """Report the database, Redis and the workers (503 only if the database or Redis is down)."""
        body: dict[str, Any] = {"status": "healthy"}
        failed = False
        try:
            _db().ping()
            body["database"] = "connected"
        except Exception as error:
            note_unavailable(error)
            body["database"] = "disconnected"
            failed = True
        try:
            _redis().ping()
            body["redis"] = "connected"
            body["workers"] = _workers()
        except Exception as error:
            note_unavailable(error)
            body["redis"] = "disconnected"
            body["workers"] = dict.fromkeys(WORKERS, "unknown")
            failed = True
        if failed:
            body["status"] = "unhealthy"
        body["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return jsonify(body), (503 if failed else 200)
