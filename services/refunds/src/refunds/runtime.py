"""Per-process resources of the refunds worker: settings, database pool, Redis client."""

from __future__ import annotations

from gateway_common.workers import worker_resources

# The sweeper, relay and pruner loops beside the Celery pool's threads.
_RESOURCES = worker_resources("refunds", loop_connections=4)
settings = _RESOURCES.settings
database = _RESOURCES.database
redis_client = _RESOURCES.redis_client
