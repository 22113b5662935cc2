"""Signed HTTP POSTs to merchant endpoints over kept-alive connections, refusing disallowed destinations.

A lean client on ``http.client``: one attempt costs little CPU in a worker that makes hundreds a
second, and connections to a merchant are reused while the merchant keeps them open.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import logging
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from gateway_common import signing

from webhooks.destinations import refusal_reason
from webhooks.models import RESPONSE_BODY_LIMIT, AttemptResult, truncate_text

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
USER_AGENT = "PaymentGateway-Webhooks/1.0"
NOT_ALLOWED = "destination not allowed"
# A response body up to this size is read to its end so the connection can be reused.
DRAIN_LIMIT = 64 * 1024


class DestinationNotAllowed(Exception):
    """The URL resolves to an address the SSRF policy refuses."""


def _checked_addresses(host: str, port: int) -> list[tuple]:
    """Resolve ``host`` and refuse it if ANY of its addresses is disallowed."""
    infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if refusal_reason(address) is not None:
            raise DestinationNotAllowed(f"{host} resolves to a refused address")
    return infos


def _guarded_connection(address: tuple[str, int], timeout: float | None = None, source_address: object = None) -> socket.socket:
    # Resolve once, check every address, then connect to exactly those addresses, so a
    # DNS answer that changes between check and connect cannot reach a private host.
    host, port = address
    error: OSError | None = None
    for family, socktype, proto, _, sockaddr in _checked_addresses(host, port):
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(timeout if isinstance(timeout, int | float) else TIMEOUT_SECONDS)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError("no address to connect to")


_Key = tuple[str, str, int]


class Deadlines:
    """Cuts the connection of an attempt that reaches its total deadline.

    Socket timeouts bound each read or write, not their sum: a receiver that trickles its answer
    a byte at a time held one attempt 12 s. One thread per process looks at the attempts under
    way every ``TICK`` and shuts the socket of any past its deadline, which ends the blocked call.
    """

    TICK = 0.1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, http.client.HTTPConnection]] = {}
        self._thread: threading.Thread | None = None

    def watch(self, conn: http.client.HTTPConnection, deadline: float) -> int:
        """Cut ``conn`` at ``deadline`` (monotonic) unless ``release``d first; return the token."""
        token = id(conn)
        with self._lock:
            self._watched[token] = (deadline, conn)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
        return token

    def release(self, token: int) -> None:
        """Stop watching a connection (its attempt is over)."""
        with self._lock:
            self._watched.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                expired = [conn for deadline, conn in self._watched.values() if deadline <= now]
            for conn in expired:
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


class Session:
    """Idle keep-alive connections per (scheme, host, port), shared by a process's threads."""

    def __init__(self, *, allow_private: bool, pool_size: int) -> None:
        self.allow_private = allow_private
        self.pool_size = pool_size
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()
        self.deadlines = Deadlines()

    def get(self, key: _Key) -> tuple[http.client.HTTPConnection, bool]:
        """Return an idle connection that is still open (reused=True), or a new one."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._new(key), False
            if _still_open(conn):
                return conn, True
            conn.close()

    def put(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose last response was read completely for the next POST."""
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()

    def _new(self, key: _Key) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT_SECONDS, context=self._tls
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        if not self.allow_private:
            conn._create_connection = _guarded_connection  # type: ignore[attr-defined]
        return conn


def _still_open(conn: http.client.HTTPConnection) -> bool:
    # An idle connection with something to read has been closed (or spoken on) by the server.
    sock = conn.sock
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _quick_ack(sock: socket.socket | None) -> None:
    # Acknowledge the response's first segment at once: a receiver that writes its headers and
    # body separately (Nagle on its side) would otherwise wait for our delayed ACK (~40 ms) on
    # every kept-alive request. Linux only; elsewhere a no-op.
    if sock is not None and _TCP_QUICKACK is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def make_session(*, allow_private: bool, pool_size: int = 16) -> Session:
    """Return the connection pools for deliveries; outside test mode every connect is SSRF-checked."""
    return Session(allow_private=allow_private, pool_size=pool_size)


def signed_headers(
    secret: str, event_id: str, body: bytes, now: float | None = None, standard_secrets: tuple[str, ...] = ()
) -> dict[str, str]:
    """Return the delivery headers, signed with ``secret`` at ``now``.

    With ``standard_secrets`` (an endpoint made through /webhook-endpoints) the Standard Webhooks
    headers come too, one signature per secret (two during a rotation).
    """
    timestamp = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": event_id,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": signing.sign(secret, body),
        "X-Webhook-Signature-V2": signing.sign_v2(secret, timestamp, body),
        # Razorpay's names for the same signature and id, so Razorpay's SDKs verify any delivery.
        "X-Razorpay-Signature": signing.sign(secret, body),
        "X-Razorpay-Event-Id": event_id,
    }
    if standard_secrets:
        headers["webhook-id"] = event_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = " ".join(
            signing.sign_standard(s, event_id, timestamp, body) for s in standard_secrets
        )
    return headers


