"""Razorpay's wire format: error envelope, collections, unix times, entities and webhook envelope.

Each service that owns Razorpay resources serves them from its own blueprint, built from its own
use cases. This module translates between two published contracts only: the API.md JSON of a
payment, order or refund (and of an event) into Razorpay's, so the ``/razorpay/v1`` routes and the
``razorpay`` webhook format say the same thing.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

from gateway_common.errors import BadRequestError

PREFIX = "/razorpay/"
URL_NOT_FOUND = "The requested URL was not found on the server."
ID_NOT_FOUND = "The id provided does not exist"
# Our codes that name the offending field when the description does not.
_FIELDS = {"INVALID_VPA": "vpa", "INVALID_CARD": "card", "EXPIRED_CARD": "card"}
_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.\[\]]*): ")


def unix(value: datetime | str | None) -> int | None:
    """Return a time (a datetime or API.md's ``2026-01-15T10:30:00Z``) as Unix seconds; None stays None."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int(value.timestamp()) if value is not None else None


def collection(items: list[dict]) -> dict:
    """Return Razorpay's list envelope."""
    return {"entity": "collection", "count": len(items), "items": items}


def notes(value: dict | None) -> dict | list:
    """Return notes as Razorpay writes them: an empty object is ``[]``."""
    return value if value else []


def error_body(
    description: str,
    *,
    code: str = "BAD_REQUEST_ERROR",
    field: str | None = None,
    source: str = "NA",
    step: str = "NA",
    reason: str = "NA",
    metadata: dict | None = None,
) -> dict:
    """Build Razorpay's error envelope."""
    return {
        "error": {
            "code": code,
            "description": description,
            "source": source,
            "step": step,
            "reason": reason,
            "metadata": metadata or {},
            "field": field,
        }
    }


def translate_error(status: int, code: str, description: str) -> tuple[int, dict]:
    """Turn an API.md error (status, code, description) into Razorpay's status and envelope."""
    if status >= 500:
        return status, error_body(description, code="SERVER_ERROR", source="internal", reason="server_error")
    if code == "NOT_FOUND_ERROR" or status == 405:
        # Razorpay answers unknown ids, unknown URLs and wrong methods with 400.
        url = status == 405 or description.startswith("The requested URL was not found")
        return 400, error_body(URL_NOT_FOUND if url else ID_NOT_FOUND, reason="NA" if url else "id_not_found")
    field = _FIELDS.get(code)
    match = _FIELD_PREFIX.match(description)
    if match:
        field = match.group(1)
    reason = "input_validation_failed" if code == "BAD_REQUEST_ERROR" else code.lower()
    if status == 401:
        reason = "authentication_failed"
    return status, error_body(description, field=field, source="business" if field is None else "NA", reason=reason)


def install(app: Flask) -> None:
    """Answer every error under ``/razorpay/`` (routing, validation, use case, unexpected) in Razorpay's envelope."""

    @app.after_request
    def _razorpay_errors(response: Response) -> Response:
        if response.status_code < 400 or not request.path.startswith(PREFIX) or not response.is_json:
            return response
        body = response.get_json(silent=True)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or "source" in error:
            return response
        status, translated = translate_error(
            response.status_code, str(error.get("code", "")), str(error.get("description", ""))
        )
        response.set_data(json.dumps(translated, separators=(",", ":")))
        response.status_code = status
        return response


def json_body() -> dict:
    """Return the request's JSON object (an empty body is ``{}``), else 400."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=False)
    if not isinstance(body, dict):
        raise BadRequestError("Request body must be a JSON object")
    return body


def refuse_unknown(body: dict, allowed: set[str], ignored: frozenset[str] = frozenset()) -> None:
    """Refuse fields Razorpay does not take here, as Razorpay words it; drop the accepted ones we ignore."""
    extra = sorted(set(body) - allowed - ignored)
    if extra:
        raise BadRequestError(f"{', '.join(extra)} is/are not required and should not be sent")
    for name in ignored:
        body.pop(name, None)


def list_query(max_count: int = 100) -> dict[str, Any]:
    """Parse Razorpay's list parameters ``count``, ``skip``, ``from``, ``to`` (Unix seconds)."""
    args = request.args

    def integer(name: str, default: int | None, low: int, high: int) -> int | None:
        raw = args.get(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"-?[0-9]{1,12}", raw) or not low <= int(raw) <= high:
            raise BadRequestError(f"{name}: the {name} must be an integer between {low} and {high}")
        return int(raw)

    created_from = integer("from", None, 0, 4_102_444_800)
    created_to = integer("to", None, 0, 4_102_444_800)
    return {
        "limit": integer("count", 10, 1, max_count),
        "offset": integer("skip", 0, 0, 10_000_000),
        "created_from": datetime.fromtimestamp(created_from, UTC) if created_from is not None else None,
        "created_to": datetime.fromtimestamp(created_to, UTC) if created_to is not None else None,
    }


# ---------------------------------------------------------------- entities (from API.md JSON)

# API.md failure codes in Razorpay's terms: (code, source, step, reason).
_FAILURES = {
    "CARD_DECLINED": ("BAD_REQUEST_ERROR", "bank", "payment_authorization", "card_declined"),
    "INSUFFICIENT_FUNDS": ("BAD_REQUEST_ERROR", "customer", "payment_authorization", "insufficient_funds"),
    "EXPIRED_CARD": ("BAD_REQUEST_ERROR", "customer", "payment_initiation", "card_expired"),
    "INCORRECT_CVC": ("BAD_REQUEST_ERROR", "customer", "payment_authentication", "incorrect_cvv"),
    "AUTHENTICATION_FAILED": ("BAD_REQUEST_ERROR", "customer", "payment_authentication", "invalid_otp"),
    "AUTHENTICATION_CANCELLED": ("BAD_REQUEST_ERROR", "customer", "payment_authentication", "payment_cancelled"),
    "AUTHENTICATION_TIMEOUT": ("BAD_REQUEST_ERROR", "customer", "payment_authentication", "payment_timed_out"),
    "PROCESSING_ERROR": ("GATEWAY_ERROR", "gateway", "payment_authorization", "server_error"),
    "ORDER_ALREADY_PAID": ("BAD_REQUEST_ERROR", "business", "payment_authorization", "order_already_paid"),
}
_DEFAULT_FAILURE = ("BAD_REQUEST_ERROR", "bank", "payment_authorization", "payment_failed")


def payment_status(payment: dict) -> str:
    """Map an API.md payment to Razorpay's status: created, authorized, captured, refunded or failed."""
    if payment["status"] == "failed":
        return "failed"
    if payment["status"] != "success":
        return "created"
    if payment["amount_refunded"] >= payment["amount"]:
        return "refunded"
    return "captured" if payment["captured"] else "authorized"


def payment_error(payment: dict) -> dict:
    """Return Razorpay's error envelope (sent with 400) for a failed API.md payment, as a payment step answers it."""
    code, source, step, reason = _FAILURES.get(payment.get("error_code"), _DEFAULT_FAILURE)
    return error_body(
        payment.get("error_description") or "Payment failed",
        code=code,
        source=source,
        step=step,
        reason=reason,
        metadata={"payment_id": payment["id"], "order_id": payment.get("order_id")},
    )


def refund_status(payment: dict) -> str | None:
    """Return Razorpay's ``refund_status`` of an API.md payment: null, partial or full."""
    if payment["amount_refunded"] <= 0:
        return None
    return "full" if payment["amount_refunded"] >= payment["amount"] else "partial"


def payment_entity(payment: dict) -> dict[str, Any]:
    """Turn an API.md payment into Razorpay's payment entity."""
    failure = _FAILURES.get(payment["error_code"], _DEFAULT_FAILURE) if payment.get("error_code") else None
    card = payment["method"] == "card"
    return {
        "id": payment["id"],
        "entity": "payment",
        "amount": payment["amount"],
        "currency": payment["currency"],
        "status": payment_status(payment),
        "order_id": payment.get("order_id"),
        "invoice_id": None,
        "international": False,
        "method": payment["method"],
        "amount_refunded": payment["amount_refunded"],
        "refund_status": refund_status(payment),
        "captured": payment["captured"],
        "description": None,
        # No card entity here: a stable id per payment, and the card details Razorpay expands.
        "card_id": "card_" + payment["id"][4:18] if card else None,
        "card": {"entity": "card", "last4": payment.get("card_last4"), "network": payment.get("card_network")}
        if card
        else None,
        "bank": None,
        "wallet": None,
        "vpa": payment.get("vpa"),
        "email": None,
        "contact": None,
        "notes": [],
        "fee": None,
        "tax": None,
        "error_code": failure[0] if failure else None,
        "error_description": payment.get("error_description"),
        "error_source": failure[1] if failure else None,
        "error_step": failure[2] if failure else None,
        "error_reason": failure[3] if failure else None,
        "acquirer_data": {},
        "created_at": unix(payment["created_at"]),
    }


def refund_entity(refund: dict, currency: str | None) -> dict[str, Any]:
    """Turn an API.md refund into Razorpay's refund entity (API.md refunds carry no currency)."""
    return {
        "id": refund["id"],
        "entity": "refund",
        "amount": refund["amount"],
        "currency": currency,
        "payment_id": refund["payment_id"],
        "notes": {"reason": refund["reason"]} if refund.get("reason") else [],
        "receipt": None,
        "acquirer_data": {"arn": None},
        "created_at": unix(refund["created_at"]),
        "batch_id": None,
        "status": refund["status"],
        "speed_processed": "normal",
        "speed_requested": "normal",
    }


def order_entity(order: dict, attempts: int | None) -> dict[str, Any]:
    """Turn an API.md order into Razorpay's order entity (``attempts``: its payments so far, if known)."""
    paid = order["amount"] if order["status"] == "paid" else 0
    return {
        "id": order["id"],
        "entity": "order",
        "amount": order["amount"],
        "amount_paid": paid,
        "amount_due": order["amount"] - paid,
        "currency": order["currency"],
        "receipt": order.get("receipt"),
        "offer_id": None,
        "status": order["status"],
        "attempts": attempts,
        "notes": notes(order.get("notes")),
        "created_at": unix(order["created_at"]),
    }


# ---------------------------------------------------------------- webhook envelope

# Our event types that Razorpay has, by Razorpay's name (others are not sent in Razorpay's format).
WEBHOOK_EVENTS = {
    "payment.success": "payment.authorized",
    "payment.captured": "payment.captured",
    "payment.failed": "payment.failed",
    "order.paid": "order.paid",
    "refund.created": "refund.created",
    "refund.processed": "refund.processed",
    "webhook.test": "webhook.test",
}


def account_id(merchant_id: str) -> str:
    """Return the Razorpay-style account id of a merchant (stable, derived from its id)."""
    return "acc_" + merchant_id.replace("-", "")[:14]


def webhook_event(event: dict) -> dict | None:
    """Turn an event envelope (``id``, ``event``, ``timestamp``, ``merchant_id``, ``data``) into Razorpay's, or None."""
    name = WEBHOOK_EVENTS.get(event["event"])
    if name is None:
        return None
    data = event["data"]
    payload: dict[str, Any] = {}
    if isinstance(data.get("refund"), dict):
        payload["refund"] = {"entity": refund_entity(data["refund"], None)}
    if isinstance(data.get("payment"), dict):
        payload["payment"] = {"entity": payment_entity(data["payment"])}
    if isinstance(data.get("order"), dict):
        # order.paid: the order's payment count is not part of the event (its order is API.md's).
        payload["order"] = {"entity": order_entity(data["order"], None)}
    return {
        "entity": "event",
        "account_id": account_id(str(event["merchant_id"])),
        "event": name,
        "contains": list(payload),
        "payload": payload,
        "created_at": event["timestamp"],
    }
