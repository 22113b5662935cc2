"""SQL for stored events: insert, list, get, replay windows, pruning and live-stream positions."""

from __future__ import annotations

from datetime import datetime

from gateway_common.db import Transaction
from gateway_common.pagination import Listing, Page, read_page

from webhooks.models import DeliveryStatus, Event, EventDelivery

_EVENT_COLUMNS = "id, merchant_id::text AS merchant_id, type, created_at, body"


def _event(row: dict) -> Event:
    return Event(**{**row, "body": bytes(row["body"])})


def insert_events(tx: Transaction, events: list[Event]) -> list[Event]:
    """Store events (an id already stored is skipped); return the ones stored now."""
    if not events:
        return []
    tx.cursor.execute(
        "INSERT INTO webhooks.events (id, merchant_id, type, category, created_at, body) "
        "SELECT id, merchant_id, type, split_part(type, '.', 1), created_at, body "
        "FROM unnest(%b::text[], %b::uuid[], %b::text[], %b::timestamptz[], %b::bytea[]) "
        "  AS v (id, merchant_id, type, created_at, body) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        (
            [e.id for e in events],
            [e.merchant_id for e in events],
            [e.type for e in events],
            [e.created_at for e in events],
            [e.body for e in events],
        ),
    )
    stored = {row["id"] for row in tx.cursor.fetchall()}
    return [e for e in events if e.id in stored]


def get_event(tx: Transaction, merchant_id: str, event_id: str) -> Event | None:
    """Load one of a merchant's events."""
    tx.cursor.execute(
        f"SELECT {_EVENT_COLUMNS} FROM webhooks.events WHERE id = %s AND merchant_id = %s",  # noqa: S608
        (event_id, merchant_id),
    )
    row = tx.cursor.fetchone()
    return _event(row) if row else None


# One of these narrows a list by type: fixed SQL fragments, the values stay parameters. A query per
# shape (rather than "param IS NULL OR ...") lets every shape read its own index range.
_TYPE_FILTERS = {
    "any": [],
    "exact": ["type = %(type)s"],
    "category": ["category = %(category)s"],
}
EVENTS = Listing("webhooks.events", _EVENT_COLUMNS, ("seq",), "event")


def list_events(tx: Transaction, merchant_id: str, query: dict) -> Page:
    """Return a page of a merchant's events, newest first, read by cursor (``seq``), without a total.

    ``type`` is an exact type, ``<category>.*`` or ``*``; ``created_gte``/``created_lte`` bound the
    time. Served by events_merchant_seq_idx, or its type or category sibling.
    """
    type_pattern = query.get("type")
    if type_pattern is None or type_pattern == "*":
        shape = "any"
    elif type_pattern.endswith(".*"):
        shape = "category"
    else:
        shape = "exact"
    conditions = list(_TYPE_FILTERS[shape])
    if query.get("created_gte") is not None:
        conditions.append("created_at >= %(gte)s")
    if query.get("created_lte") is not None:
        conditions.append("created_at <= %(lte)s")
    params = {"m": merchant_id, "type": type_pattern, "category": (type_pattern or "")[:-2],
              "gte": query.get("created_gte"), "lte": query.get("created_lte")}
    page = read_page(tx, EVENTS, "merchant_id = %(m)s", params, query, " AND ".join(conditions), total=False)
    page.items = [_event(row) for row in page.items]
    return page


def event_deliveries(tx: Transaction, merchant_id: str, event_id: str) -> list[EventDelivery]:
    """Return every endpoint's delivery of one event."""
    tx.cursor.execute(
        "SELECT id, endpoint_id, status, attempts, response_code, next_retry_at, last_error "
        "FROM webhooks.deliveries WHERE event_id = %s AND merchant_id = %s ORDER BY endpoint_id",
        (event_id, merchant_id),
    )
    return [EventDelivery(**{**row, "status": DeliveryStatus(row["status"])}) for row in tx.cursor.fetchall()]


