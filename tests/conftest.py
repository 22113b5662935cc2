"""End-to-end fixtures: the whole system started natively on free ports with a throwaway database."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from gateway_common.testing import Backing, drop_database, drop_redis_keys, url_for_database

from tools import stack as stack_tool

TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_KEY = "key_test_abc123"
TEST_SECRET = "secret_test_xyz789"


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    """A running system: where it listens and how it was configured."""

    base: str
    api: str
    checkout: str
    dashboard: str
    bench_static: str
    env: dict[str, str]
    database_url: str
    pid: int
    run_dir: Path
    extra: dict = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        """Run a service command line (e.g. ``auth.cli create-merchant``) against this stack."""
        out = subprocess.run([sys.executable, "-m", *args], env=self.env, check=True, capture_output=True, text=True)
        return out.stdout


@contextlib.contextmanager
def running_stack(
    backing: Backing, run_dir: Path, tag: str, redis_index: int, settings: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Start a whole system (nginx, services, workers, dashboard) on free ports with its own database.

    ``settings`` override the test stack's environment (e.g. ``WEBHOOK_RETRY_INTERVALS_TEST``).
    """
    db_name = f"gwe2e_{tag}"
    database_url = url_for_database(backing.admin_url, db_name)
    redis_url = backing.redis_url.rsplit("/", 1)[0] + f"/{redis_index}"
    ports = {name: str(free_port()) for name in stack_tool.port_settings()}
    overrides = {
        **ports,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RUN_DIR": str(run_dir),
        "PUBSUB_PREFIX": f"gwe2e{tag}",
        "GATEWAY_SECRET": secrets.token_urlsafe(24),
        "TEST_MODE": "true",
        "TEST_PROCESSING_DELAY": os.environ.get("E2E_PROCESSING_DELAY", "1000"),
        "WEBHOOK_RETRY_INTERVALS_TEST": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",  # receivers run on this machine
        "NGINX_WORKERS": "2",
        "NGINX_ERROR_LOG": str(run_dir / "nginx-error.log"),
        "CHECKOUT_URL": f"http://127.0.0.1:{ports['CHECKOUT_PORT']}",
        "PUBLIC_API_ORIGIN": f"http://127.0.0.1:{ports['PORT']}",
        "GATEWAY_URL": f"http://127.0.0.1:{ports['PORT']}",
        "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(24),
        **(settings or {}),
    }
    env = stack_tool.stack_env(overrides)
    proc = None
    try:
        proc = stack_tool.start_background(env)
        stack_tool.wait_healthy(env, proc, timeout=150)
    except BaseException as exc:
        if proc is not None:
            stack_tool.stop(proc.pid)
        log_file = run_dir / "stack.log"
        log = log_file.read_text(errors="replace")[-6000:] if log_file.exists() else repr(exc)
        drop_database(backing.admin_url, db_name)
        pytest.fail(f"the stack did not become healthy; last log lines:\n{log}", pytrace=False)
    base = f"http://127.0.0.1:{ports['PORT']}"
    try:
        yield Stack(
            base=base,
            api=f"{base}/api/v1",
            checkout=f"http://127.0.0.1:{ports['CHECKOUT_PORT']}",
            dashboard=f"http://127.0.0.1:{ports['DASHBOARD_PORT']}",
            bench_static=f"http://127.0.0.1:{ports['BENCH_STATIC_PORT']}",
            env=env,
            database_url=database_url,
            pid=proc.pid,
            run_dir=run_dir,
        )
    finally:
        stack_tool.stop(proc.pid)
        drop_database(backing.admin_url, db_name)
        drop_redis_keys(redis_url, overrides["PUBSUB_PREFIX"])


@pytest.fixture(scope="session")
def stack(gateway_backing: Backing, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the whole system (nginx, services, workers, dashboard) once per test session."""
    redis_index = int(gateway_backing.run_id[-2:], 16) % 15 + 1
    with running_stack(gateway_backing, tmp_path_factory.mktemp("stack"), gateway_backing.run_id, redis_index) as started:
        yield started


@pytest.fixture(scope="session")
def merchant(stack: Stack) -> dict[str, str]:
    """Headers that authenticate as the seeded test merchant."""
    return {"X-Api-Key": TEST_KEY, "X-Api-Secret": TEST_SECRET}


@pytest.fixture(scope="session")
def other_merchant_credentials(stack: Stack) -> dict:
    """A second merchant created with the auth command line: id, email, password, api_key, api_secret."""
    password = "other-" + secrets.token_hex(6)
    email = f"other-{secrets.token_hex(4)}@example.com"
    created = json.loads(stack.cli("auth.cli", "create-merchant", "--name", "Other Merchant", "--email", email, "--password", password))
    return {**created, "password": password}


@pytest.fixture(scope="session")
def other_merchant(other_merchant_credentials: dict) -> dict[str, str]:
    """Headers that authenticate as a second merchant."""
    return {"X-Api-Key": other_merchant_credentials["api_key"], "X-Api-Secret": other_merchant_credentials["api_secret"]}


@pytest.fixture(scope="session")
def other_merchant_login(other_merchant_credentials: dict) -> tuple[str, str]:
    """Dashboard login (email, password) of the second merchant."""
    return other_merchant_credentials["email"], other_merchant_credentials["password"]


@pytest.fixture(scope="session")
def http() -> Iterator[requests.Session]:
    """A shared HTTP session for tests."""
    with requests.Session() as session:
        yield session
