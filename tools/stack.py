"""Run the whole gateway natively: migrate, render nginx, start every process with honcho.

    python -m tools.stack run           foreground; Ctrl-C stops everything
    python -m tools.stack up            background; returns when /health is healthy
    python -m tools.stack down          stop what `up` started
    python -m tools.stack render-nginx  write the rendered nginx.conf and print its path
    python -m tools.stack env           print the environment the processes get

Every setting is an environment variable with a local default (see README).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, str] = {
    "PORT": "8000",
    "CHECKOUT_PORT": "3001",
    "DASHBOARD_PORT": "3000",
    "AUTH_PORT": "8101",
    "PAYMENTS_PORT": "8102",
    "REFUNDS_PORT": "8103",
    "WEBHOOKS_PORT": "8104",
    "BENCH_STATIC_PORT": "8099",
    "BIND_HOST": "127.0.0.1",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/payment_gateway",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "TEST_MODE": "true",
    "TEST_PROCESSING_DELAY": "1000",
    "TEST_PAYMENT_SUCCESS": "true",
    "WEBHOOK_RETRY_INTERVALS_TEST": "true",
    # A local run delivers to receivers on this machine (examples/webhook_receiver.py).
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "PUBSUB_PREFIX": "gw",
    "RATE_LIMIT_RPS": "5000",
    "RATE_LIMIT_BURST": "10000",
    "LOGIN_RATE_LIMIT_RPM": "120",
    "LOGIN_RATE_LIMIT_BURST": "20",
    "AUTH_CACHE_SECONDS": "5",
    "NGINX_WORKERS": "auto",
    "NGINX_MIME_TYPES": "/etc/nginx/mime.types",
    "RUN_DIR": str(ROOT / ".run"),
}

# Procfile entries and the directory each needs; entries whose part is not there are skipped.
PARTS = {
    "auth": "services/auth",
    "payments": "services/payments/src",
    "payments-worker": "services/payments/src/payments/worker.py",
    "refunds": "services/refunds/src",
    "refunds-worker": "services/refunds/src/refunds/worker.py",
    "webhooks": "services/webhooks/src",
    "webhooks-worker": "services/webhooks/src/webhooks/worker.py",
    "dashboard": "dashboard/src",
}


def stack_env(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for every process: defaults < os.environ < overrides."""
    env = dict(os.environ)
    for key, value in DEFAULTS.items():
        if not env.get(key):
            env[key] = value
    env.update(overrides or {})
    run_dir = Path(env["RUN_DIR"])
    run_dir.mkdir(parents=True, exist_ok=True)
    # GATEWAY_SECRET: nginx -> services. DASHBOARD_FORWARD_SECRET: dashboard -> nginx, so nginx
    # believes the client address the dashboard forwards for logins (see the nginx template).
    # FINGERPRINT_KEY: keys the stored Idempotency-Key fingerprints.
    for name, file_name in (
        ("GATEWAY_SECRET", "gateway_secret"),
        ("DASHBOARD_FORWARD_SECRET", "dashboard_forward_secret"),
        ("FINGERPRINT_KEY", "fingerprint_key"),
    ):
        if not env.get(name):
            secret_file = run_dir / file_name
            if not secret_file.exists():
                secret_file.write_text(secrets.token_urlsafe(32))
                secret_file.chmod(0o600)
            env[name] = secret_file.read_text().strip()
    host = env["BIND_HOST"]
    env.setdefault("GATEWAY_URL", f"http://127.0.0.1:{env['PORT']}")
    env.setdefault("CHECKOUT_URL", f"http://localhost:{env['CHECKOUT_PORT']}")
    env["GATEWAY_PORT"] = env["PORT"]
    env["AUTH_BIND"] = f"{host}:{env['AUTH_PORT']}"
    env["PAYMENTS_BIND"] = f"{host}:{env['PAYMENTS_PORT']}"
    env["REFUNDS_BIND"] = f"{host}:{env['REFUNDS_PORT']}"
    env["WEBHOOKS_BIND"] = f"{host}:{env['WEBHOOKS_PORT']}"
    env["DASHBOARD_BIND"] = f"{env.get('DASHBOARD_HOST', '127.0.0.1')}:{env['DASHBOARD_PORT']}"
    env["PYTHONUNBUFFERED"] = "1"
    bin_dir = str(Path(sys.executable).parent)
    if not env.get("PATH", "").startswith(bin_dir + os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


def render_template(text: str, values: dict[str, str]) -> str:
    """Fill ``${NAME}`` placeholders; an unknown name is an error, not an empty string."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"nginx template needs ${{{name}}}")
        return values[name]

    return re.sub(r"\$\{([A-Z0-9_]+)\}", fill, text)


def swagger_ui_dir() -> str:
    """Return the directory of the API explorer's files (the swagger-ui-bundle package)."""
    try:
        import swagger_ui_bundle
    except ImportError as exc:
        raise SystemExit("swagger-ui-bundle is not installed (the explorer at /api/v1/docs needs it): run `make setup`") from exc
    return str(swagger_ui_bundle.swagger_ui_path)


def nginx_values(env: dict[str, str]) -> dict[str, str]:
    """Return the template values for the native run."""
    run_dir = Path(env["RUN_DIR"]) / "nginx"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "auth_cache"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    docs_dir = ROOT / "gateway-nginx"
    values = {
        **env,
        "NGINX_RUN_DIR": str(run_dir),
        # Natively, workers run as whoever runs the stack, so they can use its files.
        "NGINX_USER": env.get("NGINX_USER") or pwd.getpwuid(os.getuid()).pw_name,
        "NGINX_ERROR_LOG": env.get("NGINX_ERROR_LOG", "stderr"),
        "NGINX_ACCESS_LOG": env.get("NGINX_ACCESS_LOG", "off"),
        "GATEWAY_LISTEN": f"{env['BIND_HOST']}:{env['PORT']}" if env["BIND_HOST"] != "0.0.0.0" else env["PORT"],  # noqa: S104
        "BENCH_STATIC_LISTEN": f"127.0.0.1:{env['BENCH_STATIC_PORT']}",
        "AUTH_UPSTREAM": f"127.0.0.1:{env['AUTH_PORT']}",
        "PAYMENTS_UPSTREAM": f"127.0.0.1:{env['PAYMENTS_PORT']}",
        "REFUNDS_UPSTREAM": f"127.0.0.1:{env['REFUNDS_PORT']}",
        "WEBHOOKS_UPSTREAM": f"127.0.0.1:{env['WEBHOOKS_PORT']}",
        "OPENAPI_FILE": str(docs_dir / "openapi.json"),
        "OPENAPI_DOCS_FILE": str(docs_dir / "docs.html"),
        "SWAGGER_UI_DIR": swagger_ui_dir(),
        "CHECKOUT_ROOT": str(ROOT / "services" / "checkout-cdn" / "public"),
        "CHECKOUT_LISTEN": f"{env['BIND_HOST']}:{env['CHECKOUT_PORT']}",
        "API_ORIGIN": env.get("PUBLIC_API_ORIGIN", f"http://localhost:{env['PORT']}"),
        "CHECKOUT_ORIGIN": env.get("CHECKOUT_URL", f"http://localhost:{env['CHECKOUT_PORT']}"),
    }
    block = ROOT / "services" / "checkout-cdn" / "nginx-server.conf.template"
    values["CHECKOUT_SERVER_BLOCK"] = render_template(block.read_text(), values) if block.exists() else ""
    return values


def render_nginx(env: dict[str, str]) -> Path:
    """Render gateway-nginx/nginx.conf.template into RUN_DIR and return its path."""
    template = (ROOT / "gateway-nginx" / "nginx.conf.template").read_text()
    out = Path(env["RUN_DIR"]) / "nginx" / "nginx.conf"
    values = nginx_values(env)
    out.write_text(render_template(template, values))
    out.chmod(0o600)
    return out


def filtered_procfile(env: dict[str, str]) -> Path:
    """Write RUN_DIR/Procfile with the entries whose part exists in this checkout."""
    lines = []
    only = {p.strip() for p in env.get("STACK_PARTS", "").split(",") if p.strip()}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name = line.split(":", 1)[0].strip()
        if not line.strip() or line.startswith("#") or (only and name not in only):
            continue
        need = PARTS.get(name)
        if need is None or (ROOT / need).exists():
            lines.append(line)
    out = Path(env["RUN_DIR"]) / "Procfile"
    out.write_text("\n".join(lines) + "\n")
    return out


def ensure_nginx() -> str:
    """Return the nginx binary, installing it from the OS packages when missing."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found:
        return found
    print("nginx not found; installing it with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)  # noqa: S607
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # noqa: S607
    return shutil.which("nginx") or "/usr/sbin/nginx"


def migrate(env: dict[str, str]) -> None:
    """Create the database, roles and schemas, apply migrations and seed (idempotent)."""
    subprocess.run([sys.executable, str(ROOT / "database" / "manage.py"), "migrate"], check=True, env=env, cwd=ROOT)  # noqa: S603


def prepare(env: dict[str, str]) -> list[str]:
    """Do every set-up step and return the honcho command line."""
    nginx = ensure_nginx()
    env["NGINX_BIN"] = nginx
    migrate(env)
    render_nginx(env)
    procfile = filtered_procfile(env)
    honcho = str(Path(sys.executable).with_name("honcho"))
    return [honcho, "start", "-f", str(procfile), "-d", str(ROOT), "--no-prefix" if env.get("HONCHO_NO_PREFIX") else "--no-colour"]


def health(env: dict[str, str]) -> tuple[int, dict]:
    """Return the gateway's /health status and body (0 when unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/health", timeout=3) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


def _port_open(port: str) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


def wait_healthy(env: dict[str, str], proc: subprocess.Popen | None, timeout: float = 120) -> None:
    """Wait until /health is healthy and every listening part answers."""
    deadline = time.monotonic() + timeout
    procfile = (Path(env["RUN_DIR"]) / "Procfile").read_text()
    ports = []
    if "\ndashboard:" in "\n" + procfile:
        ports.append(env["DASHBOARD_PORT"])
    if (ROOT / "services" / "checkout-cdn" / "nginx-server.conf.template").exists():
        ports.append(env["CHECKOUT_PORT"])
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the stack exited with code {proc.returncode}; see {env['RUN_DIR']}/stack.log")
        if "\npayments:" in "\n" + procfile:
            status, body = health(env)
            healthy = status == 200 and body.get("status") == "healthy"
        else:
            healthy = _port_open(env["PORT"]) and _port_open(env["AUTH_PORT"])
        if healthy and all(_port_open(p) for p in ports):
            return
        time.sleep(0.3)
    raise TimeoutError(f"gateway not healthy after {timeout:.0f}s: {health(env)}")


def start_background(env: dict[str, str]) -> subprocess.Popen:
    """Start the stack detached from this terminal, logging to RUN_DIR/stack.log."""
    command = prepare(env)
    log = open(Path(env["RUN_DIR"]) / "stack.log", "ab")  # noqa: SIM115 - lives as long as the child
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
    (Path(env["RUN_DIR"]) / "stack.pid").write_text(str(proc.pid))
    return proc


def stop(pid: int, timeout: float = 30) -> None:
    """Stop a stack started by us: SIGTERM to honcho's process group, then wait."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)


def _pid_alive(pid_file: Path) -> int | None:
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().strip() or 0)
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    return pid


def main(argv: list[str]) -> int:
    """Entry point."""
    command = argv[0] if argv else "run"
    env = stack_env()
    pid_file = Path(env["RUN_DIR"]) / "stack.pid"
    if command == "env":
        for key in sorted(DEFAULTS):
            print(f"{key}={env[key]}")
        return 0
    if command == "render-nginx":
        print(render_nginx(env))
        return 0
    if command == "run":
        if _pid_alive(pid_file):
            print("the gateway is already running in the background (make down stops it)")
            return 1
        args = prepare(env)
        print(f"gateway: http://localhost:{env['PORT']}  checkout: http://localhost:{env['CHECKOUT_PORT']}  "
              f"dashboard: http://localhost:{env['DASHBOARD_PORT']}  (Ctrl-C stops everything)", flush=True)
        os.execve(args[0], args, env)  # noqa: S606 - honcho replaces us and owns the children
    if command == "up":
        if _pid_alive(pid_file):
            status, _ = health(env)
            print(f"already running (pid {pid_file.read_text().strip()}, /health {status})")
            return 0
        proc = start_background(env)
        try:
            wait_healthy(env, proc, timeout=float(env.get("UP_TIMEOUT", "180")))
        except (RuntimeError, TimeoutError) as exc:
            print(f"gateway failed to start: {exc}", file=sys.stderr)
            stop(proc.pid)
            return 1
        print(f"gateway healthy on http://localhost:{env['PORT']} (pid {proc.pid}; logs {env['RUN_DIR']}/stack.log)")
        return 0
    if command == "down":
        pid = _pid_alive(pid_file)
        if pid is None:
            print("not running")
        else:
            stop(pid)
            print(f"stopped (pid {pid})")
        pid_file.unlink(missing_ok=True)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
