"""Per-process resources of the webhooks worker: settings, config, database pool, Redis client, delivery engine."""

from __future__ import annotations

import redis
from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.workers import per_process

from webhooks import sender
from webhooks.config import WebhookConfig
from webhooks.engine import DeliveryEngine

# Celery task threads, the loops and the engine's starter and recorder share the pool;
# the engine's sender threads never touch the database.
WORKER_CONNECTIONS = 8


@per_process
def settings() -> Settings:
    """Return the service settings read from the environment."""
    return Settings.from_env("webhooks")


@per_process
def config() -> WebhookConfig:
    """Return the delivery settings (timeouts, retries, concurrency)."""
    return WebhookConfig.from_settings(settings())


@per_process
def database() -> Database:
    """Return the worker's database pool."""
    s = settings()
    return Database(
        s.service_database_url, maxconn=s.db_pool_max + WORKER_CONNECTIONS, application_name="webhooks-worker"
    )


@per_process
def redis_client() -> redis.Redis:
    """Return the worker's Redis client."""
    return redis.Redis.from_url(settings().redis_url)


@per_process
def engine() -> DeliveryEngine:
    """Return the engine that attempts this process's claimed deliveries."""
    cfg = config()
    session = sender.make_session(allow_private=cfg.allow_private, pool_size=cfg.senders)
    return DeliveryEngine(database(), cfg, session, senders=cfg.senders, per_host=cfg.per_host)
