"""Webhooks service: endpoints, stored events, signed deliveries on a durable retry schedule, logs, the live stream."""

from __future__ import annotations

from dataclasses import replace

import redis
from flask import Flask
from gateway_common.config import Settings, env_int, pool_from_env
from gateway_common.db import Database
from gateway_common.http import add_health_route, create_base_app
from gateway_common.workers import make_celery

# The stream process's pool: each read is one short transaction, so one connection serves every
# listener (the stack's connection budget counts it; see tools/stack.py).
STREAM_POOL_DEFAULT = 1


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)


def create_app(settings: Settings | None = None) -> Flask:
    """Create the webhooks service's Flask app."""
    from webhooks.api import blp, stream_blp
    from webhooks.config import WebhookConfig
    from webhooks.stream import redis_notifier
    from webhooks.tasks import celery_dispatch

    settings = settings or Settings.from_env("webhooks")
    app, api = create_base_app(settings, title="Gateway webhooks service")
    db = settings.database("webhooks")
    redis_client = _redis(settings)
    app.extensions["db"] = db
    app.extensions["webhook_config"] = WebhookConfig.from_settings(settings)
    app.extensions["webhook_dispatch"] = celery_dispatch(make_celery(settings, "webhooks-api"))
    app.extensions["redis"] = redis_client
    app.extensions["pubsub_prefix"] = settings.pubsub_prefix
    app.extensions["event_notify"] = redis_notifier(redis_client, settings.pubsub_prefix)
    api.register_blueprint(blp)
    # Served here too (and so in the service's OpenAPI document); nginx sends it to the stream process.
    api.register_blueprint(stream_blp)
    add_health_route(app, {"database": db.ping, "redis": redis_client.ping})
    return app


def stream_database(settings: Settings) -> Database:
    """Return the stream process's pool: ``WEBHOOKS_STREAM_DB_POOL_MAX`` connections (1 unless set)."""
    pool = replace(pool_from_env("WEBHOOKS_STREAM"), max_size=env_int("WEBHOOKS_STREAM_DB_POOL_MAX", STREAM_POOL_DEFAULT))
    return Database(settings.service_database_url, pool=pool, application_name="webhooks-stream")


def create_stream_app(settings: Settings | None = None) -> Flask:
    """Create the app of the stream process: ``GET /api/v1/events/stream`` and ``/health`` only."""
    from webhooks.api import stream_blp

    settings = settings or Settings.from_env("webhooks")
    app, api = create_base_app(settings, title="Gateway webhooks service: event stream")
    db = stream_database(settings)
    redis_client = _redis(settings)
    app.extensions["db"] = db
    app.extensions["redis"] = redis_client
    app.extensions["pubsub_prefix"] = settings.pubsub_prefix
    api.register_blueprint(stream_blp)
    add_health_route(app, {"database": db.ping, "redis": redis_client.ping})
    return app
