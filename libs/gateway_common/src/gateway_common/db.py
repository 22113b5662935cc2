"""Connection pools (psycopg 3 + psycopg_pool, created lazily after fork) and transaction helpers.

One way to reach the database: ``Database.transaction()`` for work that commits together,
``Database.autocommit()`` for a single statement that needs no BEGIN/COMMIT round trips, and
``Database.fetch_one()`` for a hot read that wants a plain tuple. Statements a connection runs
often are prepared by psycopg itself (``prepare_threshold``); connections are replaced every
``max_lifetime`` seconds, so a plan cached while a table was tiny does not live on.
``fetch_one`` and ``Transaction.script`` (the hot paths: GET /payments/{id} and the group commit)
call libpq through psycopg's ``PGconn`` with psycopg's own adapters, skipping the cursor's
non-blocking machinery, which costs more CPU than psycopg2 did (figures at ``_read_one``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus, TransactionStatus
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader

from gateway_common.errors import ServiceUnavailableError, TransactionConflictError
from gateway_common.logs import REQUEST_ID

log = logging.getLogger(__name__)

T = TypeVar("T")

# Ids are text everywhere in this code base (merchant ids are uuid columns): read uuid as str.
psycopg.adapters.register_loader("uuid", TextLoader)

# Errors meaning "the database is not reachable", answered as 503 (psycopg_pool's PoolTimeout is one).
UNAVAILABLE_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)
# Deadlock detected, serialization failure: the transaction was rolled back and may simply run again.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 5
CONFLICT_BACKOFF_SECONDS = 0.01
# Commits made in this context (thread or task), so a retry never repeats committed work.
_commits: contextvars.ContextVar[int] = contextvars.ContextVar("gateway_db_commits", default=0)
# How long a request waits for a pooled connection before checking that the database answers at all.
PROBE_AFTER_SECONDS = 0.5
_TOO_MANY_CLIENTS = ("too many clients", "too many connections", "remaining connection slots")


def sqlstate(error: BaseException) -> str | None:
    """Return the SQLSTATE of a psycopg error (None for anything else)."""
    return getattr(error, "sqlstate", None)


def is_conflict(error: BaseException) -> bool:
    """Tell whether an error (or what caused it) is a deadlock or serialization failure."""
    while error is not None:
        if isinstance(error, TransactionConflictError) or sqlstate(error) in CONFLICT_SQLSTATES:
            return True
        error = error.__cause__
    return False


def describe_db_error(error: BaseException) -> dict[str, str | None]:
    """Name what went wrong with the database: root exception class, SQLSTATE, reason, first message line."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    message = " ".join(str(root).split())[:300]
    code = sqlstate(root)
    lowered = message.lower()
    if code == "53300" or any(text in lowered for text in _TOO_MANY_CLIENTS):
        reason = "too many clients: PostgreSQL's connection limit is reached"
    elif code in CONFLICT_SQLSTATES:
        reason = "transaction conflict (deadlock or serialization failure)"
    elif isinstance(root, psycopg_pool.PoolTimeout):
        reason = "no pooled connection in time: the pool is busy or the database unreachable"
    elif isinstance(root, UNAVAILABLE_ERRORS):
        reason = "database unreachable or connection lost"
    else:
        reason = type(root).__name__
    return {"error_class": type(root).__name__, "sqlstate": code, "reason": reason, "error": message}


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
    """An open transaction (or an autocommit session): its cursor of dict rows and callbacks to run after commit."""

    cursor: psycopg.Cursor[dict[str, Any]]
    after_commit: list[Callable[[], Any]] = field(default_factory=list)

    def on_commit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` once the transaction has committed (never if it rolls back)."""
        self.after_commit.append(fn)

    def script(self, query: str, params: list | tuple) -> None:
        """Run a string of several statements in one round trip, parameters bound on the client.

        The parameters are quoted into the text, which is sent as one simple query (libpq's
        blocking ``PQexec``: the GIL is released while it waits). In ``Database.autocommit()``
        PostgreSQL runs those statements as one implicit transaction (all commit, or none: the
        group commit's payments and their events); inside
        ``Database.transaction()`` they are part of it. Scalar parameters only: this is the
        cheapest way here to write several tables at once (no BEGIN/COMMIT round trips, no
        pipeline bookkeeping, no array parameters).
        """
        conn = self.cursor.connection
        adapt = Transformer(conn)
        # As psycopg's ClientCursor quotes them (its Transformer.as_literal), without parsing the query
        # text on every call: psycopg caches that parse for queries under 4 KiB only, and a group
        # commit's INSERT is longer (its parse was 12% of the payments API's py-spy GIL samples on POST).
        text = _script_template(query) % tuple(b"NULL" if p is None else adapt.as_literal(p) for p in params)
        _check(conn, conn.pgconn.exec_(text), ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK)


@dataclass(frozen=True)
class PoolSettings:
    """How a process's pool of one database behaves (see ``Settings.pool``)."""

    max_size: int = 8
    # Connections kept open however idle; above it, one idle for ``max_idle`` seconds is closed.
    min_size: int = 0
    max_idle: float = 60.0
    # How long a request waits for a connection before it is answered 503.
    timeout: float = 5.0
    # Executions of one statement on a connection before psycopg prepares it (None: never, for a
    # pooler that cannot keep prepared statements).
    prepare_threshold: int | None = 5
    # A connection is replaced after this long, and the plans it cached go with it: a plan made
    # while a table was tiny (a sequential scan) lives this long at most.
    max_lifetime: float = 30.0


# Pools inherited across fork: never used or collected in the child (collecting one would close
# sockets the parent still uses).
_inherited: list[Any] = []


def _run_after_commit(callbacks: list[Callable[[], Any]]) -> None:
    for fn in callbacks:
        try:
            fn()
        except Exception:
            # The commit stands; what runs after it is a best-effort nudge that a
            # durable sweeper repeats, so log it and move on.
            log.exception("after-commit callback failed")


@contextlib.contextmanager
def _as_api_errors() -> Iterator[None]:
    """Turn a lost database into ServiceUnavailableError and a conflict into TransactionConflictError."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        if is_conflict(exc):
            raise TransactionConflictError() from exc
        raise ServiceUnavailableError("Database unavailable; nothing was changed") from exc


# Statements of Database.fetch_one: query -> (statement name, the query with $n parameters).
_READS: dict[str, tuple[bytes, bytes]] = {}
# The statements each live connection has prepared (a replaced connection prepares them again).
_PREPARED: weakref.WeakKeyDictionary[psycopg.Connection, set[bytes]] = weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()
# Prepared statement does not exist; cached plan must not change result type.
_STALE_STATEMENT = (b"26000", b"0A000")


def _positional(query: str) -> list[str]:
    """The text around a query's ``%s`` parameters (no named ones, no ``%%``)."""
    if "%(" in query or "%%" in query:
        raise ValueError("this query runner takes positional %s parameters only")
    return query.split("%s")


@functools.lru_cache(maxsize=256)
def _script_template(query: str) -> bytes:
    """``query`` as a bytes template for ``%``: its own percent signs doubled, each ``%s`` kept."""
    return "%s".join(part.replace("%", "%%") for part in _positional(query)).encode()


def _read_statement(query: str) -> tuple[bytes, bytes]:
    found = _READS.get(query)
    if found is None:
        head, *rest = _positional(query)
        text = head + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))
        name = b"gw_read_" + hashlib.blake2b(query.encode(), digest_size=8).hexdigest().encode()
        found = _READS[query] = (name, text.encode())
    return found


def _read_one(conn: psycopg.Connection, query: str, params: tuple | list, *, prepare: bool) -> tuple | None:
    """Run a one-row read with libpq's blocking call (the GIL released while it waits); its first row or None.

    psycopg's cursor drives libpq non-blocking, a poll and a generator step per phase: measured here
    (a loop of GET /payments/{id}'s query, client CPU) 123 us a read through ``conn.execute``,
    50 us through ``PGconn.exec_prepared``; psycopg2 took 90 us. Parameters are dumped and the row
    loaded by psycopg's own adapters, so values are those a cursor returns. The statement is
    prepared once per connection (a connection lives ``max_lifetime``, so a plan made while a
    table was tiny does not live on), or sent unprepared when prepared statements are off.
    """
    name, text = _read_statement(query)
    pgconn = conn.pgconn
    adapt = Transformer(conn)
    values = adapt.dump_sequence(params, [PyFormat.TEXT] * len(params))
    if not prepare:
        result = pgconn.exec_params(text, values, adapt.types)
    else:
        done = _PREPARED.get(conn)
        if done is None:
            with _PREPARED_LOCK:
                done = _PREPARED.setdefault(conn, set())
        if name not in done:
            _check(conn, pgconn.prepare(name, text, adapt.types), ExecStatus.COMMAND_OK)
            done.add(name)
        result = pgconn.exec_prepared(name, values)
        state = result.error_field(DiagnosticField.SQLSTATE) if result.status == ExecStatus.FATAL_ERROR else None
        if state in _STALE_STATEMENT:
            # psycopg deallocated every statement (it sends DEALLOCATE ALL when a schema change
            # invalidates its own), or a schema change broke this one: prepare it again, once.
            log.info("db: prepared read %s is gone or stale (%s); preparing it again", name.decode(), state.decode())
            if state != b"26000":
                _check(conn, pgconn.exec_(b"DEALLOCATE " + name), ExecStatus.COMMAND_OK)
            _check(conn, pgconn.prepare(name, text, adapt.types), ExecStatus.COMMAND_OK)
            result = pgconn.exec_prepared(name, values)
    _check(conn, result, ExecStatus.TUPLES_OK)
    if result.ntuples == 0:
        return None
    adapt.set_pgresult(result)
    return adapt.load_row(0, tuple)


def _check(conn: psycopg.Connection, result: psycopg.pq.abc.PGresult, *expected: ExecStatus) -> None:
    """Raise what a psycopg cursor would have raised for a result that is not one of ``expected``."""
    if result.status in expected:
        return
    if conn.pgconn.status == ConnStatus.BAD:
        # The server went away: the same error a cursor raises, so the caller answers 503.
        raise psycopg.OperationalError(result.error_message.decode(errors="replace") or "connection lost")
    raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


class Database:
    """A lazily created, fork-safe pool of connections to one database URL, shrinking when idle."""

    def __init__(self, url: str, *, pool: PoolSettings | None = None, application_name: str = "gateway") -> None:
        self.url = url
        self.settings = pool or PoolSettings()
        self.application_name = application_name
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._borrowed = 0  # connections of this process's pool lent out now
        # Until when (monotonic) the database is known unreachable, and the error that said so.
        self._down: tuple[float, psycopg.OperationalError] | None = None
        self._current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
            f"tx_{id(self)}", default=None
        )

    def _get_pool(self) -> psycopg_pool.ConnectionPool:
        pid = os.getpid()
        if self._pool is None or self._pid != pid:
            with self._lock:
                if self._pool is None or self._pid != pid:
                    if self._pool is not None:
                        _inherited.append(self._pool)
                    self._borrowed = 0
                    s = self.settings
                    self._pool = psycopg_pool.ConnectionPool(
                        self.url,
                        min_size=s.min_size,
                        max_size=s.max_size,
                        max_idle=s.max_idle,
                        max_lifetime=s.max_lifetime,
                        timeout=s.timeout,
                        name=self.application_name,
                        open=True,
                        kwargs={
                            # Autocommit, so a single statement needs no BEGIN/COMMIT round trips;
                            # transaction() opens its own.
                            "autocommit": True,
                            "application_name": self.application_name,
                            "connect_timeout": 3,
                            "keepalives": 1,
                            "keepalives_idle": 30,
                            "prepare_threshold": s.prepare_threshold,
                        },
                    )
                    self._pid = pid
        return self._pool

    def close(self) -> None:
        """Close every pooled connection of this process."""
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None

    def stats(self) -> dict[str, int]:
        """The pool's counters (``pool_size``, ``pool_available``, ``requests_waiting``, ...) in this process."""
        return self._pool.get_stats() if self._pool is not None and self._pid == os.getpid() else {}

    def _borrow(self, pool: psycopg_pool.ConnectionPool) -> psycopg.Connection:
        """Take a connection within the pool's timeout; when none comes, raise what stands in the way.

        A pool that is not full and has no connection to give within half a second may be unable
        to open one: one direct attempt says why (refused, too many clients, a bad password). From
        then on the database counts as down: requests are answered at once with that error, and
        one every half second tries a direct connection again, until one succeeds.
        """
        down = self._down
        if down is not None:
            if time.monotonic() < down[0]:
                raise type(down[1])(str(down[1]))
            self._probe()  # raises (and stays down) while the database refuses
        first_wait = min(PROBE_AFTER_SECONDS, self.settings.timeout)
        try:
            conn = pool.getconn(timeout=first_wait)
        except psycopg_pool.PoolTimeout:
            if self._borrowed < self.settings.max_size:
                self._probe()
            # Busy, or slow to connect but reachable: wait out the rest of the timeout.
            conn = pool.getconn(timeout=max(self.settings.timeout - first_wait, 0.001))
        with self._lock:
            self._borrowed += 1
        return conn

    def _probe(self) -> None:
        """Open one direct connection; on failure mark the database down for half a second and raise."""
        try:
            psycopg.connect(self.url, connect_timeout=3, application_name=self.application_name).close()
        except psycopg.OperationalError as error:
            self._down = (time.monotonic() + PROBE_AFTER_SECONDS, error)
            raise
        self._down = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """Borrow a connection; broken ones are discarded, not returned."""
        try:
            pool = self._get_pool()
            conn = self._borrow(pool)
        except UNAVAILABLE_ERRORS as exc:
            raise ServiceUnavailableError("Database unavailable; nothing was changed") from exc
        broken = False
        try:
            yield conn
        except UNAVAILABLE_ERRORS as exc:
            # An error the server answered (a deadlock, a lock timeout) leaves the connection usable.
            broken = sqlstate(exc) is None
            raise
        finally:
            if conn.closed or conn.broken:
                broken = True
            elif not broken:
                try:
                    if conn.info.transaction_status != TransactionStatus.IDLE:
                        conn.rollback()
                except UNAVAILABLE_ERRORS:
                    broken = True
            if broken:
                with contextlib.suppress(Exception):
                    conn.close()
            with self._lock:
                self._borrowed -= 1
            with contextlib.suppress(Exception):
                pool.putconn(conn)

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
        with _as_api_errors(), self.connection() as conn:
            tx = Transaction(conn.cursor(row_factory=dict_row))
            token = self._current.set(tx)
            try:
                # BEGIN ... COMMIT, or ROLLBACK when the block raises (the connection is autocommit).
                with conn.transaction():
                    yield tx
                _commits.set(_commits.get() + 1)
            finally:
                self._current.reset(token)
                tx.cursor.close()
        _run_after_commit(tx.after_commit)

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Transaction]:
        """Run statements that each commit on their own (joining an open transaction if there is one).

        One statement is atomic by itself, so hot paths skip the BEGIN and COMMIT round trips.
        """
        if self._current.get() is not None:
            with self.transaction() as tx:
                yield tx
            return
        with _as_api_errors(), self.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            tx = Transaction(cursor)
            yield tx
            _commits.set(_commits.get() + 1)
        _run_after_commit(tx.after_commit)

    def fetch_one(self, query: str, params: tuple | list) -> tuple | None:
        """Run one read in autocommit and return its first row as a plain tuple (or None).

        The hot reads skip the dict rows, whose per-column bookkeeping costs more than the query,
        and psycopg's cursor: see ``_read_one``. Inside an open transaction the read runs in that
        transaction. ``query`` takes positional ``%s`` parameters only.
        """
        tx = self._current.get()
        if tx is not None:
            tx.cursor.execute(query, params)
            row = tx.cursor.fetchone()
            return tuple(row.values()) if row is not None else None
        with _as_api_errors(), self.connection() as conn:
            return _read_one(conn, query, params, prepare=self.settings.prepare_threshold is not None)

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
