"""Sessions: the landing redirect, the liveness probe, login and logout."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from dashboard.client import GatewayError
from dashboard.security import current_token, end_session, safe_next, start_session
from dashboard.views.common import SessionExpiredError, api, bp


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
