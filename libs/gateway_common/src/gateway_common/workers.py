"""Celery app factory, per-process worker resources, worker heartbeats and loops that run inside a worker."""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import redis
from celery import Celery, bootsteps

from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.healthcheck import heartbeat_key
from gateway_common.logs import configure_logging
from gateway_common.loops import Loop, LoopRunner
from gateway_common.metrics import Gauge, MetricsServer, serve_worker_metrics
from gateway_common.patches import require_checked

HEARTBEAT_TTL = 15
log = logging.getLogger(__name__)
_patched = False
T = TypeVar("T")


class PerProcess(Generic[T]):
    """A worker's resource (settings, pool, client, engine) built on first use in each process.

    Built lazily, so importing a worker module opens nothing; built once even when task threads
    and loops ask at the same time; built again in a forked child, whose parent's threads and
    sockets did not come along.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        functools.update_wrapper(self, build)
        self._build = build
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._value: T | None = None
        os.register_at_fork(after_in_child=self._forget)

    def __call__(self) -> T:
        """Return this process's resource, building it on first use."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._value = self._build()
                    self._pid = os.getpid()
        return self._value  # type: ignore[return-value]

    def built(self) -> bool:
        """Tell whether this process has built its resource (and so may have work to finish)."""
        return self._pid == os.getpid()

    def _forget(self) -> None:
        # A lock held by a parent thread at fork time would never be released in the child.
        self._lock = threading.Lock()
        self._pid = None
        self._value = None


def per_process(build: Callable[[], T]) -> PerProcess[T]:
    """Make ``build`` a worker resource accessor: one value per process, built on first use."""
    return PerProcess(build)


@dataclass(frozen=True)
class WorkerResources:
    """The per-process settings, database pool and Redis client of one service's worker."""

    settings: PerProcess[Settings]
    database: PerProcess[Database]
    redis_client: PerProcess[redis.Redis]


def worker_resources(service: str, *, loop_connections: int) -> WorkerResources:
    """Build a worker's accessors; its pool holds ``<SERVICE>_WORKER_DB_POOL_MAX`` connections, or
    (unset) ``DB_POOL_MAX`` for the Celery threads plus ``loop_connections``.

    The Redis client carries the workers' relay publishes and heartbeats, never a blocking read,
    so a dead Redis answers within its timeouts instead of hanging a loop.
    """
    settings = per_process(lambda: Settings.from_env(service))
    database = per_process(
        lambda: settings().worker_database(loop_connections=loop_connections)
    )
    redis_client = per_process(
        lambda: redis.Redis.from_url(settings().redis_url, socket_timeout=5, socket_connect_timeout=3)
    )
    return WorkerResources(settings, database, redis_client)


# kombu.transport.redis.QoS.restore_unacked, ack and reject, as read in the versions below:
# https://github.com/celery/kombu/blob/v5.7.0/kombu/transport/redis.py (class QoS) and
# https://github.com/celery/kombu/blob/v5.7.0/kombu/transport/virtual/base.py (Channel.close,
# Transport.close_channel, which sets ``channel.connection = None``).
# No upstream fix is known; the closest upstream report of a worker dying in this restore
# path when Redis drops the connection is https://github.com/celery/celery/issues/10205.
KOMBU_CHECKED = ("5.7.0",)
_KOMBU_SOURCE = "https://github.com/celery/kombu/blob/v5.7.0/kombu/transport/redis.py"


def _survive_restore_on_dead_connection() -> None:
    """Keep a worker alive when Redis goes away while it holds unacknowledged messages.

    After a connection error kombu closes the consumer's channel and restores its unacked
    messages through that channel; with the connection already gone this raises
    AttributeError and Celery exits with "Unrecoverable error" (seen when Redis restarts).
    Skipping the restore loses nothing: the messages stay in Redis's unacked set until the
    visibility timeout brings them back, and every task here is re-dispatched from PostgreSQL.

    The same happens one step later: a task that was running in a pool thread while the
    consumer reconnected finishes and acknowledges (or rejects) its message through the old,
    closed channel, whose ``connection`` kombu has set to None. Celery treats the
    AttributeError as unrecoverable and the worker exits (seen in CI after a Redis restart).
    On a closed channel the acknowledgement is dropped with a warning: the message was restored
    at close or comes back after the visibility timeout, and runs again (tasks are at least once).
    """
    global _patched
    # Checked on every start, before the early return, so no process runs on an unread kombu.
    require_checked("kombu", KOMBU_CHECKED, "kombu.transport.redis.QoS.restore_unacked", _KOMBU_SOURCE)
    if _patched:
        return
    from kombu.transport import redis as kombu_redis

    original_restore = kombu_redis.QoS.restore_unacked
    original_ack = kombu_redis.QoS.ack
    original_reject = kombu_redis.QoS.reject

    def restore_unacked(self: object, client: object = None) -> None:
        try:
            original_restore(self, client)
        except (AttributeError, redis.exceptions.ConnectionError, OSError) as exc:
            log.warning("could not restore unacked messages on a dead connection (%s); "
                        "they return after the visibility timeout", type(exc).__name__)

    def on_open_channel(name: str, original: Callable[..., None]) -> Callable[..., None]:
        def settle(self: kombu_redis.QoS, delivery_tag: str, *args: object, **kwargs: object) -> None:
            if self.channel.connection is None:
                log.warning("could not %s message %s: its channel was closed by a broker reconnect; "
                            "it is delivered again (restored at close or after the visibility timeout)",
                            name, delivery_tag)
                return
            original(self, delivery_tag, *args, **kwargs)

        return settle

    kombu_redis.QoS.restore_unacked = restore_unacked
    kombu_redis.QoS.ack = on_open_channel("ack", original_ack)
    kombu_redis.QoS.reject = on_open_channel("reject", original_reject)
    _patched = True


