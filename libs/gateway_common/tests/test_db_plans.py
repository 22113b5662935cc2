"""A plan cached while a table was tiny must not outlive the table's growth (real PostgreSQL).

Seen before this test existed: GET /payments/{id} took 9 ms at 23k payments, because the statement
had been prepared when the table held a handful of rows and its cached generic plan was a
sequential scan. psycopg prepares a connection's frequent statements; the pool replaces every
connection after ``max_lifetime``, and the plans go with it.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from gateway_common.db import Database, PoolSettings
from gateway_common.errors import ServiceUnavailableError

LOOKUP = "SELECT id, merchant_id FROM plans.rows WHERE id = %s AND merchant_id = %s"


@pytest.fixture
def table(database_url):
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        "CREATE SCHEMA plans; CREATE TABLE plans.rows (id TEXT PRIMARY KEY, merchant_id UUID NOT NULL, pad TEXT) "
        "WITH (autovacuum_enabled = false); "
        "INSERT INTO plans.rows SELECT 'r' || i, gen_random_uuid(), repeat('x', 200) FROM generate_series(1, 5) i; "
        "ANALYZE plans.rows"
    )
    yield conn
    conn.execute("DROP SCHEMA plans CASCADE")
    conn.close()


def _plan_of_the_prepared_lookup(db: Database) -> str:
    """EXPLAIN the lookup as psycopg prepared it, on the pool's only connection."""
    with db.connection() as conn:
        conn.autocommit = True
        row = conn.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%FROM plans.rows%' "
                           "AND statement NOT LIKE '%pg_prepared_statements%'").fetchone()  # not this query, prepared too
        assert row is not None, "the lookup was not prepared"
        # The statement's parameters are typed text and unknown; EXPLAIN EXECUTE shows the plan it would use.
        plan = conn.execute(f"EXPLAIN EXECUTE {row[0]} ('r3', '00000000-0000-0000-0000-000000000000')").fetchall()
    return "\n".join(line[0] for line in plan)


def _lookups(db: Database, n: int) -> None:
    for _ in range(n):
        db.fetch_one(LOOKUP, ("r3", "00000000-0000-0000-0000-000000000000"))


def test_a_plan_cached_while_the_table_was_tiny_is_replaced_with_its_connection(database_url, table):
    lifetime = 2.0
    db = Database(database_url, pool=PoolSettings(max_size=1, prepare_threshold=1, max_lifetime=lifetime))
    try:
        _lookups(db, 10)  # prepared, then past the five custom plans: the generic plan is cached
        tiny = _plan_of_the_prepared_lookup(db)
        assert "Seq Scan" in tiny, tiny  # the hazard is real: five rows are cheaper to scan
        # The table grows to 100k rows without an ANALYZE (nothing invalidates the cached plan).
        table.execute(
            "INSERT INTO plans.rows SELECT 'g' || i, gen_random_uuid(), repeat('x', 200) "
            "FROM generate_series(1, 100000) i"
        )
        assert "Seq Scan" in _plan_of_the_prepared_lookup(db)  # same connection: the stale plan lives on
        time.sleep(lifetime + 0.5)
        _lookups(db, 1)  # the expired connection is closed when returned
        _lookups(db, 10)  # a new connection prepares the lookup again, against the table as it is
        grown = _plan_of_the_prepared_lookup(db)
        assert "Index Scan" in grown and "Seq Scan" not in grown, grown
    finally:
        db.close()


# ---------------------------------------------------------------- fetch_one's own read path (libpq, prepared once)

ROW = ("SELECT id, merchant_id, pad, length(pad) AS n, now() AS at, id = 'r3' AS yes, NULL::text AS nothing, "
       "'{\"a\": [1, 2]}'::jsonb AS doc, 12.50::numeric AS amount FROM plans.rows WHERE id = %s")


def test_a_read_gives_the_values_a_cursor_gives(database_url, table):
    db = Database(database_url, pool=PoolSettings(max_size=1))
    try:
        with db.connection() as conn:
            expected = conn.execute(ROW.replace("now()", "'2026-12-02 10:00:00+00'::timestamptz"), ("r3",)).fetchone()
        got = db.fetch_one(ROW.replace("now()", "'2026-12-02 10:00:00+00'::timestamptz"), ("r3",))
        assert got == expected
        assert [type(v) for v in got] == [type(v) for v in expected]  # uuid read as str, as everywhere here
        assert db.fetch_one(ROW, ("no such row",)) is None
        assert db.fetch_one("SELECT %s::int + %s, %s::text", (2, 3, "it's 100% 'quoted'")) == (5, "it's 100% 'quoted'")
    finally:
        db.close()


def test_a_read_survives_its_statement_being_deallocated(database_url, table):
    db = Database(database_url, pool=PoolSettings(max_size=1))
    try:
        assert db.fetch_one(LOOKUP, ("r3", "00000000-0000-0000-0000-000000000000")) is None
        with db.connection() as conn:
            conn.execute("DEALLOCATE ALL")  # what psycopg sends when a schema change invalidates its statements
        row = table.execute("SELECT id, merchant_id::text FROM plans.rows WHERE id = 'r2'").fetchone()
        assert db.fetch_one(LOOKUP, row) == row
    finally:
        db.close()


def test_a_read_refused_by_the_server_raises_what_a_cursor_raises(database_url, table):
    db = Database(database_url, pool=PoolSettings(max_size=1))
    try:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            db.fetch_one(LOOKUP, ("r3", "not a uuid"))
        with pytest.raises(ValueError, match="positional"):
            db.fetch_one("SELECT %(name)s", {"name": 1})  # type: ignore[arg-type]
        # The connection went back to the pool usable.
        assert db.fetch_one("SELECT 1", ()) == (1,)
    finally:
        db.close()


def test_a_read_on_a_connection_the_server_dropped_is_a_503_and_the_next_read_works(database_url, table):
    db = Database(database_url, pool=PoolSettings(max_size=1), application_name="reads-dropped")
    try:
        assert db.fetch_one("SELECT 1", ()) == (1,)
        table.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'reads-dropped'")
        with pytest.raises(ServiceUnavailableError):
            db.fetch_one("SELECT 1", ())
        assert db.fetch_one("SELECT 2", ()) == (2,)  # the dropped connection was discarded, not pooled again
    finally:
        db.close()
