"""Auth service: merchants, API keys and dashboard sessions."""

from __future__ import annotations

from flask import Flask
from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.http import add_health_route, create_base_app


def create_app(settings: Settings | None = None) -> Flask:
    """Create the auth service's Flask app."""
    from auth.api import blp, internal

    settings = settings or Settings.from_env("auth")
    app, api = create_base_app(settings, title="Gateway auth service")
    db = Database(settings.service_database_url, maxconn=settings.db_pool_max, application_name="auth")
    app.extensions["db"] = db
    api.register_blueprint(blp)
    api.register_blueprint(internal)
    add_health_route(app, {"database": db.ping})
    return app
