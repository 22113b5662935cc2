"""Steps the webhook use cases share: events into deliveries (fan-out, redelivery) and due
deliveries to the dispatcher."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from gateway_common.db import Database, Transaction
from gateway_common.events import make_event
from gateway_common.ids import new_id

from webhooks import repository
from webhooks.config import WebhookConfig
from webhooks.models import Claim, Endpoint, Event, payment_id_of, webhook_body

log = logging.getLogger(__name__)

# Sends claimed deliveries to whoever attempts them (Celery in production). It is called
# inside the claiming transaction: if it raises, the claim rolls back and stays due.
Dispatch = Callable[[list[Claim]], None]
# Told, after commit, which merchants have new stored events (wakes their live streams).
Notify = Callable[[set[str]], None]


def event_of(envelope: dict) -> Event:
    """Return the stored form of an event envelope (its webhook body serialised once)."""
    return Event(
        id=envelope["id"],
        merchant_id=str(envelope["merchant_id"]),
        type=envelope["event"],
        created_at=datetime.fromtimestamp(int(envelope["timestamp"]), UTC),
        body=webhook_body(envelope),
    )


def _body(event: Event, body_format: str) -> bytes | None:
    """Return ``event``'s body in ``body_format``, or None when it is not sent in that format."""
    try:
        return event.body_for(body_format)
    except (KeyError, TypeError, ValueError):
        # One malformed event must not hold back the batch it came in (and every merchant's after it).
        log.warning("event %s (%s) has no %s form: not sent to endpoints in that format", event.id, event.type,
                    body_format, exc_info=True)
        return None


def _delivery_rows(endpoint: Endpoint, events: list[Event]) -> list[tuple]:
    """Return the delivery rows of ``events`` to ``endpoint``, each body in the endpoint's format.

    An event its format has no name for (``payment.created`` in Razorpay's) is not sent there.
    """
    rows = []
    for event in events:
        body = _body(event, endpoint.format)
        if body is not None:
            rows.append((new_id("whlog_"), endpoint, event.id, event.type, payment_id_of({"data": event.data}), body))
    return rows


def _fan_out(tx: Transaction, events: list[Event]) -> list[str]:
    """Create one delivery per (event, subscribed endpoint with a URL); return the due ones' ids."""
    endpoints = repository.endpoints_for(tx, sorted({e.merchant_id for e in events}))
    rows = []
    seen: set[tuple[str, str]] = set()
    for event in events:
        for endpoint in endpoints.get(event.merchant_id, ()):
            if (event.id, endpoint.id) in seen or not endpoint.subscribes_to(event.type):
                continue
            seen.add((event.id, endpoint.id))
            rows.extend(_delivery_rows(endpoint, [event]))
    return repository.insert_deliveries(tx, rows)


def dispatch_due(
    db: Database, cfg: WebhookConfig, dispatch: Dispatch, ids: list[str] | None = None, limit: int | None = None
) -> int:
    """Lease due deliveries and hand them to ``dispatch`` in the same transaction; return how many."""
    limit = cfg.sweep_batch if limit is None else limit
    if ids is not None:
        limit = max(limit, len(ids))
    if limit <= 0:
        return 0
    with db.transaction() as tx:
        claims = repository.claim_due(tx, limit, cfg.lease_seconds, ids)
        if claims:
            dispatch(claims)
    return len(claims)


def nudge(db: Database, cfg: WebhookConfig, dispatch: Dispatch, ids: list[str]) -> None:
    """Dispatch these deliveries now; on failure the sweeper finds them, as they stay due."""
    try:
        dispatch_due(db, cfg, dispatch, ids)
    except Exception:
        log.warning("immediate dispatch failed; the sweeper will retry", exc_info=True)


def emit_event(tx: Transaction, event_type: str, merchant_id: str, data: dict, notify: Notify | None) -> list[str]:
    """Store an event this service announces itself, in the caller's transaction, and fan it out; return
    the ids of the due deliveries it made."""
    envelope = make_event(event_type, merchant_id, data)
    record = event_of(envelope)
    repository.insert_events(tx, [record])
    if notify is not None:
        tx.on_commit(lambda: notify({merchant_id}))
    return _fan_out(tx, [record])


def _redeliver(tx: Transaction, endpoint: Endpoint, events: list[Event]) -> list[str]:
    rows = _delivery_rows(endpoint, events)
    # Asked for by the merchant: the first of these goes out now even through an open circuit.
    repository.allow_probe(tx, [endpoint.id])
    return repository.redeliver(tx, rows)
