"""Webhooks service: endpoint config, signed deliveries on a durable retry schedule, logs."""

from __future__ import annotations

import redis
from flask import Flask
from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.http import add_health_route, create_base_app
from gateway_common.workers import make_celery


def create_app(settings: Settings | None = None) -> Flask:
    """Create the webhooks service's Flask app."""
    from webhooks.api import blp
    from webhooks.config import WebhookConfig
    from webhooks.tasks import celery_dispatch

    settings = settings or Settings.from_env("webhooks")
    app, api = create_base_app(settings, title="Gateway webhooks service")
    db = Database(settings.service_database_url, maxconn=settings.db_pool_max, application_name="webhooks")
    redis_client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    app.extensions["db"] = db
    app.extensions["webhook_config"] = WebhookConfig.from_settings(settings)
    app.extensions["webhook_dispatch"] = celery_dispatch(make_celery(settings, "webhooks-api"))
    api.register_blueprint(blp)
    add_health_route(app, {"database": db.ping, "redis": redis_client.ping})
    return app
