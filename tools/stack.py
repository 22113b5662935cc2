"""Run the whole gateway natively: migrate, render nginx, start every process with honcho.

    python -m tools.stack run           foreground; Ctrl-C stops everything
    python -m tools.stack up            background; returns when /health is healthy
    python -m tools.stack down          stop what `up` started
    python -m tools.stack render-nginx  write the rendered nginx.conf and print its path
    python -m tools.stack env           print the environment the processes get

Every setting is an environment variable with a local default (see README). SCALE (e.g.
"payments=3 payments-worker=2") runs several replicas of the services and workers it names.
"""

from __future__ import annotations

import base64
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
    "WEBHOOKS_STREAM_PORT": "8105",
    "BENCH_STATIC_PORT": "8099",
    # Internal listeners for metrics (docs/metrics.md): nginx's stub_status and each worker's /metrics.
    "NGINX_STATUS_PORT": "8098",
    "PAYMENTS_WORKER_METRICS_PORT": "8112",
    "REFUNDS_WORKER_METRICS_PORT": "8113",
    "WEBHOOKS_WORKER_METRICS_PORT": "8114",
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
    # The connection budget (see CONNECTION_BUDGET): pooled PostgreSQL connections per process.
    "AUTH_DB_POOL_MAX": "2",
    "PAYMENTS_DB_POOL_MAX": "5",
    "REFUNDS_DB_POOL_MAX": "2",
    "WEBHOOKS_DB_POOL_MAX": "1",
    "PAYMENTS_WORKER_DB_POOL_MAX": "4",
    "REFUNDS_WORKER_DB_POOL_MAX": "2",
    # 3 rather than 4 since the stream process took one (its batches of starts and records need few).
    "WEBHOOKS_WORKER_DB_POOL_MAX": "3",
    # The live stream's process: every listener's reads are short transactions on one connection.
    "WEBHOOKS_STREAM_DB_POOL_MAX": "1",
}

# Each Procfile entry's processes and pool: (variable with the process count, its default, the
# pool's variable). Each process's pool holds at most its DB_POOL_MAX, so the stack holds at most
# the sum: 30 by default, so a second stack (`make test` while `make run` is up) fits in
# PostgreSQL's default max_connections of 100.
CONNECTION_BUDGET: dict[str, tuple[str | None, int, str]] = {
    "auth": ("AUTH_WORKERS", 2, "AUTH_DB_POOL_MAX"),
    "payments": ("PAYMENTS_WORKERS", 2, "PAYMENTS_DB_POOL_MAX"),
    "payments-worker": (None, 1, "PAYMENTS_WORKER_DB_POOL_MAX"),
    "refunds": ("REFUNDS_WORKERS", 2, "REFUNDS_DB_POOL_MAX"),
    "refunds-worker": (None, 1, "REFUNDS_WORKER_DB_POOL_MAX"),
    "webhooks": ("WEBHOOKS_WORKERS", 2, "WEBHOOKS_DB_POOL_MAX"),
    "webhooks-worker": (None, 1, "WEBHOOKS_WORKER_DB_POOL_MAX"),
    "webhooks-stream": (None, 1, "WEBHOOKS_STREAM_DB_POOL_MAX"),
}

# The stack's connection budget: what CONNECTION_BUDGET adds up to by default, and what replicas
# (SCALE) must not push it past: their pools shrink to fit (fit_connection_budget).
DEFAULT_BUDGET = 30

# Procfile entries that can run as several replicas (SCALE="payments=3 payments-worker=2"), and the
# prefix of the setting that differs between them: <PREFIX>_PORT for the first replica, then
# +REPLICA_PORT_STEP each (or the list in <PREFIX>_PORTS), becomes each replica's <PREFIX>_BIND. An
# API replica listens there (nginx's upstream lists them all); a worker replica serves its metrics
# there and takes its own Celery node name.
SCALABLE: dict[str, str] = {
    "auth": "AUTH",
    "payments": "PAYMENTS",
    "refunds": "REFUNDS",
    "webhooks": "WEBHOOKS",
    "webhooks-stream": "WEBHOOKS_STREAM",
    "payments-worker": "PAYMENTS_WORKER_METRICS",
    "refunds-worker": "REFUNDS_WORKER_METRICS",
    "webhooks-worker": "WEBHOOKS_WORKER_METRICS",
}

