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
from gateway_common.http import (
    Blueprint,
    RequestControls,
    current_merchant,
    note_unavailable,
    read_test_controls,
    require_test_mode,
)
from gateway_common.http.controls import DELAY_PARAMETER, OUTCOME_PARAMETER
from gateway_common.pagination import ListQuerySchema
from gateway_common.schemas import ErrorEnvelopeSchema
from gateway_common.workers import alive_workers

from payments import service
from payments.models import Payment
from payments.schemas import (
    AuthenticateRequest,
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


def _public_key() -> str | None:
    """The public API key of a checkout request: the ``X-Api-Key`` header, else the body's ``key``."""
    key = request.headers.get("X-Api-Key")
    if key:
        return key
    body = request.get_json(silent=True)
    candidate = body.get("key") if isinstance(body, dict) else None
    return candidate if isinstance(candidate, str) and candidate else None


def public_merchant() -> str:
    """Resolve the merchant of a checkout request: its public key (header or body ``key``), else its order."""
    if "public_merchant" not in g:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        g.public_merchant = service.merchant_for_checkout(_db(), _public_key(), body.get("order_id"))
    return g.public_merchant


def requested_controls() -> RequestControls:
    """Read the request's X-Test-Outcome and X-Test-Delay-Ms (400 outside test mode or when malformed)."""
    test_mode = current_app.extensions["gateway_settings"].test_mode
    return read_test_controls(request.headers.get, test_mode=test_mode)


def once_per_key(scope: Callable[[], str]) -> Callable:
    """Make a view honour ``Idempotency-Key`` (scoped by ``scope()``; card data never fingerprinted)."""
    return http.once_per_key("payments", scope, canonical=service.idempotency_form)


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

    @blp.arguments(ListQuerySchema(), location="query")
    @blp.alt_response(200, schema=OrderListSchema, success=True)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Bad query, or a cursor that is not in the list")
    def get(self, query: dict) -> dict:
        """List the merchant's orders, newest first (`starting_after`/`ending_before` page by id)."""
        page = service.list_orders(_db(), current_merchant(), query)
        return page.body([order_body(o) for o in page.items])


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
    @blp.doc(parameters=[OUTCOME_PARAMETER, DELAY_PARAMETER])
    def post(self, body: dict) -> tuple[dict, int]:
        """Create a payment; the simulated bank decides it asynchronously.

        Answers 201 with ``status: pending`` at once. With an ``order_id`` of this merchant the amount
        and currency come from the order (a given ``amount``/``currency`` must equal them; a paid order
        is refused with 400). Otherwise ``amount`` is required and ``order_id``, if given, is kept as the
        merchant's own reference. Invalid instruments answer INVALID_VPA, INVALID_CARD or EXPIRED_CARD
        and create nothing. The full card number and CVV are never stored or returned.
        """
        payment = service.create_payment(_db(), current_merchant(), body, controls=requested_controls())
        return payment_body(payment), 201

    @blp.arguments(PaymentListQuery(), location="query")
    @blp.alt_response(200, schema=PaymentListSchema, success=True)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Bad query, or a cursor that is not in the list")
    def get(self, query: dict) -> dict:
        """List the merchant's payments, newest first (filters: status, method, q = payment or order id).

        Page with ``starting_after``/``ending_before`` (a payment id from the list; ``has_more`` says
        whether more follow) or ``offset``. ``total`` is exact up to 10,000, then an estimate
        (``total_is_estimate``).
        """
        page = service.list_payments(_db(), current_merchant(), query)
        return page.body([payment_body(p) for p in page.items])


@blp.route("/payments/list")
class PaymentsList(MethodView):
    @blp.arguments(PaymentListQuery(), location="query")
    @blp.alt_response(200, schema=PaymentListSchema, success=True)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Bad query, or a cursor that is not in the list")
    def get(self, query: dict) -> dict:
        """List the merchant's payments (alias of GET /payments)."""
        page = service.list_payments(_db(), current_merchant(), query)
        return page.body([payment_body(p) for p in page.items])


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
    @public.doc(parameters=[OUTCOME_PARAMETER, DELAY_PARAMETER])
    def post(self, body: dict) -> tuple[dict, int]:
        """Create a payment from the checkout page (no secret; the order names the merchant).

        ``order_id`` (an existing order, else 404) is enough. A key, when given in the ``X-Api-Key``
        header or the body's ``key``, must be valid (else 401) and belong to the order's merchant
        (else 404). Otherwise the same as POST /payments.
        """
        merchant = public_merchant()
        body.pop("key", None)
        payment = service.create_payment(_db(), merchant, body, require_order=True, controls=requested_controls())
        return payment_body(payment), 201


def checkout_payment_body(payment: Payment) -> dict:
    """Dump what the checkout may see of a payment, with ``razorpay_signature`` once it succeeded."""
    body = public_payment_body(payment)
    signature = service.payment_signature(_db(), current_app.extensions["secret_box"], payment)
    if signature is not None:
        body["razorpay_signature"] = signature
    return body


@public.route("/payments/<payment_id>/public")
class PublicPaymentView(MethodView):
    @public.alt_response(200, schema=PublicPaymentSchema, success=True)
    @public.alt_response(404, schema=ErrorEnvelopeSchema)
    def get(self, payment_id: str) -> dict:
        """Return a payment's status for the checkout page.

        Once successful, a payment of an order also carries ``razorpay_signature`` (hex HMAC-SHA256 of
        ``"<order_id>|<payment_id>"`` keyed with the merchant's API secret), as Razorpay Checkout hands it over.
        """
        return checkout_payment_body(service.get_public_payment(_db(), payment_id))


def authenticating_merchant(payment_id: str) -> str:
    """Return the merchant of an authentication answer: its key's (header or body ``key``; 401 if invalid), else its payment's."""
    if "authenticating_merchant" not in g:
        key = _public_key()
        if key:
            g.authenticating_merchant = service.merchant_for_public_key(_db(), key)
        else:
            g.authenticating_merchant = service.get_public_payment(_db(), payment_id).merchant_id
    return g.authenticating_merchant


@public.route("/payments/<payment_id>/authenticate")
class Authenticate(MethodView):
    @once_per_key(lambda: authenticating_merchant(request.view_args["payment_id"]))
    @public.arguments(AuthenticateRequest())
    @public.alt_response(200, schema=PublicPaymentSchema, success=True, description="The payment, decided")
    @public.alt_response(400, schema=ErrorEnvelopeSchema, description="Not awaiting authentication, or timed out")
    @public.alt_response(401, schema=ErrorEnvelopeSchema)
    @public.alt_response(404, schema=ErrorEnvelopeSchema)
    def post(self, body: dict, payment_id: str) -> dict:
        """Answer the shopper's authentication (3-D Secure) of a payment: the mock bank page's OTP, or cancel.

        For a payment with ``authentication.status: pending`` (test card 4000000000003220). ``{"otp": "1234"}``
        passes and the bank decides the payment at once (it succeeds unless X-Test-Outcome chose otherwise);
        any other OTP fails it with AUTHENTICATION_FAILED; ``{"cancel": true}`` fails it with
        AUTHENTICATION_CANCELLED. Answers 200 with the payment as GET /payments/{id}/public shows it. Only the
        first answer counts: a later one (or a payment that needs none, or whose 15 minutes have passed: it
        fails with AUTHENTICATION_TIMEOUT) answers 400 and changes nothing. A key, when given (``X-Api-Key`` or
        the body's ``key``), must be the payment's merchant's (else 404).
        """
        merchant = authenticating_merchant(payment_id) if _public_key() else None
        payment = service.authenticate_payment(
            _db(),
            current_app.extensions["bank_config"],
            payment_id,
            None if body.get("cancel") else body["otp"],
            merchant_id=merchant,
        )
        return checkout_payment_body(payment)


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
