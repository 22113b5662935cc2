"""Celery worker of the webhooks service (queue ``webhooks``) with its sweeper, reconciler and heartbeat.

    celery -A webhooks.worker worker -Q webhooks -P threads -c 8 -n webhooks@%h
"""

from __future__ import annotations

import redis
from celery.signals import worker_shutdown
from gateway_common.config import Settings
from gateway_common.loops import Loop
from gateway_common.workers import heartbeat_loop, make_celery, run_loops_in_worker

from webhooks import service, tasks
from webhooks.reconcile import Reconciler

settings = Settings.from_env("webhooks")
app = make_celery(settings, "webhooks")
app.conf.task_default_queue = tasks.QUEUE
# Published events whose handle_events task was lost (Redis restart) are picked up this often.
RECONCILE_INTERVAL = 5.0
# On a warm shutdown, wait this long for attempts under way (the HTTP timeout plus margin).
SHUTDOWN_DRAIN_SECONDS = 8.0


def make_loops() -> list[Loop]:
    """Return the loops this worker runs: the due-delivery sweeper, the reconciler and the heartbeat."""
    rt = tasks.runtime(app)
    client = redis.Redis.from_url(settings.redis_url)
    return [
        Loop(
            name="webhooks-sweeper",
            # Claims only what the engine can start soon, so leases do not run out in its queue.
            step=lambda: service.dispatch_due(rt.db, rt.cfg, rt.dispatch, limit=min(rt.cfg.sweep_batch, rt.engine.capacity())),
            interval=rt.cfg.sweep_interval,
        ),
        Loop(
            name="webhooks-reconciler",
            step=Reconciler(rt.db, rt.cfg, rt.dispatch).step,
            interval=RECONCILE_INTERVAL,
        ),
        heartbeat_loop(client, settings.pubsub_prefix, "webhooks-worker"),
    ]


run_loops_in_worker(app, "webhooks", make_loops)


@worker_shutdown.connect
def _finish_attempts(**_: object) -> None:
    # Attempts already under way are finished and recorded rather than left to their leases.
    if tasks.has_runtime():
        tasks.runtime(app).engine.drain(timeout=SHUTDOWN_DRAIN_SECONDS)