# The scalable entries behind nginx: each has an upstream <PREFIX>_UPSTREAM.
API_PARTS = ("auth", "payments", "refunds", "webhooks", "webhooks-stream")

# Procfile entries and the directory each needs; entries whose part is not there are skipped.
PARTS = {
    "auth": "services/auth",
    "payments": "services/payments/src",
    "payments-worker": "services/payments/src/payments/worker.py",
    "refunds": "services/refunds/src",
    "refunds-worker": "services/refunds/src/refunds/worker.py",
    "webhooks": "services/webhooks/src",
    "webhooks-stream": "services/webhooks/gunicorn_stream.conf.py",
    "webhooks-worker": "services/webhooks/src/webhooks/worker.py",
    "dashboard": "dashboard/src",
}


def port_settings() -> list[str]:
    """Every setting that names a port the stack listens on (tests and the benchmark give each a free one)."""
    return ["PORT", *(key for key in DEFAULTS if key.endswith("_PORT"))]


def _token() -> str:
    return secrets.token_urlsafe(32)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


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
    # FINGERPRINT_KEY: keys the stored Idempotency-Key fingerprints. API_SECRET_KEY: the Fernet
    # key that keeps merchants' API secrets recoverable at rest (the Razorpay payment signature).
    for name, file_name, make in (
        ("GATEWAY_SECRET", "gateway_secret", _token),
        ("DASHBOARD_FORWARD_SECRET", "dashboard_forward_secret", _token),
        ("FINGERPRINT_KEY", "fingerprint_key", _token),
        ("API_SECRET_KEY", "api_secret_key", _fernet_key),
    ):
        if not env.get(name):
            secret_file = run_dir / file_name
            if not secret_file.exists():
                secret_file.write_text(make())
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
    env["WEBHOOKS_STREAM_BIND"] = f"{host}:{env['WEBHOOKS_STREAM_PORT']}"
    env["DASHBOARD_BIND"] = f"{env.get('DASHBOARD_HOST', '127.0.0.1')}:{env['DASHBOARD_PORT']}"
    env["PYTHONUNBUFFERED"] = "1"
    for prefix in ("PAYMENTS_WORKER_METRICS", "REFUNDS_WORKER_METRICS", "WEBHOOKS_WORKER_METRICS"):
        env[f"{prefix}_BIND"] = f"{host}:{env[f'{prefix}_PORT']}"
    # Each gunicorn keeps its metrics' multiprocess files in a directory of its own under here.
    env.setdefault("METRICS_DIR", str(run_dir / "metrics"))
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
        "NGINX_STATUS_LISTEN": f"127.0.0.1:{env['NGINX_STATUS_PORT']}",
        "AUTH_UPSTREAM": f"127.0.0.1:{env['AUTH_PORT']}",
        "PAYMENTS_UPSTREAM": f"127.0.0.1:{env['PAYMENTS_PORT']}",
        "REFUNDS_UPSTREAM": f"127.0.0.1:{env['REFUNDS_PORT']}",
        "WEBHOOKS_UPSTREAM": f"127.0.0.1:{env['WEBHOOKS_PORT']}",
        "WEBHOOKS_STREAM_UPSTREAM": f"127.0.0.1:{env['WEBHOOKS_STREAM_PORT']}",
        "OPENAPI_FILE": str(docs_dir / "openapi.json"),
        "OPENAPI_DOCS_FILE": str(docs_dir / "docs.html"),
        "SWAGGER_UI_DIR": swagger_ui_dir(),
        "CHECKOUT_ROOT": str(ROOT / "services" / "checkout-cdn" / "public"),
        "CHECKOUT_LISTEN": f"{env['BIND_HOST']}:{env['CHECKOUT_PORT']}",
        "API_ORIGIN": env.get("PUBLIC_API_ORIGIN", f"http://localhost:{env['PORT']}"),
        "CHECKOUT_ORIGIN": env.get("CHECKOUT_URL", f"http://localhost:{env['CHECKOUT_PORT']}"),
    }
    # With replicas (SCALE), an API service's upstream lists each of them.
    for name in API_PARTS:
        values[f"{SCALABLE[name]}_UPSTREAM"] = upstream_servers(env, name)
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