def _target(url: str) -> tuple[_Key, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        raise ValueError("not an http(s) URL with a host")
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, host, port), path


def post(
    session: Session, url: str, secret: str, event_id: str, body: bytes, standard_secrets: tuple[str, ...] = ()
) -> AttemptResult:
    """POST ``body`` once; 2xx is success, anything else is a failed attempt with its reason."""
    headers = signed_headers(secret, event_id, body, standard_secrets=standard_secrets)
    started = time.monotonic()
    deadline = started + TIMEOUT_SECONDS
    try:
        key, path = _target(url)
    except ValueError:
        return AttemptResult(ok=False, error="request failed: InvalidURL")
    for try_ in range(2):
        conn, reused = session.get(key)
        # Connect, send and read share one deadline: the connect waits at most what is left, and
        # the watchdog cuts the socket if the answer is still coming when the deadline passes.
        conn.timeout = max(deadline - time.monotonic(), 0.05)
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
        token = session.deadlines.watch(conn, deadline)
        try:
            conn.request("POST", path, body=body, headers=headers)
            _quick_ack(conn.sock)
            response = conn.getresponse()
            if time.monotonic() >= deadline:
                # Cut by the watchdog mid-answer: what was parsed (a status line, say) is no answer.
                conn.close()
                return _timed_out()
            break
        except DestinationNotAllowed:
            conn.close()
            return AttemptResult(ok=False, error=NOT_ALLOWED)
        except (http.client.RemoteDisconnected, http.client.CannotSendRequest, BrokenPipeError, ConnectionResetError) as exc:
            conn.close()
            if time.monotonic() >= deadline:
                return _timed_out()
            if reused and try_ == 0:
                continue  # the merchant closed the idle connection as we reused it: once more on a new one
            return AttemptResult(ok=False, error=truncate_text(f"connection failed: {_reason(exc)}", 500))
        except TimeoutError:
            conn.close()
            return _timed_out()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if time.monotonic() >= deadline:
                return _timed_out()
            return AttemptResult(ok=False, error=truncate_text(f"connection failed: {_reason(exc)}", 500))
        except Exception as exc:  # e.g. a host name that cannot be encoded
            log.warning("request to %s failed unexpectedly", key, exc_info=True)
            conn.close()
            return AttemptResult(ok=False, error=truncate_text(f"request failed: {type(exc).__name__}", 500))
        finally:
            session.deadlines.release(token)
    token = session.deadlines.watch(conn, deadline)
    try:
        raw, complete = _read_head(response, deadline=deadline)
    finally:
        session.deadlines.release(token)
    if complete and not response.will_close and time.monotonic() < deadline:
        response.close()  # read to its end; the socket stays with the connection
        session.put(key, conn)  # ... which is kept for the next POST
    else:
        response.close()
        conn.close()
    code = response.status
    text = truncate_text(raw)
    if 200 <= code < 300:
        return AttemptResult(ok=True, response_code=code, response_body=text)
    if 300 <= code < 400:
        error = f"redirect to {truncate_text(response.getheader('Location', ''), 300)} not followed"
    else:
        error = f"HTTP {code}"
    return AttemptResult(ok=False, response_code=code, response_body=text, error=error)


def _timed_out() -> AttemptResult:
    return AttemptResult(ok=False, error=f"timed out after {TIMEOUT_SECONDS:g}s")


def _read_head(response: http.client.HTTPResponse, deadline: float) -> tuple[bytes, bool]:
    """Read up to 1 KiB of the body, giving up at the deadline (a trickling body cannot hold us).

    Reads on (discarding) up to ``DRAIN_LIMIT`` bytes so a short answer frees its connection for
    reuse; returns the kept bytes and whether the body was read to its end.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        while size < DRAIN_LIMIT and time.monotonic() < deadline:
            chunk = response.read1(min(DRAIN_LIMIT - size, 16384))
            if not chunk:
                return b"".join(chunks)[:RESPONSE_BODY_LIMIT], True
            if size < RESPONSE_BODY_LIMIT:
                chunks.append(chunk)
            size += len(chunk)
    except Exception:  # noqa: S110 - a broken body does not change the status we got
        pass
    return b"".join(chunks)[:RESPONSE_BODY_LIMIT], False


def _reason(exc: Exception) -> str:
    # Dig to the innermost cause: "[Errno 111] Connection refused" rather than urllib3's wrapper text.
    inner: BaseException = exc
    while inner.__cause__ is not None or (inner.args and isinstance(inner.args[0], BaseException)):
        inner = inner.__cause__ if inner.__cause__ is not None else inner.args[0]
    reason = getattr(inner, "reason", None)
    return str(reason if reason is not None else inner)
