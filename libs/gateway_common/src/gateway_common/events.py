"""Event envelope, transactional outbox and the relay that publishes committed events."""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from celery import Celery
from prometheus_client import Counter
from psycopg import sql

from gateway_common.db import Database, Transaction
from gateway_common.ids import new_id
from gateway_common.metrics import Gauge
from gateway_common.migrations import quote_schema
from gateway_common.pubsub import merchant_channel

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 10.0
PRUNE_BATCH = 5000
# An idle relay looks this often for events held back by an open transaction, and warns past this age.
STALL_CHECK_SECONDS = 30.0
STALL_WARN_SECONDS = 60.0

PUBLISHED = Counter("gateway_outbox_published_events", "Events a relay of this process published from its outbox.", ["outbox"])


def make_event(event_type: str, merchant_id: str, data: dict) -> dict:
    """Build an event envelope: id, event, unix timestamp, merchant, data."""
    return {
        "id": new_id("evt_"),
        "event": event_type,
        "timestamp": int(time.time()),
        "merchant_id": str(merchant_id),
        "data": data,
    }


def events_from_task(events: object) -> list:
    """The event envelopes a relay task carries: a JSON array as text, or (older senders) a list.

    The relay sends the stored payloads joined into one JSON text, so neither it nor Celery
    decodes and re-encodes every event (kombu's JSON hooks made that most of both workers' CPU).
    Text that is not a JSON array is logged and yields no events: retrying cannot fix it.
    """
    if isinstance(events, str | bytes):
        try:
            events = json.loads(events)
        except ValueError:
            log.warning("ignoring a task whose events are not JSON: %r", events[:200])
            return []
    if not isinstance(events, list):
        log.warning("ignoring a task whose events are not a list: %r", str(events)[:200])
        return []
    return events


# The one way outbox rows are written: one multi-row VALUES statement (insert_events_sql for that
# many events, event_values for its parameters), for one event or many. Scalar parameters only:
# psycopg dumps them in C, where array parameters would go through its Python list dumper. A
# group commit that writes its own rows in the same round trip appends this statement to its own.
_EVENT_ROW = "(%s, %s, %s::uuid, %s::jsonb)"


@functools.lru_cache(maxsize=256)
def insert_events_sql(schema: str, count: int) -> str:
    """Return the INSERT of ``count`` outbox rows into ``<schema>.outbox`` (parameters: ``event_values``)."""
    if count < 1:
        raise ValueError("an INSERT of outbox rows needs at least one event")
    return (
        f"INSERT INTO {quote_schema(schema)}.outbox (event_id, event_type, merchant_id, payload) "  # noqa: S608
        f"VALUES {', '.join([_EVENT_ROW] * count)}"
    )


def event_values(events: Iterable[dict]) -> list:
    """Return envelopes (``make_event``) as the flat parameter list ``insert_events_sql`` takes."""
    values: list = []
    for event in events:
        values += (event["id"], event["event"], event["merchant_id"], json.dumps(event))
    return values


def write_events(tx: Transaction, schema: str, events: list[dict]) -> None:
    """Write event envelopes to ``<schema>.outbox`` in the caller's transaction, one statement for all."""
    if events:
        tx.cursor.execute(insert_events_sql(schema, len(events)), event_values(events))


