"""Celery tasks (thin): fan events out into deliveries, hand claimed deliveries to the engine."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psycopg2
from celery import Celery, shared_task
from gateway_common.config import Settings
from gateway_common.db import Database
from gateway_common.errors import ServiceUnavailableError, TransactionConflictError
from gateway_common.events import events_from_task

from webhooks import sender, service
from webhooks.config import WebhookConfig
from webhooks.engine import DeliveryEngine
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
    "autoretry_for": (ServiceUnavailableError, TransactionConflictError, psycopg2.OperationalError),
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


@dataclass
class Runtime:
    """Per-process resources of the worker: pool, settings, the delivery engine (its dispatcher)."""

    settings: Settings
    cfg: WebhookConfig
    db: Database
    engine: DeliveryEngine

    @property
    def dispatch(self) -> Dispatch:
        """Attempt claims in this process."""
        return self.engine.submit


_runtime: Runtime | None = None
_lock = threading.Lock()


def has_runtime() -> bool:
    """Whether this process has created its runtime (and so may have attempts under way)."""
    return _runtime is not None


def runtime(celery_app: Celery) -> Runtime:
    """Return this process's runtime, created on first use."""
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                settings = Settings.from_env("webhooks")
                cfg = WebhookConfig.from_settings(settings)
                # Celery task threads, the loops and the engine's starter and recorder share it;
                # the engine's sender threads never touch the database.
                db = Database(
                    settings.service_database_url,
                    maxconn=settings.db_pool_max + 8,
                    application_name="webhooks-worker",
                )
                session = sender.make_session(allow_private=cfg.allow_private, pool_size=cfg.senders)
                engine = DeliveryEngine(db, cfg, session, senders=cfg.senders, per_host=cfg.per_host)
                _runtime = Runtime(settings=settings, cfg=cfg, db=db, engine=engine)
    return _runtime


@shared_task(name=HANDLE_EVENTS_TASK, bind=True, acks_late=True, **_RETRY)
def handle_events(self, events: str | list[dict]) -> int:
    """Create the deliveries for a batch of event envelopes (a JSON array as text, or a list) and attempt them."""
    rt = runtime(self.app)
    return len(service.handle_events(rt.db, rt.cfg, events_from_task(events), rt.dispatch))


@shared_task(name=DELIVER_TASK, bind=True, acks_late=True)
def deliver(self, claims: list[list[str]]) -> int:
    """Hand claimed deliveries ``[[id, lease_token], ...]`` to this worker's engine; stale ones are skipped."""
    rt = runtime(self.app)
    rt.engine.submit([Claim(delivery_id, lease_token) for delivery_id, lease_token in claims])
    return len(claims)
