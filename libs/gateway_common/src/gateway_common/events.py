"""Event envelope, transactional outbox and the relay that publishes committed events."""

from __future__ import annotations

import fnmatch
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from celery import Celery
from psycopg2 import sql

from gateway_common.db import Database, Transaction
from gateway_common.ids import new_id
from gateway_common.pubsub import merchant_channel

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 10.0
PRUNE_BATCH = 5000


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


class Outbox:
    """Writes events into ``<schema>.outbox`` inside the caller's transaction."""

    def __init__(self, schema: str) -> None:
        self.table = sql.Identifier(schema, "outbox")

    def add(self, tx: Transaction, event_type: str, merchant_id: str, data: dict) -> dict:
        """Record an event in the same transaction as the state change it announces."""
        event = make_event(event_type, merchant_id, data)
        tx.cursor.execute(
            sql.SQL("INSERT INTO {} (event_id, event_type, merchant_id, payload) VALUES (%s, %s, %s, %s)").format(
                self.table
            ),
            (event["id"], event_type, event["merchant_id"], json.dumps(event)),
        )
        return event


@dataclass(frozen=True)
class Route:
    """Send events whose type matches ``pattern`` to Celery task ``task`` on ``queue``."""

    pattern: str
    task: str
    queue: str


class Relay:
    """Publishes committed outbox rows to Celery queues and Redis pub/sub.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and marked published in the same
    transaction, so several relays can run; a crash before the commit re-publishes
    the batch, which consumers absorb because they are idempotent by event id.
    """

    def __init__(
        self,
        db: Database,
        schema: str,
        routes: Iterable[Route],
        celery_app: Celery,
        redis_client: redis.Redis,
        pubsub_prefix: str,
        batch_size: int = 500,
    ) -> None:
        self.db = db
        self.table = sql.Identifier(schema, "outbox")
        self.routes = list(routes)
        self.celery_app = celery_app
        self.redis = redis_client
        self.prefix = pubsub_prefix
        self.batch_size = batch_size
        self._next_prune = 0.0

    def run_once(self) -> int:
        """Publish one batch of unpublished events; return how many."""
        with self.db.transaction() as tx:
            # The payload as stored text: it goes to pub/sub and to Celery as it is, never
            # decoded here (routes match on the event_type column).
            tx.cursor.execute(
                sql.SQL(
                    "SELECT seq, event_type, merchant_id::text AS merchant_id, payload::text AS payload FROM {} "
                    "WHERE published_at IS NULL ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED"
                ).format(self.table),
                (self.batch_size,),
            )
            rows = tx.cursor.fetchall()
            self._maybe_prune(tx)
            if not rows:
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
            tx.cursor.execute(
                sql.SQL("UPDATE {} SET published_at = now() WHERE seq = ANY(%s)").format(self.table),
                ([row["seq"] for row in rows],),
            )
            return len(rows)

    def _maybe_prune(self, tx: Transaction) -> None:
        # Published rows are only history; keep a day of it. The oldest rows are looked at by
        # primary key (no scan of the whole outbox), a bounded batch now and then.
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY_SECONDS
        tx.cursor.execute(
            sql.SQL(
                "DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} ORDER BY seq LIMIT %s) "
                "AND published_at < now() - interval '1 day'"
            ).format(table=self.table),
            (PRUNE_BATCH,),
        )