class Outbox:
    """Writes events into ``<schema>.outbox`` inside the caller's transaction (``write_events``)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def add(self, tx: Transaction, event_type: str, merchant_id: str, data: dict) -> dict:
        """Record an event in the same transaction as the state change it announces."""
        event = make_event(event_type, merchant_id, data)
        write_events(tx, self.schema, [event])
        return event

    def write(self, tx: Transaction, events: list[dict]) -> None:
        """Record several events (envelopes from ``make_event``) in one statement."""
        write_events(tx, self.schema, events)


def _waited(tx: Transaction, table: sql.Identifier, place: dict) -> float:
    # The age of the next row in the relay's order, read from the index: min(created_at) over
    # every row after the place was planned as a scan of the whole outbox (the estimate of a
    # row comparison is a third of the table; bench/RESULTS.md, History).
    tx.cursor.execute(
        sql.SQL(
            "SELECT extract(epoch FROM now() - o.created_at)::float8 AS waited FROM {} AS o "
            "WHERE (o.xid, o.seq) > (%s::xid8, %s) ORDER BY o.xid, o.seq LIMIT 1"
        ).format(table),
        (place["xid"], place["seq"]),
    )
    row = tx.cursor.fetchone()
    return float(row["waited"]) if row else 0.0


def outbox_lag_seconds(db: Database, schema: str) -> float:
    """How long the oldest committed event of ``<schema>.outbox`` not yet published has waited (0 when none)."""
    with db.autocommit() as tx:
        tx.cursor.execute(sql.SQL("SELECT xid::text AS xid, seq FROM {}").format(sql.Identifier(schema, "outbox_relay")))
        place = tx.cursor.fetchone()
        return max(_waited(tx, sql.Identifier(schema, "outbox"), place), 0.0) if place else 0.0


def outbox_lag_gauge(db: Database, schema: str) -> Gauge:
    """The gauge of ``outbox_lag_seconds`` for a worker that relays ``<schema>.outbox``."""
    return Gauge("gateway_outbox_lag_seconds", "Age of the oldest committed event its relay has not published yet "
                 "(0 when every event is out).", lambda: {(schema,): outbox_lag_seconds(db, schema)}, labels=("outbox",))


@dataclass(frozen=True)
class Route:
    """Send events whose type matches ``pattern`` to Celery task ``task`` on ``queue``."""

    pattern: str
    task: str
    queue: str


class Relay:
    """Publishes committed outbox rows to Celery queues and Redis pub/sub, in commit-safe order.

    The relay keeps its place in ``<schema>.outbox_relay``: every row up to ``(xid, seq)`` is
    published. It reads on in ``(xid, seq)`` order, but only rows whose transaction is older than
    the oldest transaction still running (``pg_snapshot_xmin`` of the statement's snapshot): those
    transactions have all ended, so no row can still appear before that point, and a slow commit
    is never skipped. Publishing and moving the place commit together; a crash in between
    publishes the batch again, which consumers absorb because they are idempotent by event id.
    The place's row is locked (SKIP LOCKED) for the batch, so only one relay publishes an outbox at
    a time, however many workers run. A transaction left open anywhere in the cluster holds the
    relay back (an idle relay logs a warning); nothing is lost, it is only late.
    """

    def __init__(
        self,
        db: Database,
        schema: str,
        routes: Iterable[Route],
        celery_app: Celery,
        redis_client: redis.Redis,
        pubsub_prefix: str,
        batch_size: int = 2000,
    ) -> None:
        self.db = db
        self.schema = schema
        self.table = sql.Identifier(schema, "outbox")
        self.place = sql.Identifier(schema, "outbox_relay")
        self.routes = list(routes)
        self.celery_app = celery_app
        self.redis = redis_client
        self.prefix = pubsub_prefix
        # Up to 2,000 events a step: with smaller steps a busy relay fell further and further behind
        # (bench/RESULTS.md, History). A light load still goes out at once.
        self.batch_size = batch_size
        self._next_prune = 0.0
        self._next_stall_check = 0.0
        self._published = PUBLISHED.labels(schema)

    def run_once(self) -> int:
        """Publish one batch of committed events; return how many."""
        with self.db.transaction() as tx:
            tx.cursor.execute(sql.SQL("SELECT xid::text AS xid, seq FROM {} FOR UPDATE SKIP LOCKED").format(self.place))
            place = tx.cursor.fetchone()
            if place is None:
                self._check_place(tx)
                return 0  # another relay is publishing this outbox
            # The payload as stored text: it goes to pub/sub and to Celery as it is, never
            # decoded here (routes match on the event_type column). ORDER BY names the table's
            # columns: a bare "xid" would be the text output column, whose order is not the
            # numeric one (it would skip rows when xids gain a digit) and which no index serves
            # (every batch sorted all unpublished rows).
            tx.cursor.execute(
                sql.SQL(
                    "SELECT o.xid::text AS xid, o.seq, o.event_type, o.merchant_id::text AS merchant_id, "
                    "o.payload::text AS payload FROM {} AS o "
                    "WHERE (o.xid, o.seq) > (%s::xid8, %s) AND o.xid < pg_snapshot_xmin(pg_current_snapshot()) "
                    "ORDER BY o.xid, o.seq LIMIT %s"
                ).format(self.table),
                (place["xid"], place["seq"], self.batch_size),
            )
            rows = tx.cursor.fetchall()
            self._maybe_prune(tx, place)
            if not rows:
                self._maybe_warn_stalled(tx, place)
                return 0
            for route in self.routes:
                matching = [row["payload"] for row in rows if fnmatch.fnmatchcase(row["event_type"], route.pattern)]
                if matching:
                    # One JSON array as text, joined from the stored payloads (see events_from_task).
                    self.celery_app.send_task(route.task, args=["[" + ",".join(matching) + "]"], queue=route.queue)
            pipe = self.redis.pipeline(transaction=False)
            for row in rows:
                pipe.publish(merchant_channel(self.prefix, row["merchant_id"]), row["payload"])
            pipe.execute()
            last = rows[-1]
            tx.cursor.execute(
                sql.SQL("UPDATE {} SET xid = %s::xid8, seq = %s, updated_at = now()").format(self.place),
                (last["xid"], last["seq"]),
            )
            # Counted after the commit: a batch whose commit fails is published again, and counted then.
            tx.on_commit(lambda: self._published.inc(len(rows)))
            return len(rows)

    def _check_place(self, tx: Transaction) -> None:
        # Its row is locked by another relay, or it is missing: then nothing is ever published,
        # and that must not pass in silence.
        tx.cursor.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(self.place))
        if tx.cursor.fetchone()["n"] == 0:
            log.error("outbox %s: its relay place (%s.outbox_relay) has no row; nothing is published "
                      "until it is restored", self.schema, self.schema)

    def _maybe_warn_stalled(self, tx: Transaction, place: dict) -> None:
        now = time.monotonic()
        if now < self._next_stall_check:
            return
        self._next_stall_check = now + STALL_CHECK_SECONDS
        waited = _waited(tx, self.table, place)
        if waited > STALL_WARN_SECONDS:
            log.warning(
                "outbox %s: events have waited %.0f s for a transaction that is still open "
                "(pg_stat_activity shows it); they go out once it ends",
                self.schema,
                waited,
            )

    def _maybe_prune(self, tx: Transaction, place: dict) -> None:
        # Published rows are only history; keep a day of it. The oldest rows are looked at by
        # primary key (no scan of the whole outbox), a bounded batch now and then.
        now = time.monotonic()
        if now < self._next_prune:
            return
        tx.cursor.execute(
            sql.SQL(
                "DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} ORDER BY seq LIMIT %s) "
                "AND created_at < now() - interval '1 day' AND (xid, seq) <= (%s::xid8, %s)"
            ).format(table=self.table),
            (PRUNE_BATCH, place["xid"], place["seq"]),
        )
        # A full batch means more may be due: the next step prunes again, so pruning keeps up with
        # any rate of events (one batch per 10 s would fall behind past 500 events a second).
        self._next_prune = now if tx.cursor.rowcount >= PRUNE_BATCH else now + PRUNE_EVERY_SECONDS
