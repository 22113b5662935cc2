"""psycopg2 connection pool (created lazily, after fork) and a transaction helper."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool
from psycopg2 import sql

from gateway_common.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

# Errors meaning "the database is not reachable", answered as 503.
UNAVAILABLE_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.pool.PoolError)


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
                except BaseException:
                    with contextlib.suppress(Exception):
                        conn.rollback()
                    raise
                finally:
                    self._current.reset(token)
                    tx.cursor.close()
        except UNAVAILABLE_ERRORS as exc:
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
