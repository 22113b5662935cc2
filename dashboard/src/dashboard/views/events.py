"""Events: the list by type, one event with its deliveries, resending it."""

from __future__ import annotations

import json
import re

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from dashboard.client import GatewayError
from dashboard.security import login_required
from dashboard.views.common import LOG_ID, _list_page, _page_request, _pager, api, bp

EVENT_TYPE = re.compile(r"^(\*|[a-z_]{1,40}\.(\*|[a-z_.]{1,40}))$")
EVENT_TYPES = ("order.paid", "payment.*", "payment.created", "payment.pending", "payment.success", "payment.failed",
               "payment.captured", "refund.*", "refund.created", "refund.processed", "webhook.test",
               "webhook_endpoint.disabled")


@bp.get("/dashboard/events")
@login_required
def events() -> str:
    """List events newest first, by cursor, optionally of one type."""
    type_ = request.args.get("type", "")
    filters = {"type": type_} if EVENT_TYPE.match(type_) else {}
    body, page = _list_page("/events", _page_request(), filters)
    return render_template("events.html", events=body.get("data", []), event_type=filters.get("type", ""),
                           types=EVENT_TYPES, pager=_pager("main.events", body, page, filters))


@bp.get("/dashboard/events/<event_id>")
@login_required
def event_detail(event_id: str) -> str:
    """Show one event: its payload and its deliveries per endpoint."""
    if not LOG_ID.match(event_id):
        abort(404)
    event = api("GET", f"/events/{event_id}")
    return render_template("event.html", event=event, payload=json.dumps(event.get("data"), indent=2, ensure_ascii=False))


@bp.post("/dashboard/events/<event_id>/resend")
@login_required
def resend_event(event_id: str) -> Response:
    """Deliver an event again to every enabled endpoint subscribed to it."""
    if not LOG_ID.match(event_id):
        abort(404)
    try:
        api("POST", f"/events/{event_id}/resend", json={})
    except GatewayError as exc:
        flash(f"Not resent: {exc.description}", "error")
    else:
        flash("Event resent. Its deliveries below show the new attempts.", "success")
    return redirect(url_for("main.event_detail", event_id=event_id))
