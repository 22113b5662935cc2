"""The refunds worker: ``celery -A refunds.worker worker -Q refunds -P threads``.

Besides the ``refunds.process`` task it runs, in background threads, the sweeper
that claims due refunds, the outbox relay, the idempotency-key pruner and the heartbeat.
"""

from __future__ import annotations

from gateway_common.config import env_int
from gateway_common.events import Relay, Route, outbox_lag_gauge
from gateway_common.idempotency import pruner_loop
from gateway_common.loops import Loop
from gateway_common.metrics import Gauge
from gateway_common.workers import heartbeat_loop, make_celery, run_loops_in_worker, worker_gauges

from refunds import runtime, service
from refunds.tasks import PROCESS_TASK, QUEUE

app = make_celery(runtime.settings(), "refunds")
app.conf.task_default_queue = QUEUE
app.conf.imports = ["refunds.tasks"]

ROUTES = [
    Route("refund.*", "webhooks.handle_events", "webhooks"),
    Route("refund.*", "payments.handle_refund_events", "payments"),
]


def dispatch(refund_ids: list[str]) -> None:
    """Send one processing task for a batch of leased refunds."""
    app.send_task(PROCESS_TASK, args=[refund_ids], queue=QUEUE)


def make_loops() -> list[Loop]:
    """Build the sweeper, relay, idempotency pruner and heartbeat loops of this worker process."""
    settings = runtime.settings()
    db = runtime.database()
    client = runtime.redis_client()
    relay = Relay(db, "refunds", ROUTES, app, client, settings.pubsub_prefix)
    lease = float(env_int("REFUNDS_LEASE_SECONDS", int(service.LEASE_SECONDS)))
    return [
        Loop("refunds-sweeper", lambda: service.sweep_due_refunds(db, dispatch, lease_seconds=lease), interval=0.1),
        Loop("refunds-relay", relay.run_once, interval=0.1),
        pruner_loop(db, "refunds"),
        heartbeat_loop(client, settings.pubsub_prefix, "refunds-worker"),
    ]


def make_gauges() -> list[Gauge]:
    """The gauges this worker reports when scraped (docs/metrics.md)."""
    db = runtime.database()
    return [
        *worker_gauges(db, runtime.redis_client(), runtime.settings().pubsub_prefix, QUEUE),
        outbox_lag_gauge(db, "refunds"),
        Gauge("gateway_refund_backlog", "Refunds still pending.", lambda: service.refund_backlog(db)[0]),
        Gauge("gateway_refund_overdue_seconds", "How late the most overdue pending refund is (0 when on time).",
              lambda: service.refund_backlog(db)[1]),
    ]


run_loops_in_worker(app, "refunds", make_loops, make_gauges)
