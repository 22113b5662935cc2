"""Pick up published events whose ``webhooks.handle_events`` task never arrived.

The payments and refunds relays mark outbox rows published once the Celery task is queued;
if Redis loses the queue, nothing would create those deliveries. The producers publish
read-only views of their outbox, and this step handles every event from them that is
published, older than ``min_age`` (the task had its chance), younger than ``max_age``, and
not in ``webhooks.received_events`` -- through the same ``service.handle_events`` as the task.
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
    batch: int = 500
    # received_events rows older than this can no longer matter (an event is received after it
    # is created, and only events younger than max_age are looked at).
    keep_received_seconds: float = 7200.0


def _missing(db: Database, source: str, rc: ReconcileConfig) -> list[tuple[str, dict]]:
    # The outbox is indexed on seq only (not exposed by the view): this scans the outbox, which
    # the relay prunes to a day of history; received_events is probed by its primary key.
    with db.transaction() as tx:
        tx.cursor.execute(
            f"SELECT ev.event_id, ev.payload FROM {source} ev "  # noqa: S608 - fixed view names
            "WHERE ev.published_at IS NOT NULL"
            "  AND ev.created_at >= now() - %(max_age)s::float8 * interval '1 second'"
            "  AND ev.created_at < now() - %(min_age)s::float8 * interval '1 second'"
            "  AND NOT EXISTS (SELECT 1 FROM webhooks.received_events r WHERE r.event_id = ev.event_id) "
            "ORDER BY ev.created_at LIMIT %(limit)s",
            {"max_age": rc.max_age_seconds, "min_age": rc.min_age_seconds, "limit": rc.batch},
        )
        return [(row["event_id"], row["payload"]) for row in tx.cursor.fetchall()]


class Reconciler:
    """One step handles a batch of missed events from every source; returns how many it handled."""

    def __init__(self, db: Database, cfg: WebhookConfig, dispatch: Dispatch, rc: ReconcileConfig | None = None) -> None:
        self.db = db
        self.cfg = cfg
        self.dispatch = dispatch
        self.rc = rc or ReconcileConfig()
        self._unreadable: set[str] = set()

    def step(self) -> int:
        """Handle missed events; 0 means there was nothing to do."""
        handled = 0
        for source in SOURCES:
            try:
                found = _missing(self.db, source, self.rc)
            except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.UndefinedTable,
                    psycopg2.errors.InvalidSchemaName) as exc:
                if source not in self._unreadable:
                    log.warning("cannot read %s; its missed events are not reconciled: %s", source, exc)
                    self._unreadable.add(source)
                continue
            self._unreadable.discard(source)
            if not found:
                continue
            log.warning("reconciling %d published events from %s that no task delivered", len(found), source)
            service.handle_events(self.db, self.cfg, [payload for _, payload in found], self.dispatch)
            # Malformed payloads are skipped by handle_events; remember them too, or they come back every step.
            with self.db.transaction() as tx:
                repository.record_received(tx, [event_id for event_id, _ in found])
            handled += len(found)
        self._prune()
        return handled

    def _prune(self) -> None:
        with self.db.transaction() as tx:
            tx.cursor.execute(
                "DELETE FROM webhooks.received_events WHERE received_at < now() - %s::float8 * interval '1 second'",
                (self.rc.keep_received_seconds,),
            )
