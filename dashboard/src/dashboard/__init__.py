"""Merchant dashboard: server-rendered pages over the public gateway API."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, request
from gateway_common.config import env_bool, env_int

from dashboard import formatting, security
from dashboard.client import GatewayClient

# A fixed key for local development so every gunicorn worker signs cookies the same way.
# Set DASHBOARD_SECRET_KEY to a long random value anywhere that is not a developer's machine.
DEV_SECRET_KEY = "dev-only-dashboard-secret-change-me"  # noqa: S105

log = logging.getLogger("dashboard")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the dashboard's Flask app."""
    from dashboard.views import bp

    app = Flask(__name__)
    secret_key = os.environ.get("DASHBOARD_SECRET_KEY") or DEV_SECRET_KEY
    if secret_key == DEV_SECRET_KEY:
        log.warning("DASHBOARD_SECRET_KEY is not set: using the development key (never do this in production)")
    gateway_url = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")
    app.config.update(
        SECRET_KEY=secret_key,
        GATEWAY_URL=gateway_url,
        # What the docs tell merchants to call; the dashboard itself may reach the gateway another way.
        PUBLIC_API_URL=os.environ.get("PUBLIC_API_ORIGIN", "http://localhost:8000").rstrip("/") + "/api/v1",
        PUBLIC_CHECKOUT_URL=os.environ.get("CHECKOUT_URL", "http://localhost:3001").rstrip("/"),
        POLL_INTERVAL_MS=env_int("DASHBOARD_POLL_INTERVAL_MS", 4000),
        SESSION_COOKIE_NAME="dashboard_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=env_bool("DASHBOARD_COOKIE_SECURE", default=False),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=64 * 1024,
        # Sent with logins so the gateway's per-IP login limit counts each shopper's/merchant's
        # address, not the dashboard's; shared with nginx only (not the gateway secret).
        DASHBOARD_FORWARD_SECRET=os.environ.get("DASHBOARD_FORWARD_SECRET", ""),
    )
    app.config.update(config or {})
    if not app.config["DASHBOARD_FORWARD_SECRET"]:
        log.warning("DASHBOARD_FORWARD_SECRET is not set: every dashboard login counts against the dashboard's own address")
    app.extensions["gateway"] = GatewayClient(app.config["GATEWAY_URL"])

    app.before_request(_assign_request_id)
    app.before_request(security.check_csrf)
    app.after_request(_security_headers)
    app.after_request(security.set_login_csrf_cookie)
    app.jinja_env.globals.update(csrf_token=security.csrf_token)
    app.jinja_env.filters.update(
        money=formatting.format_amount,
        money_compact=formatting.format_amount_compact,
        percent=formatting.format_percent,
        number=lambda n: f"{int(n or 0):,}",
    )
    app.register_blueprint(bp)
    return app


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if 0 < len(incoming) <= 128 and incoming.isascii() else "dash_" + secrets.token_hex(8)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if response.mimetype in ("text/html", "application/json"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
