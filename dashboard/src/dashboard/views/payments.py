"""Payments and refunds: the transactions list, one payment's page with capture and refund, the refunds list."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from dashboard import formatting
from dashboard.client import GatewayError
from dashboard.security import login_required
from dashboard.views.common import Pager, _list_page, _page_request, _pager, api, api_or_none, bp

PAYMENT_STATUSES = ("pending", "processing", "success", "failed")
METHODS = ("upi", "card")
PAGE_SIZES = (10, 25, 50, 100)
PAYMENT_ID = re.compile(r"^pay_[A-Za-z0-9]{16}$")


def _payment_filters() -> dict[str, str]:
    status = request.args.get("status", "")
    method = request.args.get("method", "")
    q = request.args.get("q", "").strip()[:64]
    return {
        "status": status if status in PAYMENT_STATUSES else "",
        "method": method if method in METHODS else "",
        "q": q,
    }


def _list_payments() -> tuple[dict[str, Any], dict[str, str], Pager]:
    filters = _payment_filters()
    body, page = _list_page("/payments", _page_request(), filters)
    return body, filters, _pager("main.transactions", body, page, filters)


@bp.get("/dashboard/transactions")
@login_required
def transactions() -> str:
    """List payments newest first, with filters, search and pages."""
    body, filters, pager = _list_payments()
    return render_template(
        "transactions.html",
        payments=body.get("data", []),
        pager=pager,
        filters=filters,
        statuses=PAYMENT_STATUSES,
        methods=METHODS,
        page_sizes=PAGE_SIZES,
    )


@bp.get("/dashboard/api/payments")
@login_required
def transactions_json() -> dict[str, Any]:
    """Return the same page of payments as rendered rows, for the live update."""
    body, _filters, pager = _list_payments()
    return {
        "total": pager.total,
        "ids": [p.get("id") for p in body.get("data", [])],
        "rows": render_template("_payment_rows.html", payments=body.get("data", []), compact=False),
        "summary": render_template("_pager_summary.html", pager=pager, noun="payments"),
    }


def _payment_id(payment_id: str) -> str:
    if not PAYMENT_ID.match(payment_id):
        raise GatewayError(404, "NOT_FOUND_ERROR", "No payment with this id")
    return payment_id


@bp.get("/dashboard/transactions/<payment_id>")
@login_required
def payment_detail(payment_id: str) -> str:
    """Show one payment with its refunds, webhook deliveries and the actions it allows."""
    payment = api("GET", f"/payments/{_payment_id(payment_id)}")
    refunds_body, refunds_error = api_or_none("GET", f"/payments/{payment_id}/refunds", params={"limit": 100})
    refunds = (refunds_body or {}).get("data", [])
    deliveries_body, deliveries_error = api_or_none("GET", "/webhooks", params={"payment_id": payment_id, "limit": 20})
    reserved = sum(int(r.get("amount") or 0) for r in refunds if r.get("status") != "failed")
    refundable = max(int(payment.get("amount") or 0) - max(reserved, int(payment.get("amount_refunded") or 0)), 0)
    return render_template(
        "payment.html",
        payment=payment,
        refunds=refunds,
        refunds_error=refunds_error,
        deliveries=(deliveries_body or {}).get("data", []),
        deliveries_error=deliveries_error,
        can_capture=payment.get("status") == "success" and not payment.get("captured"),
        can_refund=payment.get("status") == "success" and refundable > 0,
        refundable=refundable,
        pending_refunds=sum(int(r.get("amount") or 0) for r in refunds if r.get("status") == "pending"),
        idempotency_key=uuid.uuid4().hex,
    )


def _idempotency_header() -> dict[str, str]:
    key = request.form.get("idempotency_key", "")
    return {"Idempotency-Key": key} if 0 < len(key) <= 64 and key.isalnum() else {}


@bp.post("/dashboard/transactions/<payment_id>/capture")
@login_required
def capture_payment(payment_id: str) -> Response:
    """Capture a successful payment."""
    path = f"/payments/{_payment_id(payment_id)}/capture"
    try:
        api("POST", path, json={}, headers=_idempotency_header())
    except GatewayError as exc:
        if exc.status == 404:
            raise
        flash(f"Capture failed: {exc.description}", "error")
    else:
        flash("Payment captured.", "success")
    return redirect(url_for("main.payment_detail", payment_id=payment_id))


@bp.post("/dashboard/transactions/<payment_id>/refunds")
@login_required
def create_refund(payment_id: str) -> Response:
    """Refund part or all of a payment (amount typed in rupees)."""
    _payment_id(payment_id)
    target = url_for("main.payment_detail", payment_id=payment_id)
    currency = request.form.get("currency", "INR")
    try:
        amount = formatting.rupees_to_paise(request.form.get("amount", ""), currency)
    except ValueError as exc:
        flash(f"Refund not created: {exc}", "error")
        return redirect(target)
    body: dict[str, Any] = {"amount": amount}
    reason = request.form.get("reason", "").strip()[:255]
    if reason:
        body["reason"] = reason
    try:
        refund = api("POST", f"/payments/{payment_id}/refunds", json=body, headers=_idempotency_header())
    except GatewayError as exc:
        if exc.status == 404:
            raise
        flash(f"Refund not created: {exc.description}", "error")
    else:
        amount_text = formatting.format_amount(int(refund.get("amount", amount)), currency)
        flash(f"Refund {refund.get('id')} of {amount_text} created; it is processed in a few seconds.", "success")
    return redirect(target)


# --- refunds ----------------------------------------------------------------------------------


@bp.get("/dashboard/refunds")
@login_required
def refunds() -> str:
    """List refunds newest first."""
    body, page = _list_page("/refunds", _page_request(), {})
    return render_template("refunds.html", refunds=body.get("data", []), pager=_pager("main.refunds", body, page, {}))
