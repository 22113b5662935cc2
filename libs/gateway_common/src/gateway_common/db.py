"""psycopg2 connection pool (created lazily, after fork) and a transaction helper."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool
from psycopg2 import sql

from gateway_common.errors import ServiceUnavailableError, TransactionConflictError
from gateway_common.logs import REQUEST_ID

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors meaning "the database is not reachable", answered as 503.
UNAVAILABLE_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.pool.PoolError)
# Deadlock detected, serialization failure: the transaction was rolled back and may simply run again.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 5
CONFLICT_BACKOFF_SECONDS = 0.01
# Commits made in this context (thread or task), so a retry never repeats committed work.
_commits: contextvars.ContextVar[int] = contextvars.ContextVar("gateway_db_commits", default=0)
_TOO_MANY_CLIENTS = ("too many clients", "too many connections", "remaining connection slots")


def is_conflict(error: BaseException) -> bool:
    """Tell whether an error (or what caused it) is a deadlock or serialization failure."""
    while error is not None:
        if isinstance(error, TransactionConflictError) or getattr(error, "pgcode", None) in CONFLICT_SQLSTATES:
            return True
        error = error.__cause__
    return False


def describe_db_error(error: BaseException) -> dict[str, str | None]:
    """Name what went wrong with the database: root exception class, SQLSTATE, reason, first message line."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    message = " ".join(str(root).split())[:300]
    sqlstate = getattr(root, "pgcode", None)
    lowered = message.lower()
    if sqlstate == "53300" or any(text in lowered for text in _TOO_MANY_CLIENTS):
        reason = "too many clients: PostgreSQL's connection limit is reached"
    elif sqlstate in CONFLICT_SQLSTATES:
        reason = "transaction conflict (deadlock or serialization failure)"
    elif isinstance(root, psycopg2.pool.PoolError):
        reason = "connection pool exhausted"
    elif isinstance(root, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        reason = "database unreachable or connection lost"
    else:
        reason = type(root).__name__
    return {"error_class": type(root).__name__, "sqlstate": sqlstate, "reason": reason, "error": message}


def retry_on_conflict(fn: Callable[[], T], *, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Call ``fn``; run it again (bounded, jittered backoff) when a deadlock or serialization failure
    rolled it back, as long as nothing it did had committed before. The last failure is raised."""
    for attempt in range(1, attempts + 1):
        committed = _commits.get()
        try:
            return fn()
        except Exception as error:
            if not is_conflict(error) or _commits.get() != committed:
                raise
            details = describe_db_error(error)
            extra = {"request_id": REQUEST_ID.get(), **details}
            if attempt == attempts:
                log.warning(
                    "transaction conflict persisted after %d attempts (%s, SQLSTATE %s): %s",
                    attempts, details["error_class"], details["sqlstate"], details["error"], extra=extra,
                )
                raise
            pause = random.uniform(0.5, 1.5) * CONFLICT_BACKOFF_SECONDS * 2 ** (attempt - 1)  # noqa: S311 - jitter
            log.info(
                "transaction conflict (%s, SQLSTATE %s); attempt %d of %d again in %.0f ms",
                details["error_class"], details["sqlstate"], attempt + 1, attempts, pause * 1000, extra=extra,
            )
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


@dataclass
class Transaction:
    """An open transaction: its cursor and callbacks to run after commit."""

    cursor: psycopg2.extras.RealDictCursor
    after_commit: list[Callable[[], Any]] = field(default_factory=list)

    def on_commit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` once the transaction has committed (never if it rolls back)."""
        self.after_commit.append(fn)


class Database:
    """A lazily created, fork-safe pool of connections to one database URL."""

    def __init__(self, url: str, *, maxconn: int = 8, application_name: str = "gateway") -> None:
        self.url = url
        self.maxconn = maxconn
        self.application_name = application_name
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
            f"tx_{id(self)}", default=None
        )

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        pid = os.getpid()
        if self._pool is None or self._pid != pid:
            with self._lock:
                if self._pool is None or self._pid != pid:
                    # A pool inherited across fork shares sockets with the parent: never reuse it.
                    self._pool = psycopg2.pool.ThreadedConnectionPool(
                        0,
                        self.maxconn,
                        self.url,
                        application_name=self.application_name,
                        connect_timeout=3,
                        keepalives=1,
                        keepalives_idle=30,
                    )
                    # Open lazily (minconn 0) but keep returned connections: psycopg2 closes
                    # every returned connection beyond minconn, i.e. a new connect per request.
                    self._pool.minconn = self.maxconn
                    self._pid = pid
        return self._pool

    def close(self) -> None:
        """Close every pooled connection of this process."""
        if self._pool is not None and self._pid == os.getpid():
            self._pool.closeall()
        self._pool = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """Borrow a connection; broken ones are discarded, not returned."""
        try:
            pool = self._get_pool()
            conn = pool.getconn()
        except UNAVAILABLE_ERRORS as exc:
            raise ServiceUnavailableError("Database unavailable; nothing was changed") from exc
        broken = False
        try:
            yield conn
        except UNAVAILABLE_ERRORS:
            broken = True
            raise
        finally:
            if conn.closed:
                broken = True
            elif not broken and conn.status != psycopg2.extensions.STATUS_READY:
                try:
                    conn.rollback()
                except UNAVAILABLE_ERRORS:
                    broken = True
            with contextlib.suppress(Exception):
                pool.putconn(conn, close=broken)

    def current(self) -> Transaction | None:
        """Return the transaction open in this context, if any."""
        return self._current.get()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run a block in one transaction; nested calls join the outer one."""
        outer = self._current.get()
        if outer is not None:
            yield outer
            return
        try:
            with self.connection() as conn:
                tx = Transaction(conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor))
                token = self._current.set(tx)
                try:
                    yield tx
                    conn.commit()
                    _commits.set(_commits.get() + 1)
                except BaseException:
                    with contextlib.suppress(Exception):
                        conn.rollback()
                    raise
                finally:
                    self._current.reset(token)
                    tx.cursor.close()
        except UNAVAILABLE_ERRORS as exc:
            if is_conflict(exc):
                raise TransactionConflictError() from exc
            raise ServiceUnavailableError("Database unavailable; nothing was changed") from exc
        for fn in tx.after_commit:
            try:
                fn()
            except Exception:
                # The commit stands; what runs after it is a best-effort nudge that a
                # durable sweeper repeats, so log it and move on.
                log.exception("after-commit callback failed")

    @contextlib.contextmanager
    def savepoint(self, name: str = "sp") -> Iterator[None]:
        """Roll back only the block on error, inside the current transaction."""
        tx = self._current.get()
        if tx is None:
            raise RuntimeError("savepoint() needs an open transaction")
        ident = sql.Identifier(name)
        tx.cursor.execute(sql.SQL("SAVEPOINT {}").format(ident))
        try:
            yield
        except BaseException:
            tx.cursor.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(ident))
            raise
        else:
            tx.cursor.execute(sql.SQL("RELEASE SAVEPOINT {}").format(ident))

    def ping(self) -> None:
        """Run ``SELECT 1``; raise ServiceUnavailableError when it fails."""
        with self.transaction() as tx:
            tx.cursor.execute("SELECT 1")
