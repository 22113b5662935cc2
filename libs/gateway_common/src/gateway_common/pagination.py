"""Lists that cost the same on day one and at a million rows: cursors and a capped total.

Every list is newest first by a key (``created_at, id``, or ``seq``) that an index of the list's
scope serves. A page is read in one of three ways:

* ``starting_after=<id>``: the ``limit`` items after that item (older), as Stripe pages;
* ``ending_before=<id>``: the ``limit`` items before it (newer), still answered newest first;
* ``offset=<n>`` (the original contract): skips ``n`` items, which costs O(n).

``has_more`` says whether more items follow in the direction read. A cursor must be an item of
the same list scope (the merchant's, and the payment's for a payment's refunds); any other id,
another merchant's included, is answered 400 exactly like an id that does not exist.

``total`` is counted up to ``TOTAL_CAP`` items only; beyond that it is the planner's estimate
(``EXPLAIN``) and ``total_is_estimate`` is true, so no answer costs O(history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from gateway_common.db import Transaction
from gateway_common.errors import BadRequestError
from gateway_common.schemas import PageQuerySchema

TOTAL_CAP = 10_000


# What an id of this gateway looks like (pay_..., order_..., rfnd_..., whlog_...).
_ID = validate.Regexp(r"^[A-Za-z0-9_]{1,64}$", error="must be an id from the list")


class ListQuerySchema(PageQuerySchema):
    """``limit``/``offset`` plus the cursors ``starting_after`` / ``ending_before`` (ids)."""

    starting_after = fields.String(
        validate=_ID, metadata={"description": "An id from the list: answer the items after it (older)"}
    )
    ending_before = fields.String(
        validate=_ID, metadata={"description": "An id from the list: answer the items before it (newer)"}
    )

    @ma.validates_schema
    def _one_way(self, data: dict, **kwargs: object) -> None:
        if "starting_after" in data and "ending_before" in data:
            raise ma.ValidationError("starting_after and ending_before cannot be used together", "ending_before")
        if ("starting_after" in data or "ending_before" in data) and data.get("offset"):
            raise ma.ValidationError("offset cannot be combined with starting_after or ending_before", "offset")


class ListPageSchema(ma.Schema):
    """The fields every list answer has besides ``data``."""

    total = fields.Integer(required=True, metadata={"description": f"Exact up to {TOTAL_CAP:,}; beyond, an estimate"})
    total_is_estimate = fields.Boolean(required=True, metadata={"description": "true when total is the estimate"})
    has_more = fields.Boolean(required=True, metadata={"description": "More items follow in the direction read"})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


@dataclass(frozen=True)
class Listing:
    """One list: its table, the columns answered, its key (newest first) and what a cursor is called."""

    table: str  # schema-qualified, fixed text
    columns: str  # fixed text
    key: tuple[str, ...]  # columns, compared as a row; an index of the scope serves them descending
    noun: str  # "payment", for the message about an unknown cursor


@dataclass
class Page:
    """A page of rows (dicts) and what the answer says about the rest of the list."""

    items: list[Any]
    total: int | None  # None when the list was read without a total (``read_page(..., total=False)``)
    total_is_estimate: bool
    has_more: bool
    limit: int
    offset: int

    def body(self, data: list[Any]) -> dict[str, Any]:
        """The list answer with ``data`` (the items dumped)."""
        return {
            "data": data,
            "total": self.total,
            "total_is_estimate": self.total_is_estimate,
            "has_more": self.has_more,
            "limit": self.limit,
            "offset": self.offset,
        }


def read_page(
    tx: Transaction, listing: Listing, scope: str, params: dict[str, Any], query: dict[str, Any], filters: str = "",
    *, total: bool = True,
) -> Page:
    """Read one page of ``listing`` where ``scope`` (and ``filters``) hold, as ``query`` asks.

    ``scope`` and ``filters`` are fixed SQL conditions whose values are named parameters in
    ``params`` (never text from the request). A cursor must satisfy ``scope``; ``filters`` only
    narrow the items answered. A list whose answer has no ``total`` (the Events API's) passes
    ``total=False`` and is not counted.
    """
    limit, offset = query["limit"], query.get("offset", 0)
    after, before = query.get("starting_after"), query.get("ending_before")
    where = f"{scope} AND {filters}" if filters else scope
    key = ", ".join(listing.key)
    descending = ", ".join(f"{column} DESC" for column in listing.key)
    ascending = ", ".join(listing.key)
    args = dict(params)
    position = ""
    order = descending
    if after is not None or before is not None:
        cursor = after if after is not None else before
        tx.cursor.execute(
            f"SELECT {key} FROM {listing.table} WHERE {scope} AND id = %(_cursor)s",  # noqa: S608 - fixed text
            {**params, "_cursor": cursor},
        )
        row = tx.cursor.fetchone()
        if row is None:
            name = "starting_after" if after is not None else "ending_before"
            raise BadRequestError(f"{name}: no such {listing.noun} in this list")
        marks = ", ".join(f"%(_k{i})s" for i in range(len(listing.key)))
        args.update({f"_k{i}": row[column] for i, column in enumerate(listing.key)})
        position = f" AND ({key}) {'<' if after is not None else '>'} ({marks})"
        order = descending if after is not None else ascending
    args.update(_limit=limit + 1, _offset=offset)
    tx.cursor.execute(
        f"SELECT {listing.columns} FROM {listing.table} WHERE {where}{position} "  # noqa: S608 - fixed text
        f"ORDER BY {order} LIMIT %(_limit)s OFFSET %(_offset)s",
        args,
    )
    rows = tx.cursor.fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if before is not None:
        rows.reverse()
    if not total:
        return Page(rows, None, False, has_more, limit, offset)
    if not position and not has_more and (offset == 0 or rows):
        return Page(rows, offset + len(rows), False, False, limit, offset)  # the end is on this page
    counted, estimated = count_capped(tx, listing, where, params)
    return Page(rows, counted, estimated, has_more, limit, offset)


def count_capped(tx: Transaction, listing: Listing, where: str, params: dict[str, Any]) -> tuple[int, bool]:
    """Count the list's items up to ``TOTAL_CAP``; beyond it return the planner's estimate (and True).

    The count walks the list's index in key order (at most ``TOTAL_CAP + 1`` entries), so its cost
    is bounded whatever the data: an unordered count would let the planner pick a sequential scan.
    """
    descending = ", ".join(f"{column} DESC" for column in listing.key)
    tx.cursor.execute(
        f"SELECT count(*) AS n FROM (SELECT 1 FROM {listing.table} WHERE {where} "  # noqa: S608 - fixed text
        f"ORDER BY {descending} LIMIT {TOTAL_CAP + 1}) AS capped",
        params,
    )
    counted = tx.cursor.fetchone()["n"]
    if counted <= TOTAL_CAP:
        return counted, False
    tx.cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {listing.table} WHERE {where}", params)  # noqa: S608
    plan = tx.cursor.fetchone()
    document = next(iter(plan.values()))
    if isinstance(document, str):
        document = json.loads(document)
    estimate = int(document[0]["Plan"]["Plan Rows"])
    return max(estimate, TOTAL_CAP + 1), True
