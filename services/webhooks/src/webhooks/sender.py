"""Signed HTTP POSTs to merchant endpoints, refusing disallowed destinations at connect time."""

from __future__ import annotations

import ipaddress
import socket
import time

import requests
from gateway_common import signing
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from webhooks.destinations import refusal_reason
from webhooks.models import RESPONSE_BODY_LIMIT, AttemptResult, truncate_text

TIMEOUT_SECONDS = 5.0
USER_AGENT = "PaymentGateway-Webhooks/1.0"
NOT_ALLOWED = "destination not allowed"


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


def _connect(conn: HTTPConnection) -> socket.socket:
    # Resolve once, check every address, then connect to exactly those addresses, so a
    # DNS answer that changes between check and connect cannot reach a private host.
    try:
        infos = _checked_addresses(conn._dns_host, conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    error: Exception | None = None
    for family, socktype, proto, _, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(conn.timeout if isinstance(conn.timeout, int | float) else TIMEOUT_SECONDS)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
            return sock
        except TimeoutError as exc:
            sock.close()
            error = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out")
            error.__cause__ = exc
        except OSError as exc:
            sock.close()
            error = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
    raise error or NewConnectionError(conn, "no address to connect to")


class GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An adapter whose connections only go to addresses the SSRF policy allows."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        """Create the pool manager with guarded connection pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}


def make_session(*, allow_private: bool, pool_size: int = 16) -> requests.Session:
    """Return a Session for deliveries (shared by a process's threads); no proxies from the env."""
    session = requests.Session()
    session.trust_env = False
    adapter_cls = HTTPAdapter if allow_private else GuardedAdapter
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter_cls(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0))
    return session


def signed_headers(secret: str, event_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Return the delivery headers, signed with ``secret`` at ``now``."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": event_id,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": signing.sign(secret, body),
        "X-Webhook-Signature-V2": signing.sign_v2(secret, timestamp, body),
    }


def post(session: requests.Session, url: str, secret: str, event_id: str, body: bytes) -> AttemptResult:
    """POST ``body`` once; 2xx is success, anything else is a failed attempt with its reason."""
    headers = signed_headers(secret, event_id, body)
    started = time.monotonic()
    try:
        response = session.post(
            url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False, stream=True
        )
    except DestinationNotAllowed:
        return AttemptResult(ok=False, error=NOT_ALLOWED)
    except requests.Timeout:
        return AttemptResult(ok=False, error=f"timed out after {TIMEOUT_SECONDS:g}s")
    except requests.ConnectionError as exc:
        return AttemptResult(ok=False, error=truncate_text(f"connection failed: {_reason(exc)}", 500))
    except requests.RequestException as exc:
        return AttemptResult(ok=False, error=truncate_text(f"request failed: {type(exc).__name__}", 500))
    try:
        raw = _read_head(response, deadline=started + TIMEOUT_SECONDS)
    finally:
        response.close()
    code = response.status_code
    text = truncate_text(raw)
    if 200 <= code < 300:
        return AttemptResult(ok=True, response_code=code, response_body=text)
    error = f"redirect to {truncate_text(response.headers.get('Location', ''), 300)} not followed" if 300 <= code < 400 else f"HTTP {code}"
    return AttemptResult(ok=False, response_code=code, response_body=text, error=error)


def _read_head(response: requests.Response, deadline: float) -> bytes:
    """Read up to 1 KiB of the body, giving up at the deadline (a trickling body cannot hold us)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < RESPONSE_BODY_LIMIT and time.monotonic() < deadline:
            chunk = response.raw.read1(RESPONSE_BODY_LIMIT - size, decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except Exception:  # noqa: S110 - a broken body does not change the status we got
        pass
    return b"".join(chunks)


def _reason(exc: Exception) -> str:
    # Dig to the innermost cause: "[Errno 111] Connection refused" rather than urllib3's wrapper text.
    inner: BaseException = exc
    while inner.__cause__ is not None or (inner.args and isinstance(inner.args[0], BaseException)):
        inner = inner.__cause__ if inner.__cause__ is not None else inner.args[0]
    reason = getattr(inner, "reason", None)
    return str(reason if reason is not None else inner)
