"""Refunds service: refunds of successful payments and the refund invariant."""

from __future__ import annotations

from flask import Flask
from gateway_common import razorpay as rzp
from gateway_common.config import Settings
from gateway_common.http import add_health_route, create_base_app


def create_app(settings: Settings | None = None) -> Flask:
    """Create the refunds service's Flask app."""
    from refunds import razorpay
    from refunds.api import blp

    settings = settings or Settings.from_env("refunds")
    app, api = create_base_app(settings, title="Gateway refunds service")
    db = settings.database("refunds")
    app.extensions["db"] = db
    api.register_blueprint(blp)
    # Razorpay's API: plain Flask routes, outside the OpenAPI document (docs/razorpay.md describes them).
    app.register_blueprint(razorpay.blp)
    rzp.install(app)
    add_health_route(app, {"database": db.ping})
    return app
