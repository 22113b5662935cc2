"""Webhook use cases: endpoint config, fan-out of events into deliveries, attempts, logs, retry."""

from __future__ import annotations

import logging
import secrets
import string
import uuid
from collections.abc import Callable

from gateway_common.db import Database, Transaction
from gateway_common.events import make_event
from gateway_common.ids import new_id

from webhooks import repository, sender
from webhooks.config import WebhookConfig
from webhooks.destinations import check_webhook_url
from webhooks.errors import DeliveryNotFoundError, WebhookUrlNotConfiguredError
from webhooks.models import (
    TEST_EVENT,
    TEST_MERCHANT_ID,
    TEST_WEBHOOK_SECRET,
    AttemptResult,
    Claim,
    Delivery,
    Endpoint,
    Job,
    after_attempt,
    payment_id_of,
    webhook_body,
)

log = logging.getLogger(__name__)

# Sends claimed deliveries to whoever attempts them (Celery in production). It is called
# inside the claiming transaction: if it raises, the claim rolls back and stays due.
Dispatch = Callable[[list[Claim]], None]

_SECRET_ALPHABET = string.ascii_letters + string.digits
_EVENT_KEYS = ("id", "event", "timestamp", "merchant_id", "data")


def new_secret() -> str:
    """Return a fresh webhook signing secret."""
    return "whsec_" + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(32))


def _endpoint(tx: Transaction, merchant_id: str) -> Endpoint:
    endpoint = repository.get_endpoint(tx, merchant_id)
    if endpoint is None:
        repository.insert_endpoint(tx, new_id("we_"), merchant_id, new_secret())
        endpoint = repository.get_endpoint(tx, merchant_id)
    return endpoint


def get_config(db: Database, merchant_id: str) -> Endpoint:
    """Return the merchant's webhook endpoint, creating it with a fresh secret on first use."""
    with db.transaction() as tx:
        return _endpoint(tx, merchant_id)


def update_config(db: Database, cfg: WebhookConfig, merchant_id: str, url: str | None) -> Endpoint:
    """Set (or clear, with null or "") the merchant's webhook URL."""
    url = url.strip() if url else None
    if url:
        check_webhook_url(url, allow_private=cfg.allow_private)
    with db.transaction() as tx:
        _endpoint(tx, merchant_id)
        return repository.set_endpoint_url(tx, merchant_id, url or None)


def regenerate_secret(db: Database, merchant_id: str) -> Endpoint:
    """Replace the merchant's signing secret; every later attempt signs with the new one."""
    with db.transaction() as tx:
        _endpoint(tx, merchant_id)
        return repository.set_endpoint_secret(tx, merchant_id, new_secret())


def seed_test_merchant(db: Database) -> bool:
    """Give the documented test merchant its webhook secret if it has no endpoint yet."""
    with db.transaction() as tx:
        if repository.get_endpoint(tx, TEST_MERCHANT_ID) is not None:
            return False
        repository.insert_endpoint(tx, new_id("we_"), TEST_MERCHANT_ID, TEST_WEBHOOK_SECRET)
    return True


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


def handle_events(db: Database, cfg: WebhookConfig, events: list[dict], dispatch: Dispatch) -> list[str]:
    """Turn events into one delivery per (event, endpoint), then attempt the new ones at once.

    Every handled event id is recorded in ``webhooks.received_events`` in the same transaction
    (also for merchants without a URL), so the reconciler only picks up events no task brought.
    Idempotent by event id: an event that already has its delivery gets no second one.
    """
    valid = valid_events(events)
    if not valid:
        return []
    with db.transaction() as tx:
        endpoints = repository.endpoints_with_url(tx, sorted({str(e["merchant_id"]) for e in valid}))
        rows = []
        seen: set[tuple[str, str]] = set()
        for event in valid:
            endpoint = endpoints.get(str(event["merchant_id"]))
            if endpoint is None or (event["id"], endpoint.id) in seen:
                continue
            seen.add((event["id"], endpoint.id))
            rows.append(
                (new_id("whlog_"), endpoint, event["id"], event["event"], payment_id_of(event), webhook_body(event))
            )
        created = repository.insert_deliveries(tx, rows)
        repository.record_received(tx, [event["id"] for event in valid])
    if created:
        nudge(db, cfg, dispatch, created)
    return created


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


