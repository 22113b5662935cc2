"""Pages and form actions of the dashboard (thin: call the gateway API, render)."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from dashboard import formatting, snippets
from dashboard.client import GatewayError
from dashboard.security import current_token, end_session, login_required, safe_next, start_session

bp = Blueprint("main", __name__)

# The seeded test merchant's credentials are public (API.md), so the dashboard may reveal them.
TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_API_KEY = "key_test_abc123"
TEST_API_SECRET = "secret_test_xyz789"  # noqa: S105

PAYMENT_STATUSES = ("pending", "processing", "success", "failed")
METHODS = ("upi", "card")
PAGE_SIZES = (10, 25, 50, 100)
STATS_DAYS = 14
PAYMENT_ID = re.compile(r"^pay_[A-Za-z0-9]{16}$")
LOG_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SessionExpiredError(Exception):
    """The gateway no longer accepts this dashboard session's token."""


def api(method: str, path: str, **kwargs: Any) -> Any:
    """Call the gateway as the logged-in merchant; a 401 ends the session."""
    client = current_app.extensions["gateway"]
    try:
        return client.request(method, path, token=current_token(), request_id=g.request_id, **kwargs)
    except GatewayError as exc:
        if exc.status == 401:
            raise SessionExpiredError from exc
        raise


def api_or_none(method: str, path: str, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the gateway for an optional part of a page: return (body, None) or (None, error text)."""
    try:
        return api(method, path, **kwargs), None
    except SessionExpiredError:
        raise
    except GatewayError as exc:
        return None, exc.description


def wants_json() -> bool:
    """Tell whether this request is one of the page's background JSON calls."""
    return request.path.startswith("/dashboard/api/")


@bp.app_errorhandler(SessionExpiredError)
def session_expired(_: SessionExpiredError) -> Any:
    """Go back to the login page when the gateway says the token expired."""
    end_session()
    if wants_json():
        return {"error": {"code": "AUTHENTICATION_ERROR", "description": "Session expired"}}, 401
    return redirect(url_for("main.login", expired=1, next=request.path))


@bp.app_errorhandler(GatewayError)
def gateway_error(exc: GatewayError) -> Any:
    """Show a gateway error as a page (or JSON for background calls)."""
    status = exc.status if exc.status in (400, 404, 429) else 502 if exc.status < 500 else 503
    if wants_json():
        return {"error": {"code": exc.code, "description": exc.description}}, status
    title = "Not found" if exc.status == 404 else "Something went wrong"
    return render_template("error.html", title=title, message=exc.description, status=status), status


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Any:
    """Render framework errors (CSRF refusals, unknown pages) in the dashboard's look."""
    if wants_json():
        return {"error": {"code": "ERROR", "description": exc.description}}, exc.code
    title = {400: "Request refused", 404: "Page not found", 405: "Not allowed"}.get(exc.code or 500, exc.name)
    return render_template("error.html", title=title, message=exc.description, status=exc.code), exc.code


# --- sessions ---------------------------------------------------------------------------------


@bp.get("/")
def index() -> Response:
    """Send visitors to the overview (or the login page)."""
    return redirect(url_for("main.overview"))


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer liveness probes without touching the gateway."""
    return {"status": "ok"}


def client_address_headers() -> dict[str, str]:
    """Name the browser's address to the gateway, with the secret that makes nginx believe it."""
    secret = current_app.config.get("DASHBOARD_FORWARD_SECRET", "")
    if not secret or not request.remote_addr:
        return {}
    return {"X-Real-IP": request.remote_addr, "X-Dashboard-Secret": secret}


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Log in with the merchant's email and password."""
    if request.method == "GET":
        if current_token():
            return redirect(safe_next(request.args.get("next")))
        notice = None
        if request.args.get("expired"):
            notice = "Your session expired. Log in again."
        elif request.args.get("logged_out"):
            notice = "You have been logged out."
        return render_template("login.html", notice=notice, email="", next=request.args.get("next", ""))
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    target = request.form.get("next", "")
    if not email or not password:
        return render_template("login.html", error="Enter your email and password.", email=email, next=target), 400
    client = current_app.extensions["gateway"]
    try:
        body = client.post(
            "/auth/login", json={"email": email, "password": password}, request_id=g.request_id, headers=client_address_headers()
        )
    except GatewayError as exc:
        message = "Invalid email or password." if exc.status in (400, 401) else exc.description
        status = exc.status if exc.status in (401, 429) else 400
        return render_template("login.html", error=message, email=email, next=target), status
    start_session(body["token"], body.get("merchant") or {}, body.get("expires_at", ""))
    return redirect(safe_next(target))


@bp.post("/logout")
def logout() -> Response:
    """Revoke the gateway token and forget the session."""
    if current_token():
        # The session ends here either way; a token the gateway did not hear about expires on its own.
        with contextlib.suppress(GatewayError, SessionExpiredError):
            api("POST", "/auth/logout")
    end_session()
    return redirect(url_for("main.login", logged_out=1))


# --- overview ---------------------------------------------------------------------------------


def _stats() -> tuple[dict[str, Any] | None, str | None]:
    return api_or_none("GET", "/payments/stats", params={"days": STATS_DAYS})


def _credentials(merchant: dict[str, Any]) -> dict[str, Any]:
    is_test = merchant.get("id") == TEST_MERCHANT_ID and merchant.get("api_key") == TEST_API_KEY
    return {
        "api_key": merchant.get("api_key") or "—",
        "hint": merchant.get("api_secret_hint") or "••••••••",
        "revealable": TEST_API_SECRET if is_test else None,
    }


@bp.route("/dashboard", methods=["GET"])
@login_required
def overview() -> str:
    """Show API credentials, headline stats, the volume chart and the latest payments."""
    return _render_overview(new_keys=None)


@bp.post("/dashboard/rotate-keys")
@login_required
def rotate_keys() -> str:
    """Rotate the API key and secret and show the new secret once (no redirect, so it is never stored)."""
    keys = api("POST", "/merchant/rotate-keys")
    return _render_overview(new_keys=keys)


def _render_overview(new_keys: dict[str, Any] | None) -> str:
    merchant = api("GET", "/merchant")
    stats, stats_error = _stats()
    recent, recent_error = api_or_none("GET", "/payments", params={"limit": 8, "offset": 0})
    return render_template(
        "overview.html",
        merchant=merchant,
        credentials=_credentials(merchant),
        new_keys=new_keys,
        stats=stats,
        stats_error=stats_error,
        chart=formatting.chart_svg((stats or {}).get("daily") or [], (stats or {}).get("currency", "INR")),
        recent=(recent or {}).get("data", []),
        recent_error=recent_error,
    )


@bp.get("/dashboard/api/overview")
@login_required
def overview_json() -> dict[str, Any]:
    """Return fresh stats, chart and latest payments for the overview's live update."""
    stats = api("GET", "/payments/stats", params={"days": STATS_DAYS})
    recent = api("GET", "/payments", params={"limit": 8, "offset": 0})
    currency = stats.get("currency", "INR")
    return {
        "total_transactions": f"{int(stats.get('total_transactions') or 0):,}",
        "total_amount": formatting.format_amount(int(stats.get("total_amount") or 0), currency),
        "success_rate": formatting.format_percent(stats.get("success_rate")),
        "successful_transactions": f"{int(stats.get('successful_transactions') or 0):,}",
        "failed_transactions": f"{int(stats.get('failed_transactions') or 0):,}",
        "chart": str(formatting.chart_svg(stats.get("daily") or [], currency)),
        "rows": render_template("_payment_rows.html", payments=recent.get("data", []), compact=True),
    }


# --- transactions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pager:
    """Where a paginated list stands and the links around it."""

    total: int
    limit: int
    offset: int
    prev_url: str | None
    next_url: str | None

    @property
    def first(self) -> int:
        """Return the 1-based position of the first row shown."""
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        """Return the 1-based position of the last row shown."""
        return min(self.offset + self.limit, self.total)


def _page_args(default: int = 25) -> tuple[int, int]:
    limit = request.args.get("limit", type=int) or default
    limit = min(max(limit, 1), 100)
    offset = max(request.args.get("offset", type=int) or 0, 0)
    return limit, offset


def _pager(endpoint: str, body: dict[str, Any], limit: int, offset: int, filters: dict[str, str]) -> Pager:
    total = int(body.get("total") or 0)

    def link(new_offset: int) -> str:
        query = {k: v for k, v in filters.items() if v}
        query.update(limit=str(limit), offset=str(new_offset))
        return url_for(endpoint) + "?" + urlencode(query)

    prev_url = link(max(offset - limit, 0)) if offset > 0 else None
    next_url = link(offset + limit) if offset + limit < total else None
    return Pager(total=total, limit=limit, offset=offset, prev_url=prev_url, next_url=next_url)


def _payment_filters() -> dict[str, str]:
    status = request.args.get("status", "")
    method = request.args.get("method", "")
    q = request.args.get("q", "").strip()[:64]
    return {
        "status": status if status in PAYMENT_STATUSES else "",
        "method": method if method in METHODS else "",
        "q": q,
    }


def _list_payments() -> tuple[dict[str, Any], dict[str, str], int, int]:
    filters = _payment_filters()
    limit, offset = _page_args()
    body = api("GET", "/payments", params={"limit": limit, "offset": offset, **filters})
    return body, filters, limit, offset


@bp.get("/dashboard/transactions")
@login_required
def transactions() -> str:
    """List payments newest first, with filters, search and pages."""
    body, filters, limit, offset = _list_payments()
    return render_template(
        "transactions.html",
        payments=body.get("data", []),
        pager=_pager("main.transactions", body, limit, offset, filters),
        filters=filters,
        statuses=PAYMENT_STATUSES,
        methods=METHODS,
        page_sizes=PAGE_SIZES,
    )


@bp.get("/dashboard/api/payments")
@login_required
def transactions_json() -> dict[str, Any]:
    """Return the same page of payments as rendered rows, for the live update."""
    body, filters, limit, offset = _list_payments()
    pager = _pager("main.transactions", body, limit, offset, filters)
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
    limit, offset = _page_args()
    body = api("GET", "/refunds", params={"limit": limit, "offset": offset})
    return render_template(
        "refunds.html",
        refunds=body.get("data", []),
        pager=_pager("main.refunds", body, limit, offset, {}),
    )


# --- webhooks ---------------------------------------------------------------------------------


def _list_webhooks() -> tuple[dict[str, Any], Pager]:
    limit, offset = _page_args(default=10)
    body = api("GET", "/webhooks", params={"limit": limit, "offset": offset})
    return body, _pager("main.webhooks", body, limit, offset, {})


@bp.get("/dashboard/webhooks")
@login_required
def webhooks() -> str:
    """Show the webhook endpoint, its secret and the delivery log."""
    config = api("GET", "/webhooks/config")
    body, pager = _list_webhooks()
    return render_template("webhooks.html", config=config, logs=body.get("data", []), pager=pager)


@bp.get("/dashboard/api/webhooks")
@login_required
def webhooks_json() -> dict[str, Any]:
    """Return the current page of delivery logs as rendered rows, for the live update."""
    body, pager = _list_webhooks()
    return {
        "total": pager.total,
        "rows": render_template("_webhook_rows.html", logs=body.get("data", [])),
        "summary": render_template("_pager_summary.html", pager=pager, noun="deliveries"),
    }


def _back_to_webhooks() -> Response:
    return redirect(url_for("main.webhooks"))


@bp.post("/dashboard/webhooks/config")
@login_required
def save_webhook_config() -> Response:
    """Save the webhook URL (empty turns webhooks off)."""
    url = request.form.get("webhook_url", "").strip()
    try:
        api("PUT", "/webhooks/config", json={"webhook_url": url or None})
    except GatewayError as exc:
        flash(f"Webhook URL not saved: {exc.description}", "error")
    else:
        flash("Webhook URL saved." if url else "Webhook URL removed; no events will be sent.", "success")
    return _back_to_webhooks()


@bp.post("/dashboard/webhooks/regenerate-secret")
@login_required
def regenerate_webhook_secret() -> Response:
    """Issue a new webhook signing secret."""
    try:
        api("POST", "/webhooks/regenerate-secret")
    except GatewayError as exc:
        flash(f"Secret not regenerated: {exc.description}", "error")
    else:
        flash("New webhook secret issued. Update your receiver before the next event.", "success")
    return _back_to_webhooks()


@bp.post("/dashboard/webhooks/test")
@login_required
def send_test_webhook() -> Response:
    """Send a webhook.test event to the configured URL."""
    try:
        api("POST", "/webhooks/test")
    except GatewayError as exc:
        flash(f"Test event not sent: {exc.description}", "error")
    else:
        flash("Test event queued. Its delivery shows up in the log below.", "success")
    return _back_to_webhooks()


@bp.post("/dashboard/webhooks/<log_id>/retry")
@login_required
def retry_webhook(log_id: str) -> Response:
    """Deliver a logged webhook again."""
    if not LOG_ID.match(log_id):
        flash("Unknown delivery.", "error")
        return _back_to_webhooks()
    try:
        api("POST", f"/webhooks/{log_id}/retry")
    except GatewayError as exc:
        flash(f"Retry not scheduled: {exc.description}", "error")
    else:
        flash("Retry scheduled.", "success")
    return redirect(request.form.get("back") if _is_local(request.form.get("back")) else url_for("main.webhooks"))


def _is_local(path: str | None) -> bool:
    return bool(path) and path.startswith("/dashboard/") and not path.startswith("//")


# --- docs -------------------------------------------------------------------------------------


@bp.get("/dashboard/docs")
@login_required
def docs() -> str:
    """Show how to integrate: create an order, open checkout.js, verify webhooks."""
    merchant, _ = api_or_none("GET", "/merchant")
    merchant = merchant or {}
    is_test = merchant.get("id") == TEST_MERCHANT_ID and merchant.get("api_key") == TEST_API_KEY
    code = snippets.render(
        api=current_app.config["PUBLIC_API_URL"],
        checkout=current_app.config["PUBLIC_CHECKOUT_URL"].rstrip("/"),
        api_key=merchant.get("api_key") or "YOUR_API_KEY",
        api_secret=TEST_API_SECRET if is_test else "YOUR_API_SECRET",
    )
    return render_template("docs.html", code=code, api_url=current_app.config["PUBLIC_API_URL"])


@bp.app_context_processor
def layout_context() -> dict[str, Any]:
    """Give every template the logged-in merchant and the live-update interval."""
    return {
        "current_merchant": session.get("merchant") if current_token() else None,
        "poll_interval_ms": current_app.config["POLL_INTERVAL_MS"],
    }
