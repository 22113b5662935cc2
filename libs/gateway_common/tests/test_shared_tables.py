"""The outbox, relay place and Idempotency-Key tables are one definition in every schema."""

from __future__ import annotations

import psycopg
import pytest
from gateway_common.migrations import render_template

SHARED = ("outbox", "outbox_relay", "idempotency_keys")
# The services whose migrations take in the template (their tables predate it).
SERVICES = ("payments", "refunds")


def describe(cur, schema: str) -> dict:
    """Columns (type, default, nullability, position), constraints and indexes of the shared tables."""
    shape: dict = {}
    for table in SHARED:
        cur.execute(
            "SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (f"{schema}.{table}",),
        )
        columns = [tuple(row) for row in cur.fetchall()]
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY conname",
            (f"{schema}.{table}",),
        )
        constraints = [tuple(row) for row in cur.fetchall()]
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s ORDER BY indexname",
            (schema, table),
        )
        indexes = [tuple(row) for row in cur.fetchall()]
        shape[table] = {"columns": columns, "constraints": constraints, "indexes": indexes}
    # Names that carry the schema (the seq default, index definitions) are compared without it.
    return _unqualify(shape, schema)


def _unqualify(value, schema: str):
    if isinstance(value, str):
        return value.replace(f'"{schema}".', "").replace(f"{schema}.", "")
    if isinstance(value, dict):
        return {k: _unqualify(v, schema) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_unqualify(v, schema) for v in value)
    return value


@pytest.fixture
def admin(database_url):
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    yield conn.cursor()
    conn.close()


def test_every_service_schema_and_a_new_one_have_identical_shared_tables(admin):
    admin.execute("DROP SCHEMA IF EXISTS fresh_template CASCADE; CREATE SCHEMA fresh_template")
    try:
        admin.execute(render_template("outbox_idempotency", "fresh_template"))
        fresh = describe(admin, "fresh_template")
        # Every schema with an outbox (the services', and any test schema made from the template).
        admin.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'")
        schemas = {row[0] for row in admin.fetchall()}
        assert set(SERVICES) <= schemas
        for schema in sorted(schemas):
            assert describe(admin, schema) == fresh, f"{schema}'s shared tables differ from the template's"
        assert fresh["idempotency_keys"]["columns"][2][1:4] == ("fingerprint", "text", False)  # nullable
    finally:
        admin.execute("DROP SCHEMA fresh_template CASCADE")


def test_the_template_again_changes_no_row_and_no_place(admin):
    admin.execute("DROP SCHEMA IF EXISTS again_template CASCADE; CREATE SCHEMA again_template")
    try:
        admin.execute(render_template("outbox_idempotency", "again_template"))
        admin.execute(
            "INSERT INTO again_template.outbox (event_id, event_type, merchant_id, payload) "
            "VALUES ('evt_1', 'payment.created', '550e8400-e29b-41d4-a716-446655440000', '{}');"
            "UPDATE again_template.outbox_relay SET xid = '42', seq = 7;"
            "INSERT INTO again_template.idempotency_keys (scope, key, fingerprint, expires_at) "
            "VALUES ('m', 'k', 'abc', now() + interval '1 day')"
        )
        before = describe(admin, "again_template")
        admin.execute(render_template("outbox_idempotency", "again_template"))
        assert describe(admin, "again_template") == before
        admin.execute("SELECT event_id FROM again_template.outbox")
        assert admin.fetchall() == [("evt_1",)]
        admin.execute("SELECT xid::text, seq FROM again_template.outbox_relay")
        assert admin.fetchall() == [("42", 7)]
        admin.execute("SELECT fingerprint FROM again_template.idempotency_keys")
        assert admin.fetchall() == [("abc",)]
    finally:
        admin.execute("DROP SCHEMA again_template CASCADE")


def test_a_template_takes_only_a_plain_schema_name():
    with pytest.raises(ValueError, match="plain schema"):
        render_template("outbox_idempotency", 'payments"; DROP TABLE x; --')
    with pytest.raises(ValueError, match="unknown migration template"):
        render_template("nope", "payments")
