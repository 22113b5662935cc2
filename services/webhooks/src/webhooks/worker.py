"""Celery worker of the webhooks service (queue ``webhooks``) with its sweeper, reconciler and heartbeat.

    celery -A webhooks.worker worker -Q webhooks -P threads -c 8 -n webhooks@%h
"""

from __future__ import annotations

from celery.signals import worker_shutdown
from gateway_common.loops import Loop
from gateway_common.workers import heartbeat_loop, make_celery, run_loops_in_worker

from webhooks import runtime, service
from webhooks.reconcile import Reconciler
from webhooks.tasks import QUEUE

app = make_celery(runtime.settings(), "webhooks")
app.conf.task_default_queue = QUEUE
app.conf.imports = ["webhooks.tasks"]
# Published events whose handle_events task was lost (Redis restart) are picked up this often.
RECONCILE_INTERVAL = 5.0
# On a warm shutdown, wait this long for attempts under way (the HTTP timeout plus margin).
SHUTDOWN_DRAIN_SECONDS = 8.0


def make_loops() -> list[Loop]:
    """Return the loops this worker runs: the due-delivery sweeper, the reconciler and the heartbeat."""
    db, cfg, engine = runtime.database(), runtime.config(), runtime.engine()
    return [
        Loop(
            name="webhooks-sweeper",
            # Claims only what the engine can start soon, so leases do not run out in its queue.
            step=lambda: service.dispatch_due(db, cfg, engine.submit, limit=min(cfg.sweep_batch, engine.capacity())),
            interval=cfg.sweep_interval,
        ),
        Loop(
            name="webhooks-reconciler",
            step=Reconciler(db, cfg, engine.submit).step,
            interval=RECONCILE_INTERVAL,
        ),
        heartbeat_loop(runtime.redis_client(), runtime.settings().pubsub_prefix, "webhooks-worker"),
    ]


run_loops_in_worker(app, "webhooks", make_loops)


@worker_shutdown.connect
def _finish_attempts(**_: object) -> None:
    # Attempts already under way are finished and recorded rather than left to their leases.
    if runtime.engine.built():
        runtime.engine().drain(timeout=SHUTDOWN_DRAIN_SECONDS)

