"""Patches of gunicorn shared by the API services: its own error answers in the envelope, whole responses, a cached Date header, the metrics directory."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway_common.errors import error_body
from gateway_common.patches import require_checked

# gunicorn answers some requests before the app sees them (a request line over
# limit_request_line: 414; a header value with a control character: 400; an app that raised
# past the WSGI callable: 500) with a small HTML page that nginx passes through unchanged.
# Patched: gunicorn.util.write_error, called by Worker.handle_error, and gunicorn.util.http_date,
# called for every response's Date header, as read in the versions below:
# https://github.com/benoitc/gunicorn/blob/27.0.1/gunicorn/util.py and
# https://github.com/benoitc/gunicorn/blob/27.0.1/gunicorn/workers/base.py (handle_error).
GUNICORN_CHECKED = ("27.0.1",)
_GUNICORN_SOURCE = "https://github.com/benoitc/gunicorn/blob/27.0.1/gunicorn/util.py"
_GUNICORN_WSGI_SOURCE = "https://github.com/benoitc/gunicorn/blob/27.0.1/gunicorn/http/wsgi.py"

_CODES = {414: "BAD_REQUEST_ERROR", 431: "BAD_REQUEST_ERROR", 500: "SERVER_ERROR", 501: "BAD_REQUEST_ERROR"}
_DESCRIPTIONS = {
    400: "Bad request: the request line or a header is malformed",
    403: "Forbidden",
    414: "Request URI too long",
    417: "Expectation failed",
    431: "Request header fields too large",
    500: "Internal server error",
    501: "Transfer coding not supported",
}


def error_response(status: int, reason: str) -> bytes:
    """Return the raw HTTP response gunicorn sends for one of its own errors, in the envelope."""
    code = _CODES.get(status, "BAD_REQUEST_ERROR" if status < 500 else "SERVER_ERROR")
    body = json.dumps(error_body(code, _DESCRIPTIONS.get(status, reason)), separators=(",", ":")).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def json_error_pages() -> None:
    """Make gunicorn's own error answers JSON in the API.md envelope (call from gunicorn.conf.py)."""
    from gunicorn import util

    require_checked("gunicorn", GUNICORN_CHECKED, "gunicorn.util.write_error", _GUNICORN_SOURCE)

    def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
        # mesg is gunicorn's detail (it may quote the request); it is logged by gunicorn, not sent.
        util.write_nonblock(sock, error_response(status_int, reason))

    util.write_error = write_error


def cached_date_header() -> None:
    """Format the Date header once per second instead of once per response (call in ``post_fork``).

    gunicorn formats it with ``email.utils.formatdate`` on every response, a visible share of a
    small response's CPU; the text only changes once a second.
    """
    from gunicorn import util

    require_checked("gunicorn", GUNICORN_CHECKED, "gunicorn.util.http_date", _GUNICORN_SOURCE)
    formatted = util.http_date

    def http_date(timestamp: float | None = None, _cache: list = [None, ""]) -> str:  # noqa: B006 - per-process cache
        if timestamp is not None:
            return formatted(timestamp)
        now = int(time.time())
        if _cache[0] != now:
            _cache[1] = formatted(now)
            _cache[0] = now
        return _cache[1]

    util.http_date = http_date


