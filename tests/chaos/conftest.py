"""Chaos fixtures: a private Redis, a private PostgreSQL cluster and a stack pointed at them.

The shared PostgreSQL (5432) and Redis (6379) are never touched: everything these tests kill or stop
was started here, and is stopped by its PID (or with ``pg_ctl`` for the private cluster).

The Celery workers run outside honcho (honcho stops every process when one exits), each with the
exact command of its entry in the root ``Procfile``, so a test can SIGKILL and restart one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib
import requests

from tools import stack as stack_tool

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
WORKERS = ("payments-worker", "refunds-worker", "webhooks-worker")
STACK_PARTS = ("nginx", "auth", "payments", "refunds", "webhooks")


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check, timeout: float, interval: float = 0.2):
    """Call ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the thing polled may still be down
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"{what} not reached within {timeout:.0f}s; last: {last!r}", pytrace=False)


def procfile_command(env: dict[str, str], name: str) -> str:
    """The command of Procfile entry ``name`` as honcho would run it (a replica, ``payments-2``, too)."""
    commands = dict(stack_tool.procfile_entries(env))
    if name not in commands:
        raise KeyError(f"no {name!r} entry in Procfile (with SCALE={env.get('SCALE', '')!r})")
    return commands[name]


# --------------------------------------------------------------------------- Redis