def attempt(session: object, job: Job) -> AttemptResult:
    """Make the HTTP attempt of a started job (no database access)."""
    if job.url is None:
        return AttemptResult(ok=False, error="no webhook URL configured")
    return sender.post(session, job.url, job.secret, job.event_id, job.body)


def _outcome_row(cfg: WebhookConfig, job: Job, result: AttemptResult) -> dict:
    outcome = after_attempt(job.attempts + 1, result.ok, cfg.intervals)
    return {
        "id": job.delivery_id,
        "token": job.lease_token,
        "status": str(outcome.status),
        "wait": outcome.next_retry_in,
        "code": result.response_code,
        "body": result.response_body,
        "error": result.error,
        "url": job.url,
    }


def start_attempts(db: Database, cfg: WebhookConfig, claims: list[Claim]) -> list[Job]:
    """Take over many claims in one transaction; stale ones are left out."""
    if not claims:
        return []
    with db.transaction() as tx:
        return repository.start_attempts(tx, claims, uuid.uuid4().hex, cfg.lease_seconds)


def record_attempts(db: Database, cfg: WebhookConfig, results: list[tuple[Job, AttemptResult]]) -> dict[str, str]:
    """Store many attempts' outcomes in one transaction; return the recorded ids and their statuses."""
    rows = [_outcome_row(cfg, job, result) for job, result in results]
    if not rows:
        return {}
    with db.transaction() as tx:
        recorded = set(repository.record_attempts(tx, rows))
    for row in rows:
        if row["id"] not in recorded:
            log.info("delivery %s was reset during its attempt; outcome not recorded", row["id"])
    return {row["id"]: row["status"] for row in rows if row["id"] in recorded}


def send_test_webhook(db: Database, cfg: WebhookConfig, merchant_id: str, dispatch: Dispatch) -> Delivery:
    """Queue a ``webhook.test`` delivery to the merchant's URL."""
    with db.transaction() as tx:
        endpoint = _endpoint(tx, merchant_id)
        if endpoint.url is None:
            raise WebhookUrlNotConfiguredError()
        event = make_event(TEST_EVENT, merchant_id, {"message": "This is a test webhook from the payment gateway"})
        (delivery_id,) = repository.insert_deliveries(
            tx, [(new_id("whlog_"), endpoint, event["id"], TEST_EVENT, None, webhook_body(event))]
        )
        delivery = repository.get_delivery(tx, merchant_id, delivery_id)
    nudge(db, cfg, dispatch, [delivery_id])
    return delivery


def list_deliveries(
    db: Database, merchant_id: str, limit: int, offset: int, payment_id: str | None = None
) -> tuple[list[Delivery], int]:
    """Return a page of the merchant's webhook logs, newest first, and the total."""
    with db.transaction() as tx:
        return repository.list_deliveries(tx, merchant_id, limit, offset, payment_id)


def get_delivery(db: Database, merchant_id: str, delivery_id: str) -> Delivery:
    """Return one of the merchant's webhook logs."""
    with db.transaction() as tx:
        delivery = repository.get_delivery(tx, merchant_id, delivery_id)
    if delivery is None:
        raise DeliveryNotFoundError()
    return delivery


def retry_delivery(
    db: Database, cfg: WebhookConfig, merchant_id: str, delivery_id: str, dispatch: Dispatch
) -> Delivery:
    """Reset a delivery's attempts and deliver it again now."""
    with db.transaction() as tx:
        delivery = repository.reset_delivery(tx, merchant_id, delivery_id)
    if delivery is None:
        raise DeliveryNotFoundError()
    nudge(db, cfg, dispatch, [delivery_id])
    return delivery
