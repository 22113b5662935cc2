"""Pick up published events whose ``webhooks.handle_events`` task never arrived.

The payments and refunds relays move past outbox rows once the Celery task is queued (the views
show such rows with a ``published_at``);
if Redis loses the queue, nothing would create those deliveries. The producers publish
read-only views of their outbox, and this step handles every event from them that is
published, older than ``min_age`` (the task had its chance), younger than ``max_age``, and
not in ``webhooks.received_events`` -- through the same ``service.handle_events`` as the task.

Each source is read forward by ``seq`` (the outbox's primary key) from a cursor kept in this
process, so a pass costs what arrived since the last one, not a scan of the whole outbox. The
cursor stays before any row that may still need handling later: one not yet published (or
published less than ``min_age`` ago) and a gap in ``seq`` that an open transaction may still
fill; a gap is given up once the row after it is ``gap_grace`` old (aborted inserts leave
such gaps for good). Rows after such a row are still checked, and checked again on later
passes until the cursor can move past them. A new process starts at the first row younger
than ``max_age``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg2
from gateway_common.db import Database

from webhooks import repository, service
from webhooks.config import WebhookConfig
from webhooks.service import Dispatch

log = logging.getLogger(__name__)

# The producers' event views (schema-qualified; fixed names, never user input).
SOURCES = ("payments.payment_events", "refunds.refund_events")


@dataclass(frozen=True)
class ReconcileConfig:
    min_age_seconds: float = 10.0
    max_age_seconds: float = 3600.0
    batch: int = 500  # missed events handled per call of handle_events
    scan_batch: int = 5000  # rows read per query
    max_scans: int = 100  # queries per source and step, so one step stays short
    # received_events rows older than this can no longer matter (an event is received after it
    # is created, and only events younger than max_age are looked at).
    keep_received_seconds: float = 7200.0
    # A gap in seq before a row at least this old is an aborted insert, not an open transaction.
    gap_grace_seconds: float = 60.0


def _start(db: Database, source: str, rc: ReconcileConfig) -> int:
    """Return the seq just before the first event young enough to matter (one scan, at start)."""
    with db.transaction() as tx:
        tx.cursor.execute(
            f"SELECT coalesce(min(seq) FILTER (WHERE created_at >= now() - %(max_age)s::float8 * interval '1 second'), "  # noqa: S608
            f"max(seq) + 1, 1) - 1 AS after FROM {source}",
            {"max_age": rc.max_age_seconds},
        )
        return int(tx.cursor.fetchone()["after"])


@dataclass
class _Scan:
    """One read of a source: how far it got, where the cursor may move, what was missed."""

    last: int  # the last seq read and looked at
    hold: int | None  # the cursor may not move past this seq yet
    found: list[tuple[str, dict]]
    more: bool  # a full batch of old-enough rows: read on


def _scan(db: Database, source: str, after: int, rc: ReconcileConfig) -> _Scan:
    """Read up to ``rc.scan_batch`` events after ``after`` and sort out what was missed."""
    with db.transaction() as tx:
        tx.cursor.execute(
            "SELECT ev.seq, ev.event_id,"  # noqa: S608 - fixed view names
            "  ev.created_at < now() - %(min_age)s::float8 * interval '1 second' AS old_enough,"
            "  ev.created_at < now() - %(max_age)s::float8 * interval '1 second' AS expired,"
            "  ev.created_at < now() - %(gap_grace)s::float8 * interval '1 second' AS settled,"
            "  ev.published_at IS NOT NULL"
            "    AND ev.published_at < now() - %(min_age)s::float8 * interval '1 second' AS ready,"
            "  CASE WHEN NOT EXISTS (SELECT 1 FROM webhooks.received_events r WHERE r.event_id = ev.event_id)"
            "    THEN ev.payload END AS missed "
            f"FROM {source} ev WHERE ev.seq > %(after)s ORDER BY ev.seq LIMIT %(limit)s",
            {
                "after": after,
                "min_age": rc.min_age_seconds,
                "max_age": rc.max_age_seconds,
                "gap_grace": rc.gap_grace_seconds,
                "limit": rc.scan_batch,
            },
        )
        rows = tx.cursor.fetchall()
    hold: int | None = None  # the cursor may not pass this seq yet
    last = after
    found: list[tuple[str, dict]] = []
    for row in rows:
        if not row["old_enough"]:
            break  # everything after it is younger still
        if hold is None and row["seq"] != last + 1 and not row["settled"]:
            hold = last  # an open transaction may still commit a row in the gap
        last = row["seq"]
        if row["expired"]:
            continue
        if not row["ready"]:
            if hold is None:
                hold = row["seq"] - 1
            continue
        if row["missed"] is not None:
            found.append((row["event_id"], row["missed"]))
    more = len(rows) == rc.scan_batch and rows[-1]["seq"] == last
    return _Scan(last, hold, found, more)


class Reconciler:
    """One step handles a batch of missed events from every source; returns how many it handled."""

    def __init__(self, db: Database, cfg: WebhookConfig, dispatch: Dispatch, rc: ReconcileConfig | None = None) -> None:
        self.db = db
        self.cfg = cfg
        self.dispatch = dispatch
        self.rc = rc or ReconcileConfig()
        self._unreadable: set[str] = set()
        self._cursor: dict[str, int] = {}  # per source: every event up to this seq is taken care of

    def step(self) -> int:
        """Handle missed events; 0 means there was nothing to do."""
        handled = 0
        for source in SOURCES:
            try:
                handled += self._step_source(source)
            except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedTable,
                    psycopg2.errors.UndefinedColumn, psycopg2.errors.InvalidSchemaName) as exc:
                if source not in self._unreadable:
                    log.warning("cannot read %s; its missed events are not reconciled: %s", source, exc)
                    self._unreadable.add(source)
                continue
            self._unreadable.discard(source)
        self._prune()
        return handled

    def _step_source(self, source: str) -> int:
        if source not in self._cursor:
            self._cursor[source] = _start(self.db, source, self.rc)
        position, hold, handled = self._cursor[source], None, 0
        for _ in range(self.rc.max_scans):
            scan = _scan(self.db, source, position, self.rc)
            if hold is None:
                hold = scan.hold
            for start in range(0, len(scan.found), self.rc.batch):
                handled += self._handle(source, scan.found[start:start + self.rc.batch])
            position = scan.last
            if not scan.more:
                break
        self._cursor[source] = position if hold is None else hold
        return handled

    def _handle(self, source: str, found: list[tuple[str, dict]]) -> int:
        log.warning("reconciling %d published events from %s that no task delivered", len(found), source)
        service.handle_events(self.db, self.cfg, [payload for _, payload in found], self.dispatch)
        # Malformed payloads are skipped by handle_events; remember them too, or they come back every step.
        with self.db.transaction() as tx:
            repository.record_received(tx, [event_id for event_id, _ in found])
        return len(found)

    def _prune(self) -> None:
        with self.db.transaction() as tx:
            tx.cursor.execute(
                "DELETE FROM webhooks.received_events WHERE received_at < now() - %s::float8 * interval '1 second'",
                (self.rc.keep_received_seconds,),
            )
