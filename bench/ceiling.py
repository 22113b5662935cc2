"""The ceiling of the serving stack itself: an empty WSGI app under gunicorn, behind nginx.

    python -m bench.ceiling            # the figures alone; make bench reports them beside its own

nginx's static 200 says what nginx alone does on this machine; the API's answers also pass
through nginx's proxy and gunicorn's HTTP handling, whatever the app does. This measures that
part alone: the same nginx binary proxying (HTTP/1.1 keep-alive upstream, as the gateway does)
to gunicorn with the payments API's server settings (gthread, its workers and threads, a
listening socket per worker) running an app that answers a fixed JSON body without reading the
request. A GET or POST of the gateway cannot be faster than this, nor cost less CPU, so its
ratios to the nginx static ceiling are read next to this one's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from bench.run import free_port, proc_cpu, wrk

ROOT = Path(__file__).resolve().parents[1]
BODY = b'{"id":"pay_0000000000000000","entity":"payment","status":"success"}\n'

NGINX_CONF = """\
worker_processes auto;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    upstream empty_app {{
        server 127.0.0.1:{app_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://empty_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    """The empty app: a fixed JSON answer, the request left unread."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]


def _cpu_seconds(roots: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``roots`` and their live children."""
    used = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid, own, _ = proc_cpu(entry)
            if int(entry) in roots or ppid in roots:
                used += own
    return used


@contextlib.contextmanager
def empty_app_behind_nginx() -> Iterator[tuple[str, list[int]]]:
    """Start nginx and gunicorn (the empty app); yield the URL and their PIDs; stop both."""
    run = Path(tempfile.mkdtemp(prefix="gw-ceiling-"))
    port, app_port = free_port(), free_port()
    (run / "nginx.conf").write_text(NGINX_CONF.format(run=run, port=port, app_port=app_port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    # The payments API's server settings (services/payments/gunicorn.conf.py and its defaults).
    gunicorn_args = [
        sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
        "--workers", os.environ.get("PAYMENTS_WORKERS", "2"), "--threads", os.environ.get("PAYMENTS_THREADS", "12"),
        "--keep-alive", "75", "--backlog", "2048", "--reuse-port", "--bind", f"127.0.0.1:{app_port}", "--chdir", str(ROOT),
        "bench.ceiling:app",
    ]
    procs = [
        subprocess.Popen(gunicorn_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([nginx, "-c", str(run / "nginx.conf"), "-p", str(run)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(url, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the empty app behind nginx did not answer on {url} (see {run}/error.log)")
            time.sleep(0.2)
        yield url, [p.pid for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM if proc is procs[0] else signal.SIGQUIT)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(run, ignore_errors=True)


def measure(connections: int, seconds: int) -> dict:
    """wrk against the empty app behind nginx; adds ``cpu_us``: CPU of nginx and gunicorn per request."""
    with empty_app_behind_nginx() as (url, pids):
        before = _cpu_seconds(pids)
        result = wrk(url, connections, seconds)
        result["cpu_us"] = (_cpu_seconds(pids) - before) * 1e6 / max(result["requests"], 1)
    return result


if __name__ == "__main__":
    for c in (16, 64):
        r = measure(c, 10)
        print(f"empty app behind nginx, c={c}: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, "
              f"p99 {r['p99']:.2f} ms, {r['cpu_us']:.0f} us CPU per request (nginx + gunicorn)")
