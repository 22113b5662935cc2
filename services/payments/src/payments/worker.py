"""Celery worker of the payments service: bank tasks plus the sweeper, relay and heartbeat loops.

celery -A payments.worker worker -Q payments -P threads -c 8 -n payments@%h
"""

from __future__ import annotations

from collections.abc import Callable

from gateway_common.events import Relay, Route, outbox_lag_gauge
from gateway_common.idempotency import pruner_loop
from gateway_common.loops import Loop
from gateway_common.metrics import Gauge
from gateway_common.workers import heartbeat_loop, make_celery, run_loops_in_worker, worker_gauges

from payments import bank_schedule, refund_sync, runtime
from payments.tasks import PROCESS_TASK, QUEUE

WORKER_NAME = "payments-worker"
# Every event of this outbox (payment.*, order.paid) goes to the webhooks service, one task per
# batch: the events of one transaction (a payment.success and the order.paid it made) are stored
# together, in their order. An event type no route matched would wait for the reconciler (10 s).
ROUTES = [Route("*", "webhooks.handle_events", "webhooks")]
# After a step that found work, the sweeper and the relay wait this long so the next batch is
# bigger (fewer queries, commits and Celery messages per payment under load); it adds at most
# this much to a payment's time at the bank and to its events' way out.
BUSY = 0.05
# How often the schedule of bank answers is looked at (a heap check, no query when nothing is due).
ANSWER_TICK = 0.02

app = make_celery(runtime.settings(), "payments")
app.conf.task_default_queue = QUEUE
app.conf.task_routes = {"payments.*": {"queue": QUEUE}}
app.conf.imports = ["payments.tasks"]


def dispatch(payment_ids: list[str]) -> None:
    """Send one bank task for a batch of payments whose answer is due now."""
    app.send_task(PROCESS_TASK, args=[payment_ids], queue=QUEUE)


def scheduler(schedule: bank_schedule.AnswerSchedule) -> Callable[[list[str], float], None]:
    """Answers due later wait in this process's schedule; lost ones found by the sweeper go to Celery."""

    def send(payment_ids: list[str], countdown: float) -> None:
        if countdown > 0:
            schedule.add(payment_ids, countdown)
        else:
            dispatch(payment_ids)

    return send


def make_loops() -> list[Loop]:
    """Build the loops this worker runs beside its task pool."""
    settings = runtime.settings()
    db = runtime.database()
    relay = Relay(db, "payments", ROUTES, app, runtime.redis_client(), settings.pubsub_prefix)
    config = runtime.bank_config()
    schedule = bank_schedule.AnswerSchedule()
    send = scheduler(schedule)
    # Refund events whose Celery task was lost (Redis restart) are re-read from the refunds outbox view.
    reconciler = refund_sync.reconciler(db)
    return [
        Loop("payments-bank-sweeper", lambda: bank_schedule.sweep_due(db, config, send), interval=0.1, busy_interval=BUSY),
        Loop("payments-bank-answers", lambda: schedule.run_due(db, config), interval=ANSWER_TICK),
        Loop("payments-outbox-relay", relay.run_once, interval=0.1, busy_interval=BUSY),
        Loop("payments-refund-reconciler", reconciler.step, interval=5.0, error_backoff=5.0),
        pruner_loop(db, "payments"),
        heartbeat_loop(runtime.redis_client(), settings.pubsub_prefix, WORKER_NAME),
    ]


def make_gauges() -> list[Gauge]:
    """The gauges this worker reports when scraped (docs/metrics.md)."""
    db = runtime.database()
    return [
        *worker_gauges(db, runtime.redis_client(), runtime.settings().pubsub_prefix, QUEUE),
        outbox_lag_gauge(db, "payments"),
        Gauge("gateway_bank_backlog", "Payments waiting for the simulated bank: pending (not handed over yet) and "
              "processing (awaiting its answer).", lambda: bank_schedule.backlog(db), labels=("status",)),
        Gauge("gateway_bank_overdue_seconds", "How late the bank schedule's most overdue payment is (0 when on time).",
              lambda: bank_schedule.overdue_seconds(db)),
    ]


run_loops_in_worker(app, "payments", make_loops, make_gauges)
