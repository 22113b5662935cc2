"""Celery worker of the webhooks service (queue ``webhooks``) with its sweeper and heartbeat.

    celery -A webhooks.worker worker -Q webhooks -P threads -c 8 -n webhooks@%h
"""

from __future__ import annotations

import redis
from gateway_common.config import Settings
from gateway_common.loops import Loop
from gateway_common.workers import heartbeat_loop, make_celery, run_loops_in_worker

from webhooks import service, tasks

settings = Settings.from_env("webhooks")
app = make_celery(settings, "webhooks")
app.conf.task_default_queue = tasks.QUEUE


def make_loops() -> list[Loop]:
    """Return the loops this worker runs: the due-delivery sweeper and the heartbeat."""
    rt = tasks.runtime(app)
    client = redis.Redis.from_url(settings.redis_url)
    return [
        Loop(
            name="webhooks-sweeper",
            step=lambda: service.dispatch_due(rt.db, rt.cfg, rt.dispatch),
            interval=rt.cfg.sweep_interval,
        ),
        heartbeat_loop(client, settings.pubsub_prefix, "webhooks-worker"),
    ]


run_loops_in_worker(app, "webhooks", make_loops)
