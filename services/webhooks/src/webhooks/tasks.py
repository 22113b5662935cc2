"""Celery tasks (thin): fan events out into deliveries, hand claimed deliveries to the engine."""

from __future__ import annotations

import psycopg
from celery import Celery, shared_task
from gateway_common.errors import ServiceUnavailableError, TransactionConflictError
from gateway_common.events import events_from_task

from webhooks import runtime, service
from webhooks.models import Claim
from webhooks.service import Dispatch

QUEUE = "webhooks"
DELIVER_TASK = "webhooks.deliver"
HANDLE_EVENTS_TASK = "webhooks.handle_events"
# Claims per deliver task sent by the API (retries, test webhooks); the worker's engine attempts
# them concurrently, so a batch no longer serialises a merchant's deliveries.
BATCH_SIZE = 50

# Transient failures are retried after a short countdown; the durable schedule is in PostgreSQL.
_RETRY = {
    "autoretry_for": (ServiceUnavailableError, TransactionConflictError, psycopg.OperationalError),
    "retry_backoff": 1,
    "retry_backoff_max": 3,
    "retry_jitter": True,
    "max_retries": 200,
}


def batches(claims: list[Claim], size: int = BATCH_SIZE) -> list[list[Claim]]:
    """Group claims by merchant into batches of at most ``size`` (a slow endpoint delays only its own)."""
    by_merchant: dict[str, list[Claim]] = {}
    for claim in claims:
        by_merchant.setdefault(claim.merchant_id, []).append(claim)
    return [group[i : i + size] for group in by_merchant.values() for i in range(0, len(group), size)]


def celery_dispatch(celery_app: Celery) -> Dispatch:
    """Return a dispatcher that sends ``webhooks.deliver`` tasks, one per small batch of claims."""

    def dispatch(claims: list[Claim]) -> None:
        with celery_app.producer_or_acquire() as producer:
            for batch in batches(claims):
                celery_app.send_task(
                    DELIVER_TASK,
                    args=[[[c.delivery_id, c.lease_token] for c in batch]],
                    queue=QUEUE,
                    producer=producer,
                )

    return dispatch


@shared_task(name=HANDLE_EVENTS_TASK, acks_late=True, **_RETRY)
def handle_events(events: str | list[dict]) -> int:
    """Create the deliveries for a batch of event envelopes (a JSON array as text, or a list) and attempt them."""
    deliveries = service.handle_events(
        runtime.database(), runtime.config(), events_from_task(events), runtime.engine().submit, runtime.notify()
    )
    return len(deliveries)


@shared_task(name=DELIVER_TASK, acks_late=True)
def deliver(claims: list[list[str]]) -> int:
    """Hand claimed deliveries ``[[id, lease_token], ...]`` to this worker's engine; stale ones are skipped."""
    runtime.engine().submit([Claim(delivery_id, lease_token) for delivery_id, lease_token in claims])
    return len(claims)
