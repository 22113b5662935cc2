"""pytest plugin: a throwaway PostgreSQL database and a Redis namespace per test run.

``DATABASE_URL`` / ``REDIS_URL`` are used when set; otherwise PostgreSQL and Redis
are started with testcontainers when a Docker engine answers; otherwise the run
fails with a message saying what to start.
"""

from __future__ import annotations

import os
import secrets
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from gateway_common.config import with_user

# SERVICE_ORDER and url_for_database live with the migrations, so the migrate image (no pytest)
# imports them from there; they stay importable from here for the tests.
from gateway_common.migrations import SERVICE_ORDER, migrate, url_for_database

ROLE_PASSWORD = os.environ.get("DB_ROLE_PASSWORD", "gateway_dev")


def find_repo_root(start: Path | None = None) -> Path:
    """Find the checkout root (the folder holding ``database/`` and ``services/``)."""
    here = (start or Path.cwd()).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "database" / "setup.sql").exists() and (candidate / "services").is_dir():
            return candidate
    raise RuntimeError("cannot find the repository root (database/setup.sql)")


def create_database(admin_url: str, name: str, root: Path, services: list[str] | None = None) -> str:
    """Create database ``name`` with roles, schemas and every service's migrations; return its URL."""
    conn = psycopg.connect(url_for_database(admin_url, "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    url = url_for_database(admin_url, name)
    conn = psycopg.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute((root / "database" / "setup.sql").read_text())
    conn.close()
    for service in services or SERVICE_ORDER:
        directory = root / "services" / service / "migrations"
        if directory.is_dir():
            migrate(with_user(url, f"svc_{service}", ROLE_PASSWORD), directory, service)
    return url


def drop_database(admin_url: str, name: str) -> None:
    """Drop a throwaway database, disconnecting whoever still uses it."""
    conn = psycopg.connect(url_for_database(admin_url, "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


class PeakConnections:
    """Samples, in a thread, each database's connections from the given applications; keeps each peak.

    ``with PeakConnections(admin_url, ["gwe2e_1"], ["payments", "auth"]) as peak: ...`` then
    ``peak.peak["gwe2e_1"]``. Connections are told apart by ``application_name``, which every
    service and worker pool sets, so the sampler's and the test's own connections do not count.
    """

    def __init__(self, admin_url: str, databases: list[str], applications: list[str], every: float = 0.02) -> None:
        self.admin_url = admin_url
        self.databases = databases
        self.applications = applications
        self.every = every
        self.peak: dict[str, int] = dict.fromkeys(databases, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-connections", daemon=True)

    def _run(self) -> None:
        with psycopg.connect(url_for_database(self.admin_url, "postgres"), autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT datname, count(*)::int FROM pg_stat_activity "
                    "WHERE datname = ANY(%s) AND application_name = ANY(%s) GROUP BY datname",
                    (self.databases, self.applications),
                ).fetchall()
                for name, n in rows:
                    self.peak[name] = max(self.peak[name], n)
                self._stop.wait(self.every)

    def __enter__(self) -> PeakConnections:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def drop_redis_keys(redis_url: str, prefix: str) -> int:
    """Delete a finished run's keys (``<prefix>:...``: kombu bindings, queues) from Redis; how many.

    Best effort: a Redis that is unreachable by then is reported as a warning, not a failed run.
    """
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        return client.delete(*keys) if keys else 0
    except redis.RedisError as exc:
        warnings.warn(f"could not delete the Redis keys under {prefix}: {exc}", stacklevel=2)
        return 0
    finally:
        client.close()


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@dataclass
class Backing:
    """Where the test run's PostgreSQL server and Redis are."""

    admin_url: str
    redis_url: str
    run_id: str


@pytest.fixture(scope="session")
def gateway_backing() -> Iterator[Backing]:
    """Locate PostgreSQL and Redis: environment, then testcontainers, else fail clearly."""
    run_id = f"{os.getpid()}{secrets.token_hex(3)}"
    admin_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    containers = []
    if not admin_url or not redis_url:
        if not _docker_available():
            pytest.fail(
                "Tests need PostgreSQL and Redis: set DATABASE_URL (a server where the user may "
                "CREATE DATABASE, e.g. postgresql://postgres@127.0.0.1:5432/postgres) and REDIS_URL "
                "(e.g. redis://127.0.0.1:6379/0), or start a Docker engine for testcontainers.",
                pytrace=False,
            )
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        if not admin_url:
            pg = PostgresContainer("postgres:15-alpine", driver=None)
            pg.start()
            containers.append(pg)
            admin_url = pg.get_connection_url()
        if not redis_url:
            rd = RedisContainer("redis:7-alpine")
            rd.start()
            containers.append(rd)
            redis_url = f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0"
    try:
        yield Backing(admin_url=admin_url, redis_url=redis_url, run_id=run_id)
    finally:
        for container in containers:
            container.stop()


@pytest.fixture(scope="session")
def database_url(gateway_backing: Backing) -> Iterator[str]:
    """A throwaway database with every service's migrations applied (superuser URL)."""
    root = find_repo_root()
    name = f"gwtest_{gateway_backing.run_id}"
    url = create_database(gateway_backing.admin_url, name, root)
    try:
        yield url
    finally:
        drop_database(gateway_backing.admin_url, name)


@pytest.fixture(scope="session")
def redis_url(gateway_backing: Backing) -> str:
    """A Redis URL on a database index of its own for this run."""
    parts = urlsplit(gateway_backing.redis_url)
    index = int(gateway_backing.run_id[-2:], 16) % 15 + 1
    return urlunsplit((parts.scheme, parts.netloc, f"/{index}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def service_env(database_url: str, redis_url: str, gateway_backing: Backing) -> Iterator[dict[str, str]]:
    """Point the service settings (``Settings.from_env``) at the throwaway database."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PUBSUB_PREFIX": f"gwtest{gateway_backing.run_id}",
        "TEST_MODE": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "GATEWAY_SECRET": "test-gateway-secret",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        drop_redis_keys(redis_url, env["PUBSUB_PREFIX"])
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