@dataclass
class PrivateRedis:
    """A redis-server of our own (no persistence) that tests may kill and start again."""

    port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.workdir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis_lib.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        wait_for("private Redis answering PING", client.ping, timeout=15, interval=0.05)

    def kill(self) -> None:
        """SIGKILL the server (what a crash looks like) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- PostgreSQL


def _as_postgres(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, text=True, timeout=timeout)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own (trust auth, user postgres) that tests may stop and start."""

    port: int
    datadir: Path

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.datadir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir / "data"), "-o", options, "-l", str(self.datadir / "log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir / "data"), "-m", "fast", "-w", "-t", "60", "stop")

    def running(self) -> bool:
        result = subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.datadir / "data"), "status"], capture_output=True)
        return result.returncode == 0

    def query(self, database: str, sql: str, params: tuple = ()) -> list[tuple]:
        conn = psycopg.connect(self.url(database), connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


# --------------------------------------------------------------------------- the stack


@dataclass
class ChaosStack:
    """The gateway on private Redis and PostgreSQL, with the Celery workers managed by the tests."""

    base: str
    api: str
    env: dict[str, str]
    run_dir: Path
    redis: PrivateRedis
    postgres: PrivatePostgres
    database: str
    pid: int
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_worker(self, name: str) -> subprocess.Popen:
        """Start Procfile entry ``name`` (a worker, or any replica) exactly as honcho would (shell, stack env, repo root)."""
        log = open(self.run_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            ["bash", "-c", "exec " + procfile_command(self.env, name)],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.workers[name] = proc
        return proc

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker this fixture started (its own process group) and reap it."""
        proc = self.workers.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)

    def stop_worker(self, name: str) -> None:
        proc = self.workers.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.postgres.query(self.database, sql, params)

    def worker_diagnostics(self, chars: int = 6000) -> str:
        """Ask every running worker for its threads' stacks (Celery's SIGUSR1 handler) and return the logs."""
        for proc in self.workers.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(1)  # the handler writes to the worker's log
        parts = []
        for name, proc in self.workers.items():
            state = f"exited with {proc.returncode}" if proc.poll() is not None else f"running, pid {proc.pid}"
            threads = []
            for task in sorted(Path(f"/proc/{proc.pid}/task").glob("*")) if proc.poll() is None else []:
                with contextlib.suppress(OSError):
                    comm = (task / "comm").read_text().strip()
                    wchan = (task / "wchan").read_text().strip()
                    threads.append(f"{task.name}:{comm}:{wchan}")
            parts.append(f"--- {name} ({state}; threads {threads}) log:\n{self.log_tail(f'{name}.log', chars)}")
        if os.environ.get("CHAOS_PAUSE_ON_FAILURE"):
            print(f"pausing {os.environ['CHAOS_PAUSE_ON_FAILURE']}s for inspection: workers {[(n, p.pid) for n, p in self.workers.items()]}", flush=True)
            time.sleep(float(os.environ["CHAOS_PAUSE_ON_FAILURE"]))
        return "\n".join(parts)

    def new_merchant(self, name: str = "Chaos Merchant") -> dict[str, str]:
        """Create a merchant with the auth command line; return its API headers."""
        email = f"chaos-{secrets.token_hex(4)}@example.com"
        out = subprocess.run(
            [sys.executable, "-m", "auth.cli", "create-merchant", "--name", name, "--email", email, "--password", "pw-" + secrets.token_hex(6)],
            env=self.env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=60,
        )
        created = json.loads(out.stdout)
        return {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}

    def log_tail(self, name: str = "stack.log", chars: int = 4000) -> str:
        path = self.run_dir / name
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    workdir = Path(tempfile.mkdtemp(prefix="gwchaos-redis-"))
    server = PrivateRedis(port=free_port(), workdir=workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN} (set CHAOS_PG_BIN)")
    # Not under pytest's tmp dir: the postgres OS user must be able to reach it.
    datadir = Path(tempfile.mkdtemp(prefix="gwchaos-pg-"))
    pg_user = pwd.getpwnam("postgres")
    os.chown(datadir, pg_user.pw_uid, pg_user.pw_gid)
    server = PrivatePostgres(port=free_port(), datadir=datadir)
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            if server.running():
                server.stop()
        shutil.rmtree(datadir, ignore_errors=True)


@contextlib.contextmanager
def running_chaos_stack(
    redis: PrivateRedis, postgres: PrivatePostgres, *, stack_parts: tuple[str, ...], processes: tuple[str, ...],
    overrides: dict[str, str] | None = None, ready: Callable[[ChaosStack], None] | None = None,
) -> Iterator[ChaosStack]:
    """``stack_parts`` under honcho and ``processes`` (Procfile entries) started by us, on the private Redis and
    PostgreSQL; ``ready`` waits for what honcho's health check does not cover."""
    # Not under pytest's tmp dir, which other runs on this machine rotate away; kept with CHAOS_KEEP_LOGS=1.
    run_dir = Path(tempfile.mkdtemp(prefix="gwchaos-stack-"))
    database = "payment_gateway"
    ports = {name: str(free_port()) for name in stack_tool.port_settings()}
    env = stack_tool.stack_env({
        **ports,
        "DATABASE_URL": postgres.url(database),
        "REDIS_URL": redis.url,
        "RUN_DIR": str(run_dir),
        "STACK_PARTS": ",".join(stack_parts),
        "PUBSUB_PREFIX": f"gwchaos{secrets.token_hex(3)}",
        "GATEWAY_SECRET": secrets.token_urlsafe(24),
        "TEST_MODE": "true",
        "TEST_PROCESSING_DELAY": "1000",
        "TEST_PAYMENT_SUCCESS": "true",
        "WEBHOOK_RETRY_INTERVALS_TEST": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",  # receivers run on this machine
        "NGINX_WORKERS": "2",
        "NGINX_ERROR_LOG": str(run_dir / "nginx-error.log"),
        "CHECKOUT_URL": f"http://127.0.0.1:{ports['CHECKOUT_PORT']}",
        "PUBLIC_API_ORIGIN": f"http://127.0.0.1:{ports['PORT']}",
        "GATEWAY_URL": f"http://127.0.0.1:{ports['PORT']}",
        **(overrides or {}),
    })
    proc = None
    stack = None
    try:
        proc = stack_tool.start_background(env)
        base = f"http://127.0.0.1:{env['PORT']}"
        stack = ChaosStack(base=base, api=f"{base}/api/v1", env=env, run_dir=run_dir, redis=redis,
                           postgres=postgres, database=database, pid=proc.pid)
        for name in processes:
            stack.start_worker(name)
        stack_tool.wait_healthy(env, proc, timeout=150)
        if ready is not None:
            ready(stack)
    except BaseException as exc:
        if stack is not None:
            for name in list(stack.workers):
                stack.stop_worker(name)
        if proc is not None:
            stack_tool.stop(proc.pid)
        log_file = run_dir / "stack.log"
        log = log_file.read_text(errors="replace")[-6000:] if log_file.exists() else repr(exc)
        pytest.fail(f"the chaos stack did not become healthy ({exc!r}); logs in {run_dir}; last lines:\n{log}", pytrace=False)
    try:
        yield stack
    finally:
        for name in list(stack.workers):
            stack.stop_worker(name)
        stack_tool.stop(proc.pid)
        if os.environ.get("CHAOS_KEEP_LOGS"):
            print(f"chaos stack logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def chaos_stack(private_redis: PrivateRedis, private_postgres: PrivatePostgres) -> Iterator[ChaosStack]:
    """nginx and the four API services under honcho; the three workers started by us."""
    with running_chaos_stack(private_redis, private_postgres, stack_parts=STACK_PARTS, processes=WORKERS) as stack:
        yield stack


@pytest.fixture(autouse=True)
def workers_survive(request) -> Iterator[None]:
    """Before each test: Redis, PostgreSQL and every worker are up (a worker an earlier test left dead is
    started again). After it: fail the test if one of the workers died on its own during it."""
    if "chaos_stack" not in request.fixturenames:
        yield
        return
    stack: ChaosStack = request.getfixturevalue("chaos_stack")
    if stack.redis.proc is None or stack.redis.proc.poll() is not None:
        stack.redis.start()
    if not stack.postgres.running():
        stack.postgres.start()
    for name in WORKERS:
        proc = stack.workers.get(name)
        if proc is None or proc.poll() is not None:
            stack.workers.pop(name, None)
            stack.start_worker(name)
    started = {name: proc.pid for name, proc in stack.workers.items()}
    yield
    died = {name: proc.returncode for name, proc in stack.workers.items() if started.get(name) == proc.pid and proc.poll() is not None}
    if died:
        pytest.fail(f"workers exited on their own during the test (name: exit code): {died}\n"
                    + "\n".join(f"--- {name}.log:\n{stack.log_tail(f'{name}.log')}" for name in died), pytrace=False)


@pytest.fixture(scope="module")
def chaos_merchant(chaos_stack: ChaosStack) -> dict[str, str]:
    """The seeded test merchant's headers (the private database is migrated and seeded by tools.stack)."""
    headers = {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "secret_test_xyz789"}
    response = requests.get(f"{chaos_stack.api}/merchant", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return headers
