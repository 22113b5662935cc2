"""Per-process resources of the payments worker: settings, database pool, Redis client, bank config."""

from __future__ import annotations

from gateway_common.workers import per_process, worker_resources

from payments.bank import BankConfig

# The sweeper, relay, refund reconciler and pruner loops beside the Celery pool's 8 threads.
_RESOURCES = worker_resources("payments", loop_connections=8)
settings = _RESOURCES.settings
database = _RESOURCES.database
redis_client = _RESOURCES.redis_client


@per_process
def bank_config() -> BankConfig:
    """Return the simulated bank's configuration."""
    return BankConfig.from_settings(settings())
