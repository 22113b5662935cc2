"""Auth service: merchants, API keys and dashboard sessions."""

from __future__ import annotations

from flask import Flask
from gateway_common.config import Settings, env_int
from gateway_common.http import add_health_route, create_base_app
from gateway_common.secretbox import SecretBox


def create_app(settings: Settings | None = None) -> Flask:
    """Create the auth service's Flask app."""
    from auth.api import blp, internal
    from auth.models import LoginThrottle

    settings = settings or Settings.from_env("auth")
    app, api = create_base_app(settings, title="Gateway auth service")
    db = settings.database("auth")
    app.extensions["db"] = db
    app.extensions["secret_box"] = SecretBox(settings.api_secret_key)
    app.extensions["login_throttle"] = LoginThrottle(
        max_failures=max(env_int("LOGIN_MAX_FAILURES", 10), 1),
        window_seconds=max(env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900), 1),
    )
    api.register_blueprint(blp)
    api.register_blueprint(internal)
    add_health_route(app, {"database": db.ping})
    return app
