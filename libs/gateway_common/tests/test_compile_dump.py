"""compile_dump: a response schema's fields, in order, read from an object (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from gateway_common.schemas import UtcTimestamp, compile_dump
from marshmallow import Schema, fields


@dataclass
class Thing:
    id: str
    kind: str
    detail: str | None
    amount: int
    created_at: datetime
    closed_at: datetime | None


class ThingSchema(Schema):
    id = fields.String(required=True)
    kind_name = fields.String(attribute="kind")
    detail = fields.String(allow_none=True, metadata={"only_if": ("kind", "rich")})
    amount = fields.Integer(required=True)
    version = fields.Constant(2)
    created_at = UtcTimestamp(required=True)
    closed_at = UtcTimestamp(allow_none=True)


def test_fields_in_declared_order_with_variants_timestamps_and_constants():
    ist = timezone(timedelta(hours=5, minutes=30))
    thing = Thing("t1", "rich", "more", 500, datetime(2026, 1, 15, 16, 0, 30, 999, tzinfo=ist), None)
    assert list(compile_dump(ThingSchema)(thing).items()) == [
        ("id", "t1"),
        ("kind_name", "rich"),
        ("detail", "more"),
        ("amount", 500),
        ("version", 2),
        ("created_at", "2026-01-15T10:30:30Z"),
        ("closed_at", None),
    ]
    plain = Thing("t2", "plain", "ignored", 1, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    dumped = compile_dump(ThingSchema, exclude=("version",))(plain)
    assert "detail" not in dumped and "version" not in dumped
    assert dumped["closed_at"] == "2026-01-02T00:00:00Z"


def test_the_schema_and_the_compiled_dump_agree_where_marshmallow_can_dump():
    thing = Thing("t3", "rich", "x", 7, datetime(2026, 3, 1, 12, 0, tzinfo=UTC), None)
    assert compile_dump(ThingSchema)(thing) == ThingSchema().dump(thing)


def test_fields_it_cannot_compile_are_refused_at_import_time():
    class Nested(Schema):
        items = fields.List(fields.String())

    with pytest.raises(TypeError, match="does not dump List fields"):
        compile_dump(Nested)
