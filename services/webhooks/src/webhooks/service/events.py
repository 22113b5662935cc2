"""Event use cases: store and fan out incoming events, list, get, resend, prune, and the live
stream's reads."""

from __future__ import annotations

import logging
import uuid

from gateway_common.db import Database
from gateway_common.pagination import Page

from webhooks import repository
from webhooks.config import WebhookConfig
from webhooks.errors import EventNotFoundError, EventNotInFormatError, NoEndpointToResendError
from webhooks.models import EVENT_RETENTION_DAYS, EndpointStatus, Event, EventDelivery
from webhooks.service._fanout import Dispatch, Notify, _body, _fan_out, _redeliver, event_of, nudge
from webhooks.service.endpoints import _own_endpoint

log = logging.getLogger(__name__)

# Old events (and deliveries) deleted per pruning pass, each batch in a transaction of its own.
PRUNE_BATCH = 5_000
_EVENT_KEYS = ("id", "event", "timestamp", "merchant_id", "data")


def _valid_event(event: object) -> bool:
    if not isinstance(event, dict) or any(key not in event for key in _EVENT_KEYS):
        return False
    try:
        uuid.UUID(str(event["merchant_id"]))
    except ValueError:
        return False
    return isinstance(event["id"], str) and isinstance(event["event"], str) and isinstance(event["data"], dict)


def valid_events(events: list[dict]) -> list[dict]:
    """Return the well-formed event envelopes, logging the others."""
    valid = []
    for event in events:
        if _valid_event(event):
            valid.append(event)
        else:
            log.warning("ignoring malformed event %r", str(event)[:200])
    return valid


def handle_events(
    db: Database, cfg: WebhookConfig, events: list[dict], dispatch: Dispatch, notify: Notify | None = None
) -> list[str]:
    """Store events for their merchants and turn them into one delivery per subscribed endpoint, then
    attempt the new ones at once.

    Every event is stored (whether or not its merchant has an endpoint) and every handled event
    id is recorded in ``webhooks.received_events``, all in one transaction with the deliveries,
    so the reconciler picks up exactly the events no task brought. Idempotent by event id: an
    event already stored or delivered is neither stored nor delivered twice. ``notify`` hears,
    after commit, which merchants have new stored events (the live stream).
    """
    valid = valid_events(events)
    if not valid:
        return []
    records = [event_of(envelope) for envelope in valid]
    with db.transaction() as tx:
        stored = repository.insert_events(tx, records)
        created = _fan_out(tx, records)
        repository.record_received(tx, [event["id"] for event in valid])
        if stored and notify is not None:
            merchants = {record.merchant_id for record in stored}
            tx.on_commit(lambda: notify(merchants))
    if created:
        nudge(db, cfg, dispatch, created)
    return created


def list_events(db: Database, merchant_id: str, query: dict) -> Page:
    """Return a page of the merchant's events, newest first, by cursor (``type``, time window and ``limit`` narrow)."""
    with db.transaction() as tx:
        return repository.list_events(tx, merchant_id, query)


def get_event(db: Database, merchant_id: str, event_id: str) -> tuple[Event, list[EventDelivery]]:
    """Return one of the merchant's events and its deliveries, one per endpoint."""
    with db.transaction() as tx:
        event = repository.get_event(tx, merchant_id, event_id)
        if event is None:
            raise EventNotFoundError()
        return event, repository.event_deliveries(tx, merchant_id, event_id)


def resend_event(
    db: Database, cfg: WebhookConfig, merchant_id: str, event_id: str, endpoint_id: str | None, dispatch: Dispatch
) -> list[str]:
    """Deliver a stored event again, to one endpoint or to every enabled endpoint subscribed to its type."""
    with db.transaction() as tx:
        event = repository.get_event(tx, merchant_id, event_id)
        if event is None:
            raise EventNotFoundError()
        if endpoint_id is not None:
            targets = [_own_endpoint(tx, merchant_id, endpoint_id, enabled=True)]
            if _body(event, targets[0].format) is None:
                raise EventNotInFormatError()
        else:
            targets = [
                ep for ep in repository.endpoints_for(tx, [merchant_id]).get(merchant_id, [])
                if ep.status == EndpointStatus.ENABLED and ep.subscribes_to(event.type)
                and _body(event, ep.format) is not None
            ]
        if not targets:
            raise NoEndpointToResendError()
        delivery_ids = [delivery_id for ep in targets for delivery_id in _redeliver(tx, ep, [event])]
    nudge(db, cfg, dispatch, delivery_ids)
    return delivery_ids


def prune_events(db: Database, batch: int = PRUNE_BATCH) -> int:
    """Delete one bounded batch of events past their retention; return how many."""
    with db.transaction() as tx:
        return repository.prune_events(tx, EVENT_RETENTION_DAYS, batch)


# -- the live stream (stream.py)


def stream_start(db: Database, merchant_id: str, last_event_id: str | None) -> repository.Position:
    """Return where a listener starts: after ``last_event_id`` if it is one of the merchant's, else now."""
    with db.transaction() as tx:
        if last_event_id:
            position = repository.stream_position_of(tx, merchant_id, last_event_id)
            if position is not None:
                return position
        return repository.stream_position_now(tx)


def stream_read(
    db: Database, merchant_id: str, position: repository.Position, limit: int
) -> tuple[repository.Position, list[Event]]:
    """Return the merchant's events stored after ``position`` (committed for good) and the new position."""
    with db.transaction() as tx:
        return repository.events_after(tx, merchant_id, position, limit)
