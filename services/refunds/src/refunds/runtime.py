"""Per-process resources of the refunds worker: settings, database pool, Redis client."""

from __future__ import annotations

import redis
from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.workers import per_process

# The sweeper and relay loops share the pool with the Celery pool's threads.
LOOP_CONNECTIONS = 4


@per_process
def settings() -> Settings:
    """Return the service settings read from the environment."""
    return Settings.from_env("refunds")


@per_process
def database() -> Database:
    """Return the worker's database pool."""
    s = settings()
    return Database(s.service_database_url, maxconn=s.db_pool_max + LOOP_CONNECTIONS, application_name="refunds-worker")


@per_process
def redis_client() -> redis.Redis:
    """Return the worker's Redis client."""
    return redis.Redis.from_url(settings().redis_url)
