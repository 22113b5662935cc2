"""Celery worker of the webhooks service (queue ``webhooks``) with its sweeper, reconciler and heartbeat.

    celery -A webhooks.worker worker -Q webhooks -P threads -c 8 -n webhooks@%h
"""

from __future__ import annotations

from celery.signals import worker_shutdown
from gateway_common.loops import Loop
from gateway_common.metrics import Gauge
from gateway_common.workers import heartbeat_loop, make_celery, run_loops_in_worker, worker_gauges

from webhooks import runtime, service
from webhooks.reconcile import Reconciler
from webhooks.tasks import QUEUE

app = make_celery(runtime.settings(), "webhooks")
app.conf.task_default_queue = QUEUE
app.conf.imports = ["webhooks.tasks"]
# Published events whose handle_events task was lost (Redis restart) are picked up this often.
RECONCILE_INTERVAL = 5.0
# Events and deliveries past their retention are looked for this often.
PRUNE_INTERVAL = 60.0
# On a warm shutdown, wait this long for attempts under way (the HTTP timeout plus margin).
SHUTDOWN_DRAIN_SECONDS = 8.0


def make_loops() -> list[Loop]:
    """Return the loops this worker runs: the due-delivery sweeper, the reconciler, the pruner and the heartbeat."""
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
            step=Reconciler(db, cfg, engine.submit, notify=runtime.notify()).step,
            interval=RECONCILE_INTERVAL,
        ),
        # Events and deliveries past their retention, and a disabled endpoint's deliveries beyond
        # what it keeps: a pass that deleted anything is followed at once by the next; otherwise it sleeps.
        Loop(name="webhooks-pruner", step=lambda: service.prune(db, cfg), interval=PRUNE_INTERVAL,
             error_backoff=30.0),
        heartbeat_loop(runtime.redis_client(), runtime.settings().pubsub_prefix, "webhooks-worker"),
    ]


def make_gauges() -> list[Gauge]:
    """The gauges this worker reports when scraped, beside its attempts counter (docs/metrics.md)."""
    db = runtime.database()
    return [
        *worker_gauges(db, runtime.redis_client(), runtime.settings().pubsub_prefix, QUEUE),
        Gauge("gateway_webhook_backlog", "Webhook deliveries still pending (due now or waiting for a retry).",
              lambda: service.delivery_backlog(db)[0]),
        Gauge("gateway_webhook_overdue_seconds", "How late the most overdue pending delivery is (0 when on time).",
              lambda: service.delivery_backlog(db)[1]),
    ]


run_loops_in_worker(app, "webhooks", make_loops, make_gauges)


@worker_shutdown.connect
def _finish_attempts(**_: object) -> None:
    # Attempts already under way are finished and recorded rather than left to their leases.
    if runtime.engine.built():
        runtime.engine().drain(timeout=SHUTDOWN_DRAIN_SECONDS)

