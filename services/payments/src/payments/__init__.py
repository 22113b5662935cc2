"""Payments service: orders, payments, capture, checkout endpoints and the simulated bank."""

from __future__ import annotations

import redis
from flask import Flask
from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.http import create_base_app


def create_app(settings: Settings | None = None) -> Flask:
    """Create the payments service's Flask app."""
    from payments import fastpath
    from payments.api import blp, ops, public

    settings = settings or Settings.from_env("payments")
    app, api = create_base_app(settings, title="Gateway payments service")
    app.extensions["db"] = Database(
        settings.service_database_url, maxconn=settings.db_pool_max, application_name="payments"
    )
    app.extensions["redis"] = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    api.register_blueprint(blp)
    api.register_blueprint(public)
    api.register_blueprint(ops)
    fastpath.install(app)
    return app
