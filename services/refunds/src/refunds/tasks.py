"""Celery tasks of the refunds worker (thin: load by id, call service)."""

from __future__ import annotations

from celery import Celery
from gateway_common.db import Database

from refunds import service

PROCESS_TASK = "refunds.process"
QUEUE = "refunds"


def register_tasks(app: Celery, db: Database) -> None:
    """Register the refunds tasks on ``app``, working against ``db``."""

    @app.task(name=PROCESS_TASK, acks_late=True, ignore_result=True)
    def process_refunds(refund_ids: list[str]) -> int:
        """Mark these due refunds processed (idempotent)."""
        return service.process_refunds(db, list(refund_ids))
