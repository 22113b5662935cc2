"""``Transaction.script``: several statements, one round trip, parameters quoted by the client (real PostgreSQL)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import psycopg
import pytest
from gateway_common.db import Database, PoolSettings

HOSTILE = [
    "'); DROP TABLE script_test.rows; --",
    "back\\slash \\' and E'\\x00' text",
    "$$ dollar $tag$ quotes $$",
    "line\nbreak\r\ttab",
    "ünïcødé ✓ 𝄞 and a \u2028 separator",
    "%s %(name)s {} placeholders",
    "",
]


@pytest.fixture
def db(database_url):
    schema = f"script_{secrets.token_hex(4)}"
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute(
        f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.rows (n int PRIMARY KEY, text_value text, at timestamptz, "
        f"doc jsonb); CREATE TABLE {schema}.log (n int NOT NULL REFERENCES {schema}.rows (n))"
    )
    database = Database(database_url, pool=PoolSettings(max_size=2))
    database.schema = schema  # type: ignore[attr-defined]
    yield database
    database.close()
    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


def _rows(db: Database) -> list[tuple]:
    with db.connection() as conn:
        return conn.execute(f"SELECT n, text_value, at, doc::text FROM {db.schema}.rows ORDER BY n").fetchall()  # type: ignore[attr-defined]


def test_hostile_text_round_trips_unchanged_and_runs_no_statement_of_its_own(db):
    schema = db.schema
    at = datetime(2026, 12, 2, 10, 30, 1, 123456, tzinfo=UTC)
    values: list = []
    for n, text in enumerate(HOSTILE):
        values += (n, text, at, '{"v": 0}')
    rows = ", ".join(["(%s::int, %s::text, %s::timestamptz, %s::jsonb)"] * len(HOSTILE))
    with db.autocommit() as tx:
        tx.script(f"INSERT INTO {schema}.rows VALUES {rows}; INSERT INTO {schema}.log VALUES (0)", values)
    got = _rows(db)
    assert [r[1] for r in got] == HOSTILE
    assert all(r[2] == at for r in got)


def test_the_statements_of_a_script_in_autocommit_commit_together_or_not_at_all(db):
    schema = db.schema
    with pytest.raises(psycopg.errors.ForeignKeyViolation), db.autocommit() as tx:
        # The first statement succeeds on its own; the second fails: neither may stay.
        tx.script(f"INSERT INTO {schema}.rows VALUES (%s, %s, now(), '{{}}'); INSERT INTO {schema}.log VALUES (%s)",
                  [1, "kept?", 99])
    assert _rows(db) == []
    with db.autocommit() as tx:  # the connection went back to the pool usable
        tx.script(f"INSERT INTO {schema}.rows VALUES (%s, %s, now(), '{{}}'); INSERT INTO {schema}.log VALUES (%s)",
                  [1, "kept", 1])
    assert [r[1] for r in _rows(db)] == ["kept"]


def test_a_script_inside_a_transaction_is_part_of_it(db):
    schema = db.schema
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.script(f"INSERT INTO {schema}.rows VALUES (%s, %s, now(), '{{}}')", [2, "rolled back"])
        raise RuntimeError("the block fails after the script")
    assert _rows(db) == []
