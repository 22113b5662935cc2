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
        row = conn.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%FROM plans.rows%'").fetchone()
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
