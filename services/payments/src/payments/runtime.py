"""Per-process resources of the payments worker: settings, database pool, Redis client, bank config."""

from __future__ import annotations

import redis
from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.workers import per_process

from payments.bank import BankConfig

# Loops (sweeper, relay, heartbeat) plus the Celery pool's threads share the pool.
WORKER_POOL_MIN = 16


@per_process
def settings() -> Settings:
    """Return the service settings read from the environment."""
    return Settings.from_env("payments")


@per_process
def database() -> Database:
    """Return the worker's database pool."""
    s = settings()
    return Database(
        s.service_database_url, maxconn=max(s.db_pool_max, WORKER_POOL_MIN), application_name="payments-worker"
    )


@per_process
def redis_client() -> redis.Redis:
    """Return the worker's Redis client."""
    return redis.Redis.from_url(settings().redis_url, socket_timeout=5, socket_connect_timeout=3)


@per_process
def bank_config() -> BankConfig:
    """Return the simulated bank's configuration."""
    return BankConfig.from_settings(settings())
