"""Pick up a producer's published events whose Celery task never arrived, for a consumer.

A relay moves past outbox rows once their task is queued (the producer's published view shows
them with a ``published_at``); if Redis loses the queue, the consumer never hears of them. Each
producer publishes a read-only view of its outbox (columns ``seq, event_id, event_type, payload,
created_at, published_at``), and ``Reconciler.step`` hands the consumer's idempotent ``apply``
every event from it that is published, older than ``min_age`` (its task had its chance),
younger than ``max_age``, and that the consumer's ``missed`` predicate says it has not applied.

Each view is read forward by ``seq`` (the outbox's primary key) from a place kept in this
process, so a pass costs what arrived since the last one, not a scan of the whole outbox. The
place stays before any row that may still need handling later: one not yet published (or
published less than ``min_age`` ago) and a gap in ``seq`` that an open transaction may still
fill; a gap is given up once the row after it is ``gap_grace`` old (aborted inserts leave such
gaps for good). Rows after such a row are still checked, and checked again on later passes
until the place can move past them (an event already handed over is not handed again). A new
process starts at the first row younger than ``max_age``, so its first pass is bounded in time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from gateway_common.db import Database

log = logging.getLogger(__name__)

_VIEW = re.compile(r"^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$")
_UNREADABLE = (
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.InvalidSchemaName,
)

# Takes the missed events as (event_id, payload) and applies them, idempotently.
Apply = Callable[[list[tuple[str, dict]]], object]


@dataclass(frozen=True)
class Source:
    """A producer's published events view (``schema.view``) and the consumer's test of a missed row.

    ``missed`` is a SQL condition on the view's row ``ev``, owned by the consumer's repository
    (for example ``NOT EXISTS (SELECT 1 FROM <consumer>.<applied> a WHERE a.event_id = ev.event_id)``).
    """

    view: str
    missed: str

    def __post_init__(self) -> None:
        if not _VIEW.match(self.view):
            raise ValueError(f"not a schema-qualified view name: {self.view!r}")

    def identifier(self) -> sql.Identifier:
        """Return the view as a quoted identifier."""
        schema, name = self.view.split(".")
        return sql.Identifier(schema, name)


@dataclass(frozen=True)
class ReconcileConfig:
    """How old an event must be before it counts as missed, and how much one step reads."""

    min_age_seconds: float = 10.0
    max_age_seconds: float = 3600.0
    batch: int = 500  # missed events per call of apply
    scan_batch: int = 5000  # rows read per query
    max_scans: int = 100  # queries per source and step, so one step stays short
    # A gap in seq before a row at least this old is an aborted insert, not an open transaction.
    gap_grace_seconds: float = 60.0


@dataclass
class Scan:
    """One read of a source: how far it got, where the place may move, what was missed."""

    last: int  # the last seq read and looked at
    hold: int | None  # the place may not move past this seq yet
    found: list[tuple[int, str, dict]]  # (seq, event_id, payload)
    more: bool  # a full batch of old-enough rows: read on


@dataclass
class _Place:
    after: int  # every event up to this seq is taken care of
    handed: set[int] = field(default_factory=set)  # seqs past ``after`` already handed to apply


def start(db: Database, source: Source, rc: ReconcileConfig) -> int:
    """Return the seq just before the first event young enough to matter."""
    with db.transaction() as tx:
        tx.cursor.execute(
            sql.SQL(
                "SELECT coalesce(min(seq) FILTER (WHERE created_at >= now() - %(max_age)s::float8 * interval '1 second'), "
                "max(seq) + 1, 1) - 1 AS after FROM {}"
            ).format(source.identifier()),
            {"max_age": rc.max_age_seconds},
        )
        return int(tx.cursor.fetchone()["after"])


def scan(db: Database, source: Source, after: int, rc: ReconcileConfig) -> Scan:
    """Read up to ``rc.scan_batch`` events after ``after`` and sort out what was missed."""
    with db.transaction() as tx:
        tx.cursor.execute(
            sql.SQL(
                "SELECT ev.seq, ev.event_id,"
                "  ev.created_at < now() - %(min_age)s::float8 * interval '1 second' AS old_enough,"
                "  ev.created_at < now() - %(max_age)s::float8 * interval '1 second' AS expired,"
                "  ev.created_at < now() - %(gap_grace)s::float8 * interval '1 second' AS settled,"
                "  ev.published_at IS NOT NULL"
                "    AND ev.published_at < now() - %(min_age)s::float8 * interval '1 second' AS ready,"
                "  CASE WHEN {missed} THEN ev.payload END AS missed "
                "FROM {view} ev WHERE ev.seq > %(after)s ORDER BY ev.seq LIMIT %(limit)s"
            ).format(missed=sql.SQL(source.missed), view=source.identifier()),
            {
                "after": after,
                "min_age": rc.min_age_seconds,
                "max_age": rc.max_age_seconds,
                "gap_grace": rc.gap_grace_seconds,
                "limit": rc.scan_batch,
            },
        )
        rows = tx.cursor.fetchall()
    hold: int | None = None
    last = after
    found: list[tuple[int, str, dict]] = []
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
            found.append((row["seq"], row["event_id"], row["missed"]))
    more = len(rows) == rc.scan_batch and rows[-1]["seq"] == last
    return Scan(last, hold, found, more)


class Reconciler:
    """Hands a consumer's ``apply`` the events of its sources that no task delivered."""

    def __init__(self, db: Database, sources: list[Source], apply: Apply, rc: ReconcileConfig | None = None) -> None:
        self.db = db
        self.sources = list(sources)
        self.apply = apply
        self.rc = rc or ReconcileConfig()
        self._places: dict[str, _Place] = {}
        self._unreadable: set[str] = set()

    def step(self) -> int:
        """Hand over one step's missed events from every source; return how many (0: nothing to do)."""
        handled = 0
        for source in self.sources:
            try:
                handled += self._step_source(source)
            except _UNREADABLE as exc:
                if source.view not in self._unreadable:
                    log.warning("cannot read %s; its missed events are not reconciled: %s", source.view, exc)
                    self._unreadable.add(source.view)
                continue
            self._unreadable.discard(source.view)
        return handled

    def _step_source(self, source: Source) -> int:
        place = self._places.get(source.view)
        if place is None:
            place = self._places[source.view] = _Place(start(self.db, source, self.rc))
        position, hold, handled = place.after, None, 0
        for _ in range(self.rc.max_scans):
            result = scan(self.db, source, position, self.rc)
            if hold is None:
                hold = result.hold
            fresh = [(seq, event_id, payload) for seq, event_id, payload in result.found if seq not in place.handed]
            for begin in range(0, len(fresh), self.rc.batch):
                chunk = fresh[begin : begin + self.rc.batch]
                log.warning("reconciling %d published events from %s that no task delivered", len(chunk), source.view)
                self.apply([(event_id, payload) for _, event_id, payload in chunk])
                place.handed.update(seq for seq, _, _ in chunk)
                handled += len(chunk)
            position = result.last
            if not result.more:
                break
        place.after = position if hold is None else hold
        place.handed = {seq for seq in place.handed if seq > place.after}
        return handled
