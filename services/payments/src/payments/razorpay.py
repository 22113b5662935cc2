"""Razorpay's API for orders and payments (``/razorpay/v1``): a translation over this service's use cases.

Requests are rewritten into the ``/api/v1`` bodies and validated by the same schemas; answers are
dumped in Razorpay's entities (unix times, ``entity``, the status map). No business rule lives here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from gateway_common import razorpay as rzp
from gateway_common.db import Database
from gateway_common.errors import BadRequestError
from gateway_common.http import current_merchant, require_gateway

from payments import service
from payments.models import AuthStatus, Order, Payment, PaymentStatus
from payments.schemas import CaptureRequest, CreateOrderRequest, CreatePaymentRequest, order_body, payment_body

blp = Blueprint("razorpay", __name__, url_prefix="/razorpay/v1")
blp.before_request(require_gateway)

_CREATE_ORDER = CreateOrderRequest()
_CREATE_PAYMENT = CreatePaymentRequest()
_CAPTURE = CaptureRequest()
# Razorpay fields we accept and do not keep (customer details, device details, callbacks).
_IGNORED_PAYMENT_FIELDS = frozenset(
    {"email", "contact", "customer_id", "save", "ip", "referer", "user_agent", "description", "notes",
     "callback_url", "authentication", "browser"}
)


def _db() -> Database:
    return current_app.extensions["db"]


# ---------------------------------------------------------------- entities


def payment_entity(payment: Payment) -> dict[str, Any]:
    """Dump a payment as Razorpay's payment entity."""
    return rzp.payment_entity(payment_body(payment))


def order_entity(order: Order, attempts: int) -> dict[str, Any]:
    """Dump an order as Razorpay's order entity."""
    return rzp.order_entity(order_body(order), attempts)


def _orders(merchant_id: str, orders: list[Order]) -> list[dict]:
    attempts = service.count_order_payments(_db(), merchant_id, [o.id for o in orders])
    return [order_entity(o, attempts.get(o.id, 0)) for o in orders]


# ---------------------------------------------------------------- orders


@blp.post("/orders")
def create_order() -> dict:
    """Create an order (Razorpay's body: amount, currency, receipt, notes)."""
    body = rzp.json_body()
    rzp.refuse_unknown(body, {"amount", "currency", "receipt", "notes", "payment_capture", "partial_payment"})
    if body.pop("partial_payment", False):
        raise BadRequestError("partial_payment: partial payments are not supported by this gateway")
    if body.pop("payment_capture", None) not in (None, 0, False, "0"):
        raise BadRequestError(
            "payment_capture: automatic capture is not supported by this gateway; capture with POST /payments/{id}/capture"
        )
    merchant_id = current_merchant()
    order = service.create_order(_db(), merchant_id, _CREATE_ORDER.load(body))
    return order_entity(order, 0)


@blp.get("/orders")
def list_orders() -> dict:
    """List the merchant's orders, newest first (count, skip, from, to)."""
    query = rzp.list_query()
    merchant_id = current_merchant()
    page = service.list_orders(_db(), merchant_id, query)
    return rzp.collection(_orders(merchant_id, page.items))


@blp.get("/orders/<order_id>")
def get_order(order_id: str) -> dict:
    """Return one of the merchant's orders."""
    merchant_id = current_merchant()
    return _orders(merchant_id, [service.get_order(_db(), merchant_id, order_id)])[0]


@blp.get("/orders/<order_id>/payments")
def order_payments(order_id: str) -> dict:
    """List every payment of one of the merchant's orders, newest first."""
    merchant_id = current_merchant()
    order = service.get_order(_db(), merchant_id, order_id)
    page = service.list_payments(_db(), merchant_id, {"limit": 100, "offset": 0, "q": order.id})
    return rzp.collection([payment_entity(p) for p in page.items if p.order_id == order.id])


# ---------------------------------------------------------------- payments


@blp.get("/payments")
def list_payments() -> dict:
    """List the merchant's payments, newest first (count, skip, from, to)."""
    query = rzp.list_query()
    page = service.list_payments(_db(), current_merchant(), query)
    return rzp.collection([payment_entity(p) for p in page.items])


@blp.get("/payments/<payment_id>")
def get_payment(payment_id: str) -> dict:
    """Return one of the merchant's payments."""
    return payment_entity(service.get_payment(_db(), current_merchant(), payment_id))


@blp.post("/payments/<payment_id>/capture")
def capture_payment(payment_id: str) -> dict:
    """Capture an authorized payment (``amount`` and ``currency`` must equal the payment's)."""
    body = rzp.json_body()
    rzp.refuse_unknown(body, {"amount", "currency"})
    captured = service.capture_payment(_db(), current_merchant(), payment_id, _CAPTURE.load(body))
    return payment_entity(captured)