def parse_scale(text: str) -> dict[str, int]:
    """Read SCALE ("payments=3 payments-worker=2", spaces or commas between): replicas by Procfile entry."""
    counts: dict[str, int] = {}
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        name, sep, number = item.partition("=")
        if name not in SCALABLE:
            raise SystemExit(f"SCALE: {name!r} cannot be scaled; these can: {', '.join(SCALABLE)}")
        if not sep or not number.isdigit() or not 1 <= int(number) <= 20:
            raise SystemExit(f"SCALE: {item!r} is not NAME=COUNT with a COUNT from 1 to 20")
        counts[name] = int(number)
    return counts


def replica_count(env: dict[str, str], name: str) -> int:
    """How many replicas of Procfile entry ``name`` run (SCALE; 1 by default)."""
    return parse_scale(env.get("SCALE", "")).get(name, 1)


def replica_ports(env: dict[str, str], name: str) -> list[str]:
    """The port of each replica of a scalable entry: <PREFIX>_PORTS, else <PREFIX>_PORT + REPLICA_PORT_STEP steps."""
    prefix, count = SCALABLE[name], replica_count(env, name)
    listed = [p.strip() for p in env.get(f"{prefix}_PORTS", "").split(",") if p.strip()]
    if listed:
        if len(listed) < count:
            raise SystemExit(f"{prefix}_PORTS lists {len(listed)} ports for {count} replicas of {name}")
        return listed[:count]
    step = int(env.get("REPLICA_PORT_STEP") or 100)
    return [str(int(env[f"{prefix}_PORT"]) + i * step) for i in range(count)]


def upstream_servers(env: dict[str, str], name: str) -> str:
    """The nginx upstream servers of an API service: one, or (replicas) several "server" lines in one value."""
    return ";\n        server ".join(f"127.0.0.1:{port}" for port in replica_ports(env, name))


def replicas(env: dict[str, str], name: str, command: str) -> list[tuple[str, str]]:
    """The Procfile entries (name, command) that run ``name``: itself, then ``name-2`` ... with their own settings."""
    if name not in SCALABLE or replica_count(env, name) == 1:
        return [(name, command)]
    prefix = SCALABLE[name]
    entries = [(name, command)]
    for n, port in enumerate(replica_ports(env, name)[1:], start=2):
        # Each replica binds its own port; a worker also names its own Celery node (-n NAME@%h).
        own = command.replace("@%h", f"-{n}@%h")
        entries.append((f"{name}-{n}", f"env {prefix}_BIND={env['BIND_HOST']}:{port} {own}"))
    return entries


