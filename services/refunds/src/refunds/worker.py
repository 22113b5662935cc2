"""The refunds worker: ``celery -A refunds.worker worker -Q refunds -P threads``.

Besides the ``refunds.process`` task it runs, in background threads, the sweeper
that claims due refunds, the outbox relay, the idempotency-key pruner and the heartbeat.
"""

from __future__ import annotations

import redis
from gateway_common.config import Settings, env_int
from gateway_common.db import Database
from gateway_common.events import Relay, Route
from gateway_common.idempotency import pruner_loop
from gateway_common.loops import Loop
from gateway_common.workers import heartbeat_loop, make_celery, run_loops_in_worker

from refunds import service
from refunds.tasks import PROCESS_TASK, QUEUE, register_tasks

settings = Settings.from_env("refunds")
db = Database(settings.service_database_url, maxconn=settings.db_pool_max + 4, application_name="refunds-worker")
app = make_celery(settings, "refunds")
app.conf.task_default_queue = QUEUE
register_tasks(app, db)

ROUTES = [
    Route("refund.*", "webhooks.handle_events", "webhooks"),
    Route("refund.*", "payments.handle_refund_events", "payments"),
]


def dispatch(refund_ids: list[str]) -> None:
    """Send one processing task for a batch of leased refunds."""
    app.send_task(PROCESS_TASK, args=[refund_ids], queue=QUEUE)


def make_loops() -> list[Loop]:
    """Build the sweeper, relay, idempotency pruner and heartbeat loops of this worker process."""
    client = redis.Redis.from_url(settings.redis_url)
    relay = Relay(db, "refunds", ROUTES, app, client, settings.pubsub_prefix)
    lease = float(env_int("REFUNDS_LEASE_SECONDS", int(service.LEASE_SECONDS)))
    return [
        Loop("refunds-sweeper", lambda: service.sweep_due_refunds(db, dispatch, lease_seconds=lease), interval=0.1),
        Loop("refunds-relay", relay.run_once, interval=0.1),
        pruner_loop(db, "refunds"),
        heartbeat_loop(client, settings.pubsub_prefix, "refunds-worker"),
    ]


run_loops_in_worker(app, "refunds", make_loops)
