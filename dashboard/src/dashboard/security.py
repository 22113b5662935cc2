"""Dashboard sessions and CSRF protection.

The Flask session cookie exists only while a merchant is logged in. Before login the
CSRF token of the login form lives in its own signed cookie (double submit), so a
failed login leaves no session behind.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from flask import Response, abort, current_app, g, redirect, request, session, url_for
from itsdangerous import BadSignature, URLSafeSerializer

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_CSRF_COOKIE = "dashboard_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _login_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="dashboard-login-csrf")


def _login_csrf_from_cookie() -> str | None:
    raw = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not raw:
        return None
    try:
        value = _login_serializer().loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def csrf_token() -> str:
    """Return the CSRF token for forms on this page (the session's, or the login form's)."""
    if current_token():
        token = session.get(CSRF_FIELD)
        if not token:
            token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
        return token
    if "login_csrf" not in g:
        existing = _login_csrf_from_cookie()
        g.login_csrf = existing or secrets.token_urlsafe(32)
        g.login_csrf_new = existing is None
    return g.login_csrf


def set_login_csrf_cookie(response: Response) -> Response:
    """Store a newly issued login-form CSRF token in its signed cookie."""
    if g.get("login_csrf_new"):
        config = current_app.config
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            _login_serializer().dumps(g.login_csrf),
            httponly=True,
            samesite=config["SESSION_COOKIE_SAMESITE"],
            secure=config["SESSION_COOKIE_SECURE"],
            path="/",
        )
    return response


def check_csrf() -> None:
    """Refuse any state-changing request whose CSRF token does not match this browser's."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = session.get(CSRF_FIELD) if current_token() else _login_csrf_from_cookie()
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(400, description="This form expired or did not come from the dashboard. Reload the page and try again.")


def start_session(token: str, merchant: dict[str, Any], expires_at: str) -> None:
    """Replace whatever session existed with a fresh logged-in one (no fixation)."""
    session.clear()
    session.permanent = True
    session["token"] = token
    session["merchant"] = {"id": merchant.get("id"), "name": merchant.get("name"), "email": merchant.get("email")}
    session["expires_at"] = expires_at
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def end_session() -> None:
    """Forget the logged-in merchant (Flask then deletes the cookie)."""
    session.clear()


def current_token() -> str | None:
    """Return the gateway session token of the logged-in merchant, if any."""
    return session.get("token")


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send visitors without a session to the login page (JSON endpoints answer 401)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_token():
            if request.path.startswith("/dashboard/api/"):
                return {"error": {"code": "AUTHENTICATION_ERROR", "description": "Log in again"}}, 401
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("main.login", next=target))
        return view(*args, **kwargs)

    return wrapped


def safe_next(target: str | None) -> str:
    """Return a same-site path to go to after login (never an absolute or protocol-relative URL)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("main.overview")
