"""The compose stack, built from the images and run on the host network (all on 127.0.0.1).

`make test-compose` starts the engine, builds the images (tools/docker-build.sh) and runs these
tests; the fixture brings the stack up with free ports of its own (so neither `make run` nor a test
stack is in the way), its own PostgreSQL and Redis containers on those ports (the host's are
untouched), and tears it down with its volume at the end, printing the containers' last log lines
when it could not start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.host.yml")]
PORTS = ("GW_PORT", "GW_CHECKOUT_PORT", "GW_DASHBOARD_PORT", "GW_BENCH_STATIC_PORT", "GW_AUTH_PORT",
         "GW_PAYMENTS_PORT", "GW_REFUNDS_PORT", "GW_WEBHOOKS_PORT", "GW_WEBHOOKS_STREAM_PORT", "GW_PG_PORT", "GW_REDIS_PORT",
         "GW_NGINX_STATUS_PORT", "GW_PAYMENTS_WORKER_METRICS_PORT", "GW_REFUNDS_WORKER_METRICS_PORT",
         "GW_WEBHOOKS_WORKER_METRICS_PORT")
UP_TIMEOUT = float(os.environ.get("COMPOSE_UP_TIMEOUT", "240"))


def compose_command() -> list[str]:
    """Return Compose v2 (`docker compose`) when the client has it, else v1 (`docker-compose`)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    if not found:
        pytest.fail("no compose tool: run `bash tools/system-deps.sh compose`", pytrace=False)
    return [found]


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports nobody listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def host_network_file(env: dict[str, str], out: Path) -> Path:
    """Write docker-compose.yml merged with docker-compose.host.yml, without published ports, to ``out``.

    On the host network published ports mean nothing, and Compose v1 refuses them outright
    ("host" network_mode is incompatible with port_bindings); an override file cannot remove a
    list in both Compose versions, so the merged file is written without them.
    """
    merged = subprocess.run([*compose_command(), *SOURCES, "config"], env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True)
    config = yaml.safe_load(merged.stdout)
    for spec in config["services"].values():
        assert spec.get("network_mode") == "host", spec
        spec.pop("ports", None)
    out.touch(mode=0o600)  # the merged file holds the run's generated passwords
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


@dataclass
class ComposeStack:
    """A running compose project: where it listens and how to run compose against it."""

    project: str
    env: dict[str, str]
    file: Path
    base: str
    api: str
    checkout: str
    dashboard: str

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a compose command against this project."""
        command = [*compose_command(), "-p", self.project, "-f", str(self.file), "--project-directory", str(ROOT), *args]
        result = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result


def gateway_health(base: str) -> tuple[int, dict]:
    """Return the gateway's /health status and body (0 when it does not answer)."""
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=3) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


@pytest.fixture(scope="session")
def compose_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    """Bring the whole compose stack up on free loopback ports; tear it down (volumes too) afterwards."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers: run `bash tools/docker-engine.sh start` (make test-compose does)", pytrace=False)
    ports = dict(zip(PORTS, map(str, free_ports(len(PORTS))), strict=True))
    env = {
        **os.environ,
        **ports,
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "DB_ROLE_PASSWORD": secrets.token_urlsafe(24),
        "REDIS_PASSWORD": secrets.token_urlsafe(24),
        "GATEWAY_SECRET": secrets.token_urlsafe(24),
        "DASHBOARD_FORWARD_SECRET": secrets.token_urlsafe(24),
        "DASHBOARD_SECRET_KEY": secrets.token_urlsafe(24),
        "FINGERPRINT_KEY": secrets.token_urlsafe(24),
        # The smoke's webhook receiver listens on this machine's loopback.
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "TEST_PROCESSING_DELAY": "1000",
    }
    base = f"http://127.0.0.1:{ports['GW_PORT']}"
    stack = ComposeStack(
        project=f"gwsmoke{secrets.token_hex(3)}",
        env=env,
        file=host_network_file(env, tmp_path_factory.mktemp("compose") / "docker-compose.host-network.yml"),
        base=base,
        api=f"{base}/api/v1",
        checkout=f"http://127.0.0.1:{ports['GW_CHECKOUT_PORT']}",
        dashboard=f"http://127.0.0.1:{ports['GW_DASHBOARD_PORT']}",
    )
    try:
        # The images come from tools/docker-build.sh (make test-compose runs it): never build here.
        up = stack.compose("up", "-d", "--no-build", check=False, timeout=UP_TIMEOUT)
        if up.returncode != 0:
            pytest.fail(f"compose up failed:\n{up.stderr[-4000:]}\n{logs(stack)}", pytrace=False)
        deadline = time.monotonic() + UP_TIMEOUT
        status, body = gateway_health(base)
        while not (status == 200 and body.get("status") == "healthy" and port_open(ports["GW_CHECKOUT_PORT"])
                   and port_open(ports["GW_DASHBOARD_PORT"])):
            if time.monotonic() > deadline:
                pytest.fail(f"the compose stack is not healthy after {UP_TIMEOUT:.0f}s (/health {status} {body})\n"
                            f"{logs(stack)}", pytrace=False)
            time.sleep(1)
            status, body = gateway_health(base)
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", "-t", "30", check=False)


def port_open(port: str) -> bool:
    """Tell whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


def logs(stack: ComposeStack) -> str:
    """Return the states and last log lines of the project's containers."""
    states = stack.compose("ps", check=False).stdout
    tail = stack.compose("logs", "--no-color", "--tail", "30", check=False).stdout
    return f"{states}\n{tail[-8000:]}"