def procfile_entries(env: dict[str, str], only: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """The root Procfile's entries (name, command) whose part exists in this checkout, each replica its own entry."""
    entries = []
    for line in (ROOT / "Procfile").read_text().splitlines():
        name = line.split(":", 1)[0].strip()
        if not line.strip() or line.startswith("#") or (only and name not in only):
            continue
        need = PARTS.get(name)
        if need is None or (ROOT / need).exists():
            entries.extend(replicas(env, name, line.split(":", 1)[1].strip()))
    return entries


def filtered_procfile(env: dict[str, str]) -> Path:
    """Write RUN_DIR/Procfile with the entries of ``procfile_entries`` (only STACK_PARTS, when set)."""
    only = {p.strip() for p in env.get("STACK_PARTS", "").split(",") if p.strip()}
    lines = [f"{name}: {command}" for name, command in procfile_entries(env, only)]
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


def _processes(env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Each part's processes (replicas x processes per replica) and pool size per process."""
    found = {}
    for part, (count_var, count_default, pool_var) in CONNECTION_BUDGET.items():
        if (ROOT / PARTS[part]).exists():
            count = int(env.get(count_var) or count_default) if count_var else count_default
            found[part] = (replica_count(env, part) * count, int(env.get(pool_var) or env.get("DB_POOL_MAX") or 8))
    return found


def connection_budget(env: dict[str, str]) -> dict[str, int]:
    """The most PostgreSQL connections each part of the stack may hold (replicas x processes x pool)."""
    return {part: processes * pool for part, (processes, pool) in _processes(env).items()}


def fit_connection_budget(env: dict[str, str]) -> dict[str, int]:
    """With replicas (SCALE), shrink every pool by one factor until the stack fits its budget; return the new sizes.

    The budget is STACK_DB_BUDGET (30 by default). Pools keep at least one connection per process,
    so a SCALE with more processes than that is refused with what to change. Without replicas the
    configured pools stand as they are (check_connection_budget still holds them to the server).
    """
    if not parse_scale(env.get("SCALE", "")):
        return {}
    limit = int(env.get("STACK_DB_BUDGET") or DEFAULT_BUDGET)
    parts = _processes(env)
    if sum(processes * pool for processes, pool in parts.values()) <= limit:
        return {}
    least = sum(processes for processes, _ in parts.values())
    if least > limit:
        listing = ", ".join(f"{part} {processes}" for part, (processes, _) in parts.items())
        raise SystemExit(
            f"gateway not started: SCALE={env['SCALE']!r} runs {least} processes that each need a PostgreSQL connection "
            f"({listing}), more than the stack's budget of {limit}. Run fewer replicas, fewer gunicorn workers per "
            "replica (e.g. PAYMENTS_WORKERS=1), or raise STACK_DB_BUDGET if the server has room (see README, Replicas)."
        )

    def sizes(factor: float) -> dict[str, int]:
        return {part: max(1, int(pool * factor)) for part, (_, pool) in parts.items()}

    factor = 1.0
    while sum(parts[p][0] * n for p, n in sizes(factor).items()) > limit:
        factor -= 0.01
    shrunk = sizes(factor)
    for part, size in shrunk.items():
        env[CONNECTION_BUDGET[part][2]] = str(size)
    return shrunk


def application_names() -> list[str]:
    """The ``application_name`` of every pool of the stack (each service and worker sets its own)."""
    return list(CONNECTION_BUDGET)


def budget_problem(budget: dict[str, int], max_connections: int, reserved: int, in_use: int) -> str | None:
    """Say why a stack needing ``budget`` does not fit the server's free connections (None when it does)."""
    need = sum(budget.values())
    free = max_connections - reserved - in_use
    if need <= free:
        return None
    parts = ", ".join(f"{part} {n}" for part, n in budget.items())
    return (
        f"this stack may hold up to {need} PostgreSQL connections ({parts}), but the server has only {free} free: "
        f"max_connections {max_connections}, {reserved} reserved for superusers, {in_use} in use now. "
        "Stop another stack or test run, raise max_connections, or lower the *_DB_POOL_MAX settings (see README)."
    )


def check_connection_budget(env: dict[str, str]) -> int:
    """Refuse to start when the stack's connection budget does not fit PostgreSQL; return the budget."""
    import psycopg

    budget = connection_budget(env)
    with psycopg.connect(env["DATABASE_URL"], connect_timeout=5, autocommit=True) as conn:
        max_connections, reserved, in_use = conn.execute(
            "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int, "
            "(SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') - 1"
        ).fetchone()
    problem = budget_problem(budget, max_connections, reserved, in_use)
    if problem is not None:
        raise SystemExit(f"gateway not started: {problem}")
    need = sum(budget.values())
    print(f"PostgreSQL connections: this stack holds at most {need} of the {max_connections - reserved - in_use} free",
          flush=True)
    return need


def prepare(env: dict[str, str]) -> list[str]:
    """Do every set-up step and return the honcho command line."""
    nginx = ensure_nginx()
    env["NGINX_BIN"] = nginx
    # Replicas (SCALE) are read, and their pools fitted to the budget, before anything is done.
    shrunk = fit_connection_budget(env)
    if shrunk:
        print("replicas: pools shrunk to fit the connection budget: "
              + ", ".join(f"{CONNECTION_BUDGET[part][2]}={size}" for part, size in shrunk.items()), flush=True)
    migrate(env)
    check_connection_budget(env)
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
    if "\nwebhooks-stream:" in "\n" + procfile:
        ports.append(env["WEBHOOKS_STREAM_PORT"])
    if (ROOT / "services" / "checkout-cdn" / "nginx-server.conf.template").exists():
        ports.append(env["CHECKOUT_PORT"])
    # Every replica of an API service listens before the stack counts as up.
    ports.extend(port for name in API_PARTS if f"\n{name}-2:" in "\n" + procfile
                 for port in replica_ports(env, name))
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
