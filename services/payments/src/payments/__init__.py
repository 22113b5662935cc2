"""Payments service: orders, payments, capture, checkout endpoints and the simulated bank."""

from __future__ import annotations

import redis
from flask import Flask
from gateway_common import razorpay as rzp
from gateway_common.config import Settings
from gateway_common.http import create_base_app
from gateway_common.secretbox import SecretBox

from payments.bank import BankConfig


def create_app(settings: Settings | None = None) -> Flask:
    """Create the payments service's Flask app."""
    from payments import fastpath, razorpay
    from payments.api import blp, ops, public

    settings = settings or Settings.from_env("payments")
    app, api = create_base_app(settings, title="Gateway payments service")
    app.extensions["db"] = settings.database("payments")
    app.extensions["secret_box"] = SecretBox(settings.api_secret_key)
    # The shopper's right OTP lets the bank decide a payment in the request that gives it.
    app.extensions["bank_config"] = BankConfig.from_settings(settings)
    app.extensions["redis"] = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    api.register_blueprint(blp)
    api.register_blueprint(public)
    api.register_blueprint(ops)
    # Razorpay's API: plain Flask routes, outside the OpenAPI document (docs/razorpay.md describes them).
    app.register_blueprint(razorpay.blp)
    rzp.install(app)
    fastpath.install(app)
    return app
