"""Razorpay's API for refunds (``/razorpay/v1``): a translation over this service's use cases.

Requests are rewritten into the ``/api/v1`` bodies and validated by the same schema; answers are
Razorpay's refund entity (unix times, ``entity``). No business rule lives here.
"""

from __future__ import annotations

from flask import Blueprint, current_app
from gateway_common import razorpay as rzp
from gateway_common.db import Database
from gateway_common.http import current_merchant, require_gateway

from refunds import models, service
from refunds.errors import RefundNotFoundError
from refunds.models import Refund
from refunds.schemas import CreateRefundRequest, refund_resource

blp = Blueprint("razorpay", __name__, url_prefix="/razorpay/v1")
blp.before_request(require_gateway)

_CREATE_REFUND = CreateRefundRequest()
# Razorpay refund fields we accept and do not keep (every refund here is processed at normal speed).
_IGNORED = frozenset({"speed", "notes", "receipt"})


def _db() -> Database:
    return current_app.extensions["db"]


def _entities(merchant_id: str, refunds: list[Refund]) -> list[dict]:
    currencies = service.payment_currencies(_db(), merchant_id, sorted({r.payment_id for r in refunds}))
    return [rzp.refund_entity(refund_resource(r), currencies.get(r.payment_id)) for r in refunds]


@blp.post("/payments/<payment_id>/refund")
def create_refund(payment_id: str) -> dict:
    """Refund part of a payment, or (without ``amount``) all that is still refundable."""
    body = rzp.json_body()
    reason = body.get("notes", {}).get("reason") if isinstance(body.get("notes"), dict) else None
    rzp.refuse_unknown(body, {"amount"}, _IGNORED)
    merchant_id = current_merchant()
    if "amount" not in body:
        body["amount"] = service.refundable_amount(_db(), merchant_id, payment_id)
    if isinstance(reason, str):
        body["reason"] = reason
    data = _CREATE_REFUND.load(body)
    settings = current_app.extensions["gateway_settings"]
    delay = models.processing_delay_ms(settings.test_mode, settings.test_processing_delay_ms)
    refund = service.create_refund(_db(), merchant_id, payment_id, data["amount"], data.get("reason"), delay)
    return _entities(merchant_id, [refund])[0]


@blp.get("/payments/<payment_id>/refunds")
def payment_refunds(payment_id: str) -> dict:
    """List a payment's refunds, newest first (count, skip)."""
    query = rzp.list_query()
    merchant_id = current_merchant()
    page = service.list_payment_refunds(_db(), merchant_id, payment_id, query)
    return rzp.collection(_entities(merchant_id, page.items))


@blp.get("/payments/<payment_id>/refunds/<refund_id>")
def payment_refund(payment_id: str, refund_id: str) -> dict:
    """Return one refund of one of the merchant's payments."""
    merchant_id = current_merchant()
    refund = service.get_refund(_db(), merchant_id, refund_id)
    if refund.payment_id != payment_id:
        raise RefundNotFoundError()
    return _entities(merchant_id, [refund])[0]


@blp.get("/refunds")
def list_refunds() -> dict:
    """List the merchant's refunds, newest first (count, skip, from, to)."""
    query = rzp.list_query()
    merchant_id = current_merchant()
    page = service.list_refunds(_db(), merchant_id, query)
    return rzp.collection(_entities(merchant_id, page.items))


@blp.get("/refunds/<refund_id>")
def get_refund(refund_id: str) -> dict:
    """Return one of the merchant's refunds."""
    merchant_id = current_merchant()
    return _entities(merchant_id, [service.get_refund(_db(), merchant_id, refund_id)])[0]