class _HeldWrites:
    """Stands in for a response's socket while gunicorn frames a write: keeps the bytes it is given."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.parts.append(bytes(data))


def whole_responses() -> None:
    """Send a response's head and its first body bytes in one write (call at the top of gunicorn.conf.py).

    gunicorn writes the head, then the body, in two ``sendall`` calls. A replica killed between
    them (SIGKILL, OOM) leaves nginx with a head it has already passed to the client and no body:
    the client sees a broken response, which nginx cannot send to another replica any more, even
    for a POST whose Idempotency-Key would have made that safe (seen in tests/chaos: 1 in 6,000
    keyed POSTs while replicas were killed every few seconds). In one write, a small answer
    reaches nginx whole or not at all; "not at all" nginx sends on (@upstream_failed). Patched:
    ``Response.write`` (its first call), as read in
    https://github.com/benoitc/gunicorn/blob/27.0.1/gunicorn/http/wsgi.py.
    """
    from gunicorn.http.wsgi import Response

    require_checked("gunicorn", GUNICORN_CHECKED, "gunicorn.http.wsgi.Response.write", _GUNICORN_WSGI_SOURCE)
    write = getattr(Response.write, "__wrapped__", Response.write)

    def write_whole(self: Any, data: bytes) -> None:
        if self.headers_sent:
            return write(self, data)
        sock, held = self.sock, _HeldWrites()
        self.sock = held
        try:
            write(self, data)  # gunicorn's own framing and bookkeeping, written to ``held``
        finally:
            self.sock = sock
        sock.sendall(b"".join(held.parts))

    write_whole.__wrapped__ = write  # type: ignore[attr-defined]
    Response.write = write_whole


def multiprocess_metrics(service: str, bind: str) -> tuple[Callable[[Any], None], Callable[[Any, Any], None]]:
    """Give this gunicorn's workers one directory of prometheus_client multiprocess files; return the
    ``when_ready`` and ``child_exit`` hooks that keep it (call at the top of gunicorn.conf.py).

    The directory is ``PROMETHEUS_MULTIPROC_DIR`` when set, else ``gw-metrics-<service>-<bind>`` in
    ``METRICS_DIR`` (the native stack's run directory) or the temporary directory: one per gunicorn,
    so each replica's ``/metrics`` adds up its own workers only. It must be named before any worker
    imports prometheus_client, which picks its storage at import. It is emptied when the master is
    ready, after ``port_not_taken`` let it start (a second gunicorn refused on the same port must not
    wipe the first one's files): counters then start again from zero, as Prometheus expects of a restart.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(
        Path(os.environ.get("METRICS_DIR") or tempfile.gettempdir()) / f"gw-metrics-{service}-{re.sub(r'[^A-Za-z0-9.-]', '_', bind)}"
    )
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory

    def when_ready(server: Any) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)

    def child_exit(server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        # A dead worker's live gauges go; its counters stay in the totals.
        multiprocess.mark_process_dead(worker.pid, directory)

    return when_ready, child_exit


def port_not_taken(bind: str, attempts: int = 5) -> Callable[[Any], None]:
    """Return gunicorn's ``on_starting`` hook that refuses to start where something already listens.

    The API services set ``reuse_port``: each gunicorn worker opens its own listening socket
    (SO_REUSEPORT) and the kernel spreads new connections over them. With one socket shared by all
    workers, the first worker to wake accepted every connection of a burst, and nginx keeps its
    upstream connections alive, so one worker served a whole run on one core while the others
    idled: an empty app measured 2,700 or 9,000 req/s from one start to the next (bench/RESULTS.md,
    History). SO_REUSEPORT also lets a second gunicorn of the same user bind the same port, and the
    two would share its traffic; instead of gunicorn's "address already in use", this check refuses
    to start while the port answers (waiting ``attempts`` seconds for a dying one to go, as
    gunicorn retries a bind). Replicas meant to share one port (compose on the host network) set
    ``PORT_SHARED_BY_REPLICAS=true``, which skips the check.
    """
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (an address compared, not bound)
        host = "127.0.0.1"

    def on_starting(server: Any) -> None:
        if os.environ.get("PORT_SHARED_BY_REPLICAS", "").lower() in ("1", "true", "yes"):
            return
        if not port.isdigit():  # a unix socket or a form this check does not read: gunicorn's own bind decides
            return
        # Runs once in the master before any worker exists: the waits below hold no request slot.
        for attempt in range(attempts):
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                return
            if attempt < attempts - 1:
                time.sleep(1)
        raise SystemExit(f"{bind} is already served by another process; stop it before starting this one")

    return on_starting
