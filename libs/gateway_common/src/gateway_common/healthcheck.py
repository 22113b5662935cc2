"""Container health check: a service's own /health, or a Celery worker's heartbeat in Redis.

    python -m gateway_common.healthcheck

Run by the images' HEALTHCHECK and the Kubernetes exec probes of the workers. What it checks
follows from the container's main process (PID 1): a Celery worker (``celery -A payments.worker
worker ...``) is healthy while its heartbeat for this host is in Redis; anything else is healthy
while ``GET http://127.0.0.1:$HEALTH_PORT$HEALTH_PATH`` answers 200 (``HEALTH_PATH`` defaults to
``/health``). Exit status 0 means healthy, 1 unhealthy (the reason goes to stderr).
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path


def heartbeat_key(prefix: str, worker: str, host: str) -> str:
    """Return the Redis key a worker refreshes while it is alive (gateway_common.workers writes it).

    Defined here, not beside the heartbeat loop, so the health check imports no Celery: it runs
    every few seconds in each worker container.
    """
    return f"{prefix}:heartbeat:{worker}:{host}"


def main_command(proc: Path = Path("/proc/1/cmdline")) -> list[str]:
    """Return the argument list of the container's main process."""
    try:
        return [part for part in proc.read_bytes().decode(errors="replace").split("\0") if part]
    except OSError:
        return []


def celery_worker_name(argv: list[str]) -> str | None:
    """Return the heartbeat name (``payments-worker``) of a ``celery -A <service>.worker worker`` command line."""
    if not any(Path(arg).name == "celery" for arg in argv[:2]) or "worker" not in argv:
        return None
    for flag, value in itertools.pairwise(argv):
        if flag in ("-A", "--app"):
            return value.split(".", 1)[0] + "-worker"
    return None


def check_http(port: str, path: str, timeout: float = 3) -> str | None:
    """Return why ``GET /health`` is not a 200, or None when it is."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return None if resp.status == 200 else f"{path} answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"{path} answered {exc.code}"
    except OSError as exc:
        return f"{path} unreachable: {exc}"


def check_worker(worker: str) -> str | None:
    """Return why no heartbeat of ``worker`` on this host is in Redis, or None when one is."""
    import redis

    prefix = os.environ.get("PUBSUB_PREFIX", "gw")
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    pattern = heartbeat_key(prefix, worker, f"{socket.gethostname()}:*")
    try:
        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        found = next(iter(client.scan_iter(match=pattern, count=100)), None)
    except redis.exceptions.RedisError as exc:
        return f"Redis unreachable: {exc}"
    return None if found else f"no heartbeat matching {pattern}"


def main() -> int:
    """Check this container and return its exit status."""
    worker = celery_worker_name(main_command())
    if worker:
        problem = check_worker(worker)
    else:
        port = os.environ.get("HEALTH_PORT")
        if not port:
            print("HEALTH_PORT is not set", file=sys.stderr)
            return 1
        problem = check_http(port, os.environ.get("HEALTH_PATH", "/health"))
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