def events_in_window(
    tx: Transaction, merchant_id: str, created_gte: datetime | None, created_lte: datetime | None,
    types: list[str], categories: list[str], failed_for_endpoint: str | None, limit: int,
) -> list[Event]:
    """Return a merchant's events in a time window, oldest first (for a replay).

    ``types``/``categories`` narrow by exact type or category (both empty: every type);
    ``failed_for_endpoint`` keeps only events whose delivery to that endpoint failed or was disabled.
    """
    tx.cursor.execute(
        f"SELECT {_EVENT_COLUMNS} FROM webhooks.events ev WHERE merchant_id = %(m)s"  # noqa: S608
        " AND (%(gte)s::timestamptz IS NULL OR created_at >= %(gte)s)"
        " AND (%(lte)s::timestamptz IS NULL OR created_at <= %(lte)s)"
        " AND (cardinality(%(types)b::text[]) + cardinality(%(cats)b::text[]) = 0"
        "      OR type = ANY(%(types)b::text[]) OR category = ANY(%(cats)b::text[]))"
        " AND (%(ep)s::text IS NULL OR EXISTS (SELECT 1 FROM webhooks.deliveries d WHERE d.event_id = ev.id"
        "      AND d.endpoint_id = %(ep)s AND d.status IN ('failed', 'disabled')))"
        " ORDER BY seq LIMIT %(limit)s",
        {"m": merchant_id, "gte": created_gte, "lte": created_lte, "types": types, "cats": categories,
         "ep": failed_for_endpoint, "limit": limit},
    )
    return [_event(row) for row in tx.cursor.fetchall()]


def prune_events(tx: Transaction, keep_days: int, batch: int) -> int:
    """Delete up to ``batch`` of the events older than ``keep_days``, oldest first; return how many."""
    # By ctid (a TID scan), as prune_deliveries: "seq IN (...)" planned a scan of the whole table at 200 k
    # events (tests/test_list_plans.py).
    tx.cursor.execute(
        "DELETE FROM webhooks.events WHERE ctid = ANY(ARRAY(SELECT ctid FROM webhooks.events "
        "WHERE created_at < now() - %s * interval '1 day' ORDER BY created_at LIMIT %s))",
        (keep_days, batch),
    )
    return tx.cursor.rowcount


# -- the live stream: (xid, seq) positions, read only behind pg_snapshot_xmin (see stream.py)

Position = tuple[str, int]


def stream_position_of(tx: Transaction, merchant_id: str, event_id: str) -> Position | None:
    """Return the stream position of one of a merchant's events."""
    tx.cursor.execute(
        "SELECT xid::text AS xid, seq FROM webhooks.events WHERE id = %s AND merchant_id = %s", (event_id, merchant_id)
    )
    row = tx.cursor.fetchone()
    return (row["xid"], int(row["seq"])) if row else None


def stream_position_now(tx: Transaction) -> Position:
    """Return a position before every event a transaction still running may store."""
    tx.cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xid")
    return (tx.cursor.fetchone()["xid"], 0)


def events_after(tx: Transaction, merchant_id: str, position: Position, limit: int) -> tuple[Position, list[Event]]:
    """Return a merchant's events after ``position`` whose transactions have all ended, and the new position."""
    tx.cursor.execute(
        f"SELECT {_EVENT_COLUMNS}, xid::text AS xid, seq FROM webhooks.events "  # noqa: S608
        "WHERE merchant_id = %s AND (xid, seq) > (%s::xid8, %s) AND xid < pg_snapshot_xmin(pg_current_snapshot()) "
        "ORDER BY xid, seq LIMIT %s",
        (merchant_id, position[0], position[1], limit),
    )
    rows = tx.cursor.fetchall()
    if not rows:
        return position, []
    last = rows[-1]
    return (last["xid"], int(last["seq"])), [_event({k: v for k, v in row.items() if k not in ("xid", "seq")}) for row in rows]
