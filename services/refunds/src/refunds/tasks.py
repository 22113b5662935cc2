"""Celery tasks of the refunds worker (thin: load by id, call service)."""

from __future__ import annotations

from celery import shared_task

from refunds import runtime, service

PROCESS_TASK = "refunds.process"
QUEUE = "refunds"


@shared_task(name=PROCESS_TASK, acks_late=True, ignore_result=True)
def process_refunds(refund_ids: list[str]) -> int:
    """Mark these due refunds processed (idempotent)."""
    return service.process_refunds(runtime.database(), list(refund_ids))
