"""Delivery use cases: attempts (start, send, record), the backlog, the test webhook, logs,
retry and pruning."""

from __future__ import annotations

import logging
import uuid

from gateway_common.db import Database
from gateway_common.events import make_event
from gateway_common.ids import new_id
from gateway_common.pagination import Page

from webhooks import repository, sender
from webhooks.config import WebhookConfig
from webhooks.errors import DeliveryNotFoundError, WebhookUrlNotConfiguredError
from webhooks.models import TEST_EVENT, WEBHOOK_ENDPOINT_DISABLED, AttemptResult, Claim, Delivery, Job, after_attempt
from webhooks.service._fanout import Dispatch, Notify, _body, emit_event, event_of, nudge
from webhooks.service.endpoints import _endpoint, endpoint_resource, release_held
from webhooks.service.events import PRUNE_BATCH, prune_events

log = logging.getLogger(__name__)


def delivery_backlog(db: Database) -> tuple[int, float]:
    """Deliveries still pending (due now or waiting for a retry), and how late the most overdue one is in seconds."""
    with db.autocommit() as tx:
        return repository.backlog(tx)


def attempt(session: object, job: Job) -> AttemptResult:
    """Make the HTTP attempt of a started job (no database access)."""
    if job.url is None:
        return AttemptResult(ok=False, error="no webhook URL configured")
    return sender.post(session, job.url, job.secret, job.event_id, job.body, job.standard_secrets)


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
        return repository.start_attempts(
            tx, claims, uuid.uuid4().hex, cfg.lease_seconds, cfg.circuit_threshold, cfg.probe_seconds, cfg.hold_seconds
        )


def record_attempts(
    db: Database, cfg: WebhookConfig, results: list[tuple[Job, AttemptResult]], notify: Notify | None = None
) -> dict[str, str]:
    """Store many attempts' outcomes in one transaction; return the recorded ids and their statuses.

    Each endpoint's run of failures is counted in the same transaction: a success closes its
    circuit (and then releases what it held back); an endpoint failing long enough is disabled and
    a ``webhook_endpoint.disabled`` event is emitted with it.
    """
    rows = [_outcome_row(cfg, job, result) for job, result in results]
    if not rows:
        return {}
    endpoints: dict[str, tuple[bool, int]] = {}
    with db.transaction() as tx:
        recorded = set(repository.record_attempts(tx, rows))
        for job, result in results:
            if job.delivery_id in recorded:
                ok, failures = endpoints.get(job.endpoint_id, (False, 0))
                endpoints[job.endpoint_id] = (ok or result.ok, failures + (not result.ok))
        disabled, release = repository.record_endpoint_outcomes(
            tx, endpoints, cfg.circuit_threshold, cfg.probe_seconds, cfg.disable_after_seconds,
            cfg.disable_min_failures,
        )
        for endpoint in disabled:
            log.warning("webhook endpoint %s of merchant %s disabled: failing", endpoint.id, endpoint.merchant_id)
            emit_event(tx, WEBHOOK_ENDPOINT_DISABLED, endpoint.merchant_id,
                       {"webhook_endpoint": endpoint_resource(endpoint)}, notify)
    # A closed circuit, or an endpoint just disabled: what its circuit held back is due now.
    release_held(db, release)
    for row in rows:
        if row["id"] not in recorded:
            log.info("delivery %s was reset during its attempt; outcome not recorded", row["id"])
    return {row["id"]: row["status"] for row in rows if row["id"] in recorded}


def send_test_webhook(
    db: Database, cfg: WebhookConfig, merchant_id: str, dispatch: Dispatch, notify: Notify | None = None
) -> Delivery:
    """Store a ``webhook.test`` event and queue its delivery to the default endpoint's URL."""
    with db.transaction() as tx:
        endpoint = _endpoint(tx, merchant_id)
        if endpoint.url is None:
            raise WebhookUrlNotConfiguredError()
        event = make_event(TEST_EVENT, merchant_id, {"message": "This is a test webhook from the payment gateway"})
        record = event_of(event)
        repository.insert_events(tx, [record])
        if notify is not None:
            tx.on_commit(lambda: notify({merchant_id}))
        # The test event goes to the default endpoint whatever its filter and status: that is what it tests.
        (delivery_id,) = repository.redeliver(
            tx, [(new_id("whlog_"), endpoint, event["id"], TEST_EVENT, None, _body(record, endpoint.format))]
        )
        delivery = repository.get_delivery(tx, merchant_id, delivery_id)
    nudge(db, cfg, dispatch, [delivery_id])
    return delivery


def list_deliveries(db: Database, merchant_id: str, query: dict) -> Page:
    """Return a page of the merchant's webhook logs, newest first (offset or a cursor; ``payment_id`` narrows)."""
    with db.transaction() as tx:
        return repository.list_deliveries(tx, merchant_id, query)


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
        if delivery is not None:
            repository.allow_probe(tx, [delivery.endpoint_id])
    if delivery is None:
        raise DeliveryNotFoundError()
    nudge(db, cfg, dispatch, [delivery_id])
    return delivery


def prune_deliveries(db: Database, cfg: WebhookConfig, batch: int = PRUNE_BATCH) -> int:
    """Delete one bounded batch of deliveries past their retention, then one of disabled endpoints'
    ``disabled`` deliveries beyond the newest ``cfg.disabled_deliveries_kept``; return how many.

    Each batch is its own short transaction, so no lock is held longer than one batch's delete.
    """
    with db.transaction() as tx:
        expired = repository.prune_deliveries(tx, cfg.delivery_retention_days, batch)
    with db.transaction() as tx:
        return expired + repository.prune_disabled_deliveries(tx, cfg.disabled_deliveries_kept, batch)


def prune(db: Database, cfg: WebhookConfig, batch: int = PRUNE_BATCH) -> int:
    """Run one pass of every pruner of this service (events, deliveries); return how many rows went."""
    return prune_events(db, batch) + prune_deliveries(db, cfg, batch)
