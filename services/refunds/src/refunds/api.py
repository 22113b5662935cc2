"""HTTP routes of the refunds service (thin: parse, call service, dump)."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from gateway_common.db import Database
from gateway_common.http import Blueprint, current_merchant, once_per_key, read_test_controls
from gateway_common.http.controls import DELAY_PARAMETER
from gateway_common.pagination import ListQuerySchema
from gateway_common.schemas import ErrorEnvelopeSchema

from refunds import models, service
from refunds.models import Refund
from refunds.schemas import CreateRefundRequest, RefundListSchema, RefundSchema

blp = Blueprint("refunds", __name__, url_prefix="/api/v1", description="Refunds of successful payments")


def _db() -> Database:
    return current_app.extensions["db"]


@blp.route("/payments/<string:payment_id>/refunds")
class PaymentRefunds(MethodView):
    @once_per_key("refunds")
    @blp.arguments(CreateRefundRequest)
    @blp.response(201, RefundSchema)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Bad amount, payment not successful, or over-refund")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown payment (or another merchant's)")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}}, DELAY_PARAMETER])
    def post(self, body: dict, payment_id: str) -> Refund:
        """Refund part or all of a successful payment.

        ``amount`` (minor units, at least 1) is required: unlike Razorpay there is no
        implicit full refund. Pending and processed refunds together never exceed the
        payment amount; a refund that does not fit answers 400 "Refund amount exceeds
        available amount". The refund is ``pending`` and becomes ``processed`` after
        3-5 s (``TEST_PROCESSING_DELAY`` ms in test mode); in test mode the header
        ``X-Test-Delay-Ms: 0..86400000`` sets this refund's delay (400 outside test mode).
        """
        settings = current_app.extensions["gateway_settings"]
        chosen = read_test_controls(request.headers.get, test_mode=settings.test_mode, outcome=False).delay_ms
        delay = models.processing_delay_ms(settings.test_mode, settings.test_processing_delay_ms, chosen)
        return service.create_refund(_db(), current_merchant(), payment_id, body["amount"], body.get("reason"), delay)

    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, RefundListSchema)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Bad query, or a cursor that is not in the list")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown payment (or another merchant's)")
    def get(self, query: dict, payment_id: str) -> dict:
        """List a payment's refunds, newest first (`starting_after`/`ending_before`: a refund of this payment)."""
        page = service.list_payment_refunds(_db(), current_merchant(), payment_id, query)
        return page.body(page.items)


@blp.route("/refunds")
class Refunds(MethodView):
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, RefundListSchema)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="Bad query, or a cursor that is not in the list")
    def get(self, query: dict) -> dict:
        """List the merchant's refunds, newest first (`starting_after`/`ending_before` page by refund id)."""
        page = service.list_refunds(_db(), current_merchant(), query)
        return page.body(page.items)


@blp.route("/refunds/<string:refund_id>")
class RefundView(MethodView):
    @blp.response(200, RefundSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="Unknown refund (or another merchant's)")
    def get(self, refund_id: str) -> Refund:
        """Return one refund; ``processed_at`` is set once it is processed."""
        return service.get_refund(_db(), current_merchant(), refund_id)
