"""Per-process resources of the webhooks worker: settings, config, database pool, Redis client, delivery engine."""

from __future__ import annotations

from gateway_common.workers import per_process, worker_resources

from webhooks import sender, service
from webhooks.config import WebhookConfig
from webhooks.engine import DeliveryEngine
from webhooks.stream import redis_notifier

# Celery task threads, the loops and the engine's starter and recorder share the pool;
# the engine's sender threads never touch the database.
_RESOURCES = worker_resources("webhooks", loop_connections=8)
settings = _RESOURCES.settings
database = _RESOURCES.database
redis_client = _RESOURCES.redis_client


@per_process
def config() -> WebhookConfig:
    """Return the delivery settings (timeouts, retries, concurrency)."""
    return WebhookConfig.from_settings(settings())


@per_process
def engine() -> DeliveryEngine:
    """Return the engine that attempts this process's claimed deliveries."""
    cfg = config()
    session = sender.make_session(allow_private=cfg.allow_private, pool_size=cfg.senders)
    return DeliveryEngine(database(), cfg, session, senders=cfg.senders, per_host=cfg.per_host)


@per_process
def notify() -> service.Notify:
    """Return what wakes the live streams of merchants with newly stored events."""
    return redis_notifier(redis_client(), settings().pubsub_prefix)
