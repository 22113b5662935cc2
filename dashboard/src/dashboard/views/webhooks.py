"""Webhooks: the URL and signing secret, the endpoints, the delivery log and its retries."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from dashboard.client import GatewayError
from dashboard.security import login_required
from dashboard.views.common import LOG_ID, Pager, _list_page, _page_request, _pager, api, bp


def _list_webhooks() -> tuple[dict[str, Any], Pager]:
    body, page = _list_page("/webhooks", _page_request(default=10), {})
    return body, _pager("main.webhooks", body, page, {})


@bp.get("/dashboard/webhooks")
@login_required
def webhooks() -> str:
    """Show the webhook endpoint, its secret and the delivery log."""
    config = api("GET", "/webhooks/config")
    body, pager = _list_webhooks()
    endpoints = api("GET", "/webhook-endpoints").get("data", [])
    # The default endpoint (the URL above) is listed too; its secret is regenerated above, not rotated.
    defaults = [e["id"] for e in endpoints if config.get("webhook_url") and e["url"] == config["webhook_url"]]
    return render_template("webhooks.html", config=config, logs=body.get("data", []), pager=pager, endpoints=endpoints,
                           default_endpoint_id=defaults[0] if len(defaults) == 1 else None)


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


# --- webhook endpoints -----------------------------------------------------------------------


@bp.post("/dashboard/webhooks/endpoints")
@login_required
def add_endpoint() -> Response:
    """Add a webhook endpoint with its event filter."""
    events_field = [e.strip() for e in request.form.get("enabled_events", "*").split(",") if e.strip()] or ["*"]
    try:
        created = api("POST", "/webhook-endpoints", json={"url": request.form.get("url", "").strip(),
                                                           "enabled_events": events_field,
                                                           "format": request.form.get("format", "gateway")})
    except GatewayError as exc:
        flash(f"Endpoint not added: {exc.description}", "error")
    else:
        flash(f"Endpoint {created['id']} added. Its signing secret: {created['secret']}", "success")
    return _back_to_webhooks()


@bp.post("/dashboard/webhooks/endpoints/<endpoint_id>")
@login_required
def update_endpoint(endpoint_id: str) -> Response:
    """Change an endpoint's events or status, or rotate its secret."""
    if not LOG_ID.match(endpoint_id):
        abort(404)
    action = request.form.get("action", "")
    try:
        if action == "rotate":
            rotated = api("POST", f"/webhook-endpoints/{endpoint_id}/rotate-secret", json={})
            flash(f"New secret for {endpoint_id}: {rotated['secret']} (the old one signs too for 24 h)", "success")
        elif action in ("enable", "disable"):
            api("PATCH", f"/webhook-endpoints/{endpoint_id}", json={"status": f"{action}d"})
            flash(f"Endpoint {action}d.", "success")
        elif action == "events":
            events_field = [e.strip() for e in request.form.get("enabled_events", "").split(",") if e.strip()]
            api("PATCH", f"/webhook-endpoints/{endpoint_id}", json={"enabled_events": events_field})
            flash("Events saved.", "success")
        else:
            abort(400)
    except GatewayError as exc:
        flash(f"Endpoint not changed: {exc.description}", "error")
    return _back_to_webhooks()


def _back_to_webhooks() -> Response:
    return redirect(url_for("main.webhooks"))


def _call_and_say(method: str, path: str, failed: str, done: str, **kwargs: Any) -> Response:
    """Call the API, flash what came of it (its reason when it refused), and go back to the page."""
    try:
        api(method, path, **kwargs)
    except GatewayError as exc:
        flash(f"{failed}: {exc.description}", "error")
    else:
        flash(done, "success")
    return _back_to_webhooks()


@bp.post("/dashboard/webhooks/config")
@login_required
def save_webhook_config() -> Response:
    """Save the webhook URL (empty turns webhooks off)."""
    url = request.form.get("webhook_url", "").strip()
    return _call_and_say("PUT", "/webhooks/config", "Webhook URL not saved",
                         "Webhook URL saved." if url else "Webhook URL removed; no events will be sent.",
                         json={"webhook_url": url or None})


@bp.post("/dashboard/webhooks/regenerate-secret")
@login_required
def regenerate_webhook_secret() -> Response:
    """Issue a new webhook signing secret."""
    return _call_and_say("POST", "/webhooks/regenerate-secret", "Secret not regenerated",
                         "New webhook secret issued. Update your receiver before the next event.")


@bp.post("/dashboard/webhooks/test")
@login_required
def send_test_webhook() -> Response:
    """Send a webhook.test event to the configured URL."""
    return _call_and_say("POST", "/webhooks/test", "Test event not sent",
                         "Test event queued. Its delivery shows up in the log below.")


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
