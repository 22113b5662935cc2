"""The live event stream: Redis pub/sub wakes a listener, the stored events are what it sends.

A worker that stores events publishes the merchants' ids on ``<prefix>:stored-events:<merchant>``
after commit (``redis_notifier``). A listener (``GET /events/stream``) reads the merchant's stored
events forward in ``(xid, seq)`` order, only behind ``pg_snapshot_xmin`` (the relay's rule, so an
event committed late is never skipped), starting at the event named by ``Last-Event-ID`` or at
the moment it connected; a wake-up makes it read at once, and it reads anyway every
``POLL_SECONDS``, so a lost pub/sub message only delays an event (pub/sub may be missed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis

from webhooks import service
from webhooks.models import Event, type_matches

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 1.0
# After a read, the next one waits at least this long: under a burst of wake-ups a listener reads
# once per interval, a batch at a time, rather than once per event.
MIN_READ_INTERVAL = 0.05
READ_BATCH = 500


def stored_events_channel(prefix: str, merchant_id: str) -> str:
    """Return the channel that tells a merchant's listeners new events are stored."""
    return f"{prefix}:stored-events:{merchant_id}"


def redis_notifier(client: redis.Redis, prefix: str) -> service.Notify:
    """Return a ``service.Notify`` that publishes a wake-up per merchant (best effort)."""

    def notify(merchant_ids: set[str]) -> None:
        pipe = client.pipeline(transaction=False)
        for merchant_id in merchant_ids:
            pipe.publish(stored_events_channel(prefix, merchant_id), "1")
        pipe.execute()

    return notify


def sse_message(event: Event) -> bytes:
    """Format one event as a Server-Sent Events message (id, event, data: the webhook body)."""
    # The body is compact JSON (no newlines), so it fits one data line.
    return b"id: " + event.id.encode() + b"\nevent: " + event.type.encode() + b"\ndata: " + event.body + b"\n\n"


def listen(
    db: object, client: redis.Redis, prefix: str, merchant_id: str, types: list[str], last_event_id: str | None
) -> Iterator[bytes]:
    """Yield the merchant's events as SSE messages, forever (the caller stops iterating on disconnect)."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(stored_events_channel(prefix, merchant_id))
    try:
        # Subscribed before the starting place is read, so nothing stored in between is missed.
        position = service.stream_start(db, merchant_id, last_event_id)
        yield b": connected\n\n"
        last_sent = time.monotonic()
        next_read = 0.0
        while True:
            now = time.monotonic()
            if now < next_read:
                time.sleep(next_read - now)
            position, events = service.stream_read(db, merchant_id, position, READ_BATCH)
            next_read = time.monotonic() + MIN_READ_INTERVAL
            chunk = b"".join(sse_message(e) for e in events if not types or any(type_matches(t, e.type) for t in types))
            if chunk:
                yield chunk
                last_sent = time.monotonic()
            if len(events) == READ_BATCH:
                continue  # catching up: read on at once
            wait = min(POLL_SECONDS, max(0.0, last_sent + HEARTBEAT_SECONDS - time.monotonic()))
            if pubsub.get_message(timeout=wait) is not None:
                while pubsub.get_message(timeout=0) is not None:
                    pass  # one read covers every wake-up so far
            if time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
                yield b": heartbeat\n\n"
                last_sent = time.monotonic()
    finally:
        try:
            pubsub.close()
        except redis.RedisError:
            log.debug("closing a stream's pub/sub failed", exc_info=True)


def parse_types(raw: str | None) -> list[str]:
    """Split ``types=payment.*,refund.*`` into patterns (empty: every type)."""
    return [t.strip() for t in (raw or "").split(",") if t.strip()]