def make_celery(settings: Settings, name: str) -> Celery:
    """Create a Celery app on the Redis broker with at-least-once settings."""
    _survive_restore_on_dead_connection()
    app = Celery(name, broker=settings.redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        # Keep stderr ours: Celery's redirect would swallow the JSON log lines.
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        # The key prefix keeps stacks that share a Redis database from consuming each other's tasks.
        broker_transport_options={"visibility_timeout": 300, "global_keyprefix": celery_key_prefix(settings.pubsub_prefix)},
        broker_pool_limit=10,
    )
    return app


def celery_key_prefix(pubsub_prefix: str) -> str:
    """The prefix of every Redis key of this stack's Celery broker (its queues, unacked messages)."""
    return f"{pubsub_prefix}:celery:"


# kombu's Redis transport keeps a queue as one list per priority step: "<queue>" for the default
# priority, "<queue>\x06\x16<step>" for the others (kombu.transport.redis.Channel._q_for_pri, sep, and
# PRIORITY_STEPS, as read in the versions KOMBU_CHECKED names).
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_length(client: redis.Redis, pubsub_prefix: str, queue: str) -> int:
    """Messages waiting in a Celery queue for a worker to take them (not those a worker holds)."""
    prefix = celery_key_prefix(pubsub_prefix)
    pipe = client.pipeline(transaction=False)
    for step in _PRIORITY_STEPS:
        pipe.llen(f"{prefix}{queue}{_PRIORITY_SEP}{step}" if step else f"{prefix}{queue}")
    return sum(pipe.execute())


def worker_gauges(database: Database, client: redis.Redis, pubsub_prefix: str, queue: str) -> list[Gauge]:
    """The gauges every worker reports: its queue's length and its database pool."""

    def pool() -> dict[tuple[str, ...], float]:
        stats = database.stats()
        return {("open",): stats.get("pool_size", 0), ("idle",): stats.get("pool_available", 0),
                ("waiting",): stats.get("requests_waiting", 0)}

    return [
        Gauge("gateway_celery_queue_length", "Messages waiting in the Celery queue for a worker, read from Redis at the scrape.",
              lambda: {(queue,): queue_length(client, pubsub_prefix, queue)}, labels=("queue",)),
        Gauge("gateway_db_pool_connections", "This worker process's PostgreSQL pool: connections open, idle, and "
              "requests waiting for one.", pool, labels=("state",)),
    ]


def heartbeat_loop(client: redis.Redis, prefix: str, worker: str) -> Loop:
    """Return a loop that refreshes this worker's heartbeat every few seconds."""
    host = f"{socket.gethostname()}:{os.getpid()}"

    def beat() -> int:
        client.set(heartbeat_key(prefix, worker, host), json.dumps({"at": time.time()}), ex=HEARTBEAT_TTL)
        return 0

    return Loop(name=f"{worker}-heartbeat", step=beat, interval=HEARTBEAT_TTL / 3)


def alive_workers(client: redis.Redis, prefix: str, worker: str | None = None) -> dict[str, int]:
    """Count live workers by name from their heartbeats."""
    pattern = f"{prefix}:heartbeat:{worker or '*'}:*"
    counts: dict[str, int] = {}
    for key in client.scan_iter(match=pattern, count=100):
        name = key.decode().split(":")[-3] if isinstance(key, bytes) else key.split(":")[-3]
        counts[name] = counts.get(name, 0) + 1
    return counts


def run_loops_in_worker(
    celery_app: Celery,
    service: str,
    make_loops: Callable[[], list[Loop]],
    make_gauges: Callable[[], list[Gauge]] | None = None,
) -> None:
    """Start ``make_loops()`` in threads when a worker of this app starts, and serve its metrics.

    The metrics (``make_gauges()`` read at each scrape, and every counter of the process) are served
    on ``<SERVICE>_WORKER_METRICS_BIND`` (``host:port``) when that is set.
    """
    metrics_setting = f"{service.upper()}_WORKER_METRICS_BIND"

    class BackgroundLoops(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Pool"}

        def __init__(self, worker: object, **kwargs: object) -> None:
            super().__init__(worker, **kwargs)
            self.runner: LoopRunner | None = None
            self.metrics: MetricsServer | None = None

        def start(self, worker: object) -> None:
            configure_logging(service)
            # A line per task received/succeeded costs CPU under load and says little.
            logging.getLogger("celery").setLevel(logging.WARNING)
            self.runner = LoopRunner(make_loops())
            self.runner.start()
            bind = os.environ.get(metrics_setting)
            if bind and self.metrics is None:
                self.metrics = serve_worker_metrics(bind, make_gauges() if make_gauges else [])

        def stop(self, worker: object) -> None:
            if self.runner is not None:
                self.runner.stop()
            if self.metrics is not None:
                self.metrics.close()
                self.metrics = None

    celery_app.steps["worker"].add(BackgroundLoops)
