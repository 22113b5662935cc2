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
from gateway_common.logs import configure_logging
from gateway_common.loops import Loop, LoopRunner
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
    """Build a worker's accessors; its pool holds ``DB_POOL_MAX`` (the Celery threads) plus ``loop_connections``.

    The Redis client carries the workers' relay publishes and heartbeats, never a blocking read,
    so a dead Redis answers within its timeouts instead of hanging a loop.
    """
    settings = per_process(lambda: Settings.from_env(service))
    database = per_process(
        lambda: Database(
            settings().service_database_url,
            maxconn=settings().db_pool_max + loop_connections,
            application_name=f"{service}-worker",
        )
    )
    redis_client = per_process(
        lambda: redis.Redis.from_url(settings().redis_url, socket_timeout=5, socket_connect_timeout=3)
    )
    return WorkerResources(settings, database, redis_client)


# kombu.transport.redis.QoS.restore_unacked, as read in the versions below:
# https://github.com/celery/kombu/blob/v5.7.0/kombu/transport/redis.py (class QoS).
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
    """
    global _patched
    # Checked on every start, before the early return, so no process runs on an unread kombu.
    require_checked("kombu", KOMBU_CHECKED, "kombu.transport.redis.QoS.restore_unacked", _KOMBU_SOURCE)
    if _patched:
        return
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.QoS.restore_unacked

    def restore_unacked(self: object, client: object = None) -> None:
        try:
            original(self, client)
        except (AttributeError, redis.exceptions.ConnectionError, OSError) as exc:
            log.warning("could not restore unacked messages on a dead connection (%s); "
                        "they return after the visibility timeout", type(exc).__name__)

    kombu_redis.QoS.restore_unacked = restore_unacked
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
        broker_transport_options={"visibility_timeout": 300, "global_keyprefix": f"{settings.pubsub_prefix}:celery:"},
        broker_pool_limit=10,
    )
    return app


def heartbeat_key(prefix: str, worker: str, host: str) -> str:
    """Return the Redis key a worker refreshes while it is alive."""
    return f"{prefix}:heartbeat:{worker}:{host}"


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


def run_loops_in_worker(celery_app: Celery, service: str, make_loops: Callable[[], list[Loop]]) -> None:
    """Start ``make_loops()`` in threads when a worker of this app starts."""

    class BackgroundLoops(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Pool"}

        def __init__(self, worker: object, **kwargs: object) -> None:
            super().__init__(worker, **kwargs)
            self.runner: LoopRunner | None = None

        def start(self, worker: object) -> None:
            configure_logging(service)
            # A line per task received/succeeded costs CPU under load and says little.
            logging.getLogger("celery").setLevel(logging.WARNING)
            self.runner = LoopRunner(make_loops())
            self.runner.start()

        def stop(self, worker: object) -> None:
            if self.runner is not None:
                self.runner.stop()

    celery_app.steps["worker"].add(BackgroundLoops)
