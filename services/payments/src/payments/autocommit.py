"""Statements run in autocommit: the hot paths skip the BEGIN and COMMIT round trips."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg2.extras
from gateway_common.db import Database, Transaction

from payments import repository


@contextlib.contextmanager
def single_statement(db: Database) -> Iterator[Transaction]:
    """Run one query string in autocommit (joining an open transaction if there is one).

    A query string is atomic on its own, so hot paths skip the BEGIN and COMMIT round trips.
    """
    if db.current() is not None:
        with db.transaction() as tx:
            yield tx
        return
    with db.connection() as conn:
        conn.autocommit = True
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                yield Transaction(cursor)
        finally:
            if not conn.closed:
                conn.autocommit = False


def _fetch_one(db: Database, query: str, params: tuple) -> tuple | None:
    """Run one read-only query in autocommit with a plain (tuple) cursor; return its first row.

    The hot reads skip RealDictCursor, whose per-column Python bookkeeping costs more than the query.
    """
    if db.current() is not None:
        with db.transaction() as tx:
            tx.cursor.execute(query, params)
            row = tx.cursor.fetchone()
            return tuple(row.values()) if row is not None else None
    with db.connection() as conn:
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchone()
        finally:
            if not conn.closed:
                conn.autocommit = False


class PreparedQuery:
    """A read-only query run as a prepared statement (``repository.Prepared``) in autocommit.

    GET /payments/{id} is a primary-key lookup whose planning (five candidate indexes) costs the
    server more than running it: with the plan cached, pgbench ran this lookup at 75k tps against
    33k when it was planned on every execution. A plan made while the table was tiny can be a
    sequential scan (seen: 9 ms per GET at 23k payments), so each connection prepares the query
    again every ``REPLAN_SECONDS``: a stale plan lives that long at most.
    Inside an open transaction it runs as a plain query in that transaction.
    """

    REPLAN_SECONDS = 30.0

    def __init__(self, name: str, arg_types: tuple[str, ...], query: str) -> None:
        self.query = query
        self.statement = repository.Prepared(name, query, arg_types)

    def fetch_one(self, db: Database, params: tuple) -> tuple | None:
        """Return the first row (a tuple) or None."""
        if db.current() is not None:
            return _fetch_one(db, self.query, params)
        with db.connection() as conn:
            conn.autocommit = True
            try:
                with conn.cursor() as cursor:
                    cursor.execute(self.statement.sql(cursor, self.REPLAN_SECONDS), params)
                    return cursor.fetchone()
            finally:
                if not conn.closed:
                    conn.autocommit = False
