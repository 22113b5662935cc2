"""Celery tasks of the payments service (thin: load by id, call service)."""

from __future__ import annotations

from celery import shared_task
from gateway_common.events import events_from_task

from payments import bank_schedule, refund_sync, runtime

QUEUE = "payments"
PROCESS_TASK = "payments.process"


@shared_task(name=PROCESS_TASK, acks_late=True, ignore_result=True)
def process_payments(payment_ids: list[str]) -> int:
    """Give the simulated bank's answer to due processing payments (sent by the sweeper for lost answers)."""
    return bank_schedule.process_payments(runtime.database(), runtime.bank_config(), payment_ids)


@shared_task(
    name="payments.handle_refund_events",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=1,
    retry_backoff_max=5,
    max_retries=120,
)
def handle_refund_events(events: str | list[dict]) -> int:
    """Apply ``refund.processed`` events (a JSON array as text, or a list) to the payments' ``amount_refunded``."""
    return refund_sync.apply_refund_events(runtime.database(), events_from_task(events))