def _create_s2s(body: dict, methods: tuple[str, ...]) -> dict:
    """Create a payment server to server from Razorpay's body; answer ``razorpay_payment_id`` and the next step."""
    rzp.refuse_unknown(
        body, {"amount", "currency", "order_id", "method", "vpa", "card", "upi"}, _IGNORED_PAYMENT_FIELDS
    )
    method = body.get("method")
    if method not in methods:
        raise BadRequestError(f"method: method must be one of: {', '.join(methods)}")
    if not body.get("order_id"):
        raise BadRequestError("order_id: The order id field is required.")
    ours: dict[str, Any] = {"order_id": body["order_id"], "method": method}
    for name in ("amount", "currency"):
        if name in body:
            ours[name] = body[name]
    if method == "upi":
        upi = body.get("upi") if isinstance(body.get("upi"), dict) else {}
        if upi.get("flow", "collect") != "collect":
            raise BadRequestError("upi.flow: only the collect flow is supported by this gateway")
        vpa = body.get("vpa", upi.get("vpa"))
        if vpa is not None:
            ours["vpa"] = vpa
    else:
        card = body.get("card")
        if not isinstance(card, dict):
            raise BadRequestError("card: The card field is required when method is card.")
        ours["card"] = {
            "number": card.get("number"),
            "expiry_month": card.get("expiry_month"),
            "expiry_year": card.get("expiry_year"),
            "cvv": card.get("cvv"),
            "holder_name": card.get("name"),
        }
    payment = service.create_payment(_db(), current_merchant(), _CREATE_PAYMENT.load(ours), require_order=True)
    if payment.authentication_required:
        return _otp_step(payment)
    return {
        "razorpay_payment_id": payment.id,
        # The simulated bank decides asynchronously: fetch the payment until it is authorized or failed.
        "next": [{"action": "poll", "url": f"{rzp.PREFIX}v1/payments/{payment.id}"}],
    }


def _otp_step(payment: Payment) -> dict:
    """Razorpay's native OTP step of a card payment awaiting its shopper's authentication."""
    base = f"{rzp.PREFIX}v1/payments/{payment.id}"
    return {
        "razorpay_payment_id": payment.id,
        "next": [{"action": "otp_submit", "url": f"{base}/otp/submit"}, {"action": "otp_resend", "url": f"{base}/otp/resend"}],
        # No issuer here, and the card's first digits (iin) are not kept.
        "metadata": {"issuer": None, "network": payment.card_network, "last4": payment.card_last4, "iin": None},
    }


def _awaiting_authentication(payment_id: str) -> Payment:
    """Return one of the merchant's payments that awaits its shopper's OTP, else Razorpay's 400."""
    payment = service.get_payment(_db(), current_merchant(), payment_id)
    if payment.auth_status != AuthStatus.PENDING:
        raise BadRequestError("Payment is not awaiting authentication: the OTP step is over, or the payment needs none")
    return payment


@blp.post("/payments/create/upi")
def create_upi_payment() -> dict:
    """Create a UPI collect payment for an order, server to server."""
    return _create_s2s(rzp.json_body(), ("upi",))


@blp.post("/payments/create/json")
def create_json_payment() -> dict:
    """Create a card (or UPI) payment for an order, server to server."""
    return _create_s2s(rzp.json_body(), ("card", "upi"))


# ---------------------------------------------------------------- native OTP (3-D Secure test card)


@blp.post("/payments/<payment_id>/otp_generate")
@blp.post("/payments/<payment_id>/otp/resend")
def otp_step(payment_id: str) -> dict:
    """Answer the OTP step again for a payment awaiting its OTP (the mock bank's OTP is always 1234)."""
    return _otp_step(_awaiting_authentication(payment_id))


@blp.post("/payments/<payment_id>/otp/submit")
def submit_otp(payment_id: str) -> tuple[dict, int] | dict:
    """Submit the shopper's OTP: 1234 lets the bank authorize the payment now; anything else fails it.

    Authorized: ``razorpay_payment_id``, ``razorpay_order_id`` and ``razorpay_signature``, as Razorpay
    answers. Failed: Razorpay's error envelope (400) with the payment's failure (``invalid_otp`` for a
    wrong OTP) and ``metadata.payment_id`` / ``order_id``.
    """
    merchant_id = current_merchant()
    # An unknown id (or another merchant's) is refused as Razorpay does before the body is looked at.
    service.get_payment(_db(), merchant_id, payment_id)
    body = rzp.json_body()
    rzp.refuse_unknown(body, {"otp"})
    otp = body.get("otp")
    if isinstance(otp, int) and not isinstance(otp, bool):
        otp = str(otp)
    if not isinstance(otp, str) or not 1 <= len(otp) <= 32 or "\x00" in otp:
        raise BadRequestError("otp: The otp field is required and must be a string of at most 32 characters.")
    payment = service.authenticate_payment(
        _db(), current_app.extensions["bank_config"], payment_id, otp, merchant_id=merchant_id
    )
    if payment.status != PaymentStatus.SUCCESS:
        return rzp.payment_error(payment_body(payment)), 400
    return {
        "razorpay_payment_id": payment.id,
        "razorpay_order_id": payment.order_id,
        "razorpay_signature": service.payment_signature(_db(), current_app.extensions["secret_box"], payment),
    }
