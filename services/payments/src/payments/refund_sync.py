"""Refunds reach ``amount_refunded``: the refunds service's events applied once per refund id.

The ``payments.handle_refund_events`` task applies them as the refunds relay sends them; the
reconciler (``gateway_common.reconcile``) picks up, from the refunds service's published view,
the ``refund.processed`` events whose task was lost, and applies them the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import psycopg
from gateway_common import reconcile
from gateway_common.db import Database
from gateway_common.ids import is_id
from gateway_common.reconcile import ReconcileConfig, Source

from payments import repository

log = logging.getLogger(__name__)

SOURCE = Source("refunds.refund_events", repository.REFUND_NOT_APPLIED)
# A refund's task normally lands well within min_age; a day back covers a worker down for hours.
RECONCILE = ReconcileConfig(min_age_seconds=10.0, max_age_seconds=24 * 3600.0)


def apply_refund_events(db: Database, events: Iterable[dict]) -> int:
    """Add processed refunds to their payments' ``amount_refunded``, once per refund id."""
    applied = 0
    for event in events:
        if not isinstance(event, dict) or event.get("event") != "refund.processed":
            continue
        refund = (event.get("data") or {}).get("refund") or {}
        try:
            refund_id, payment_id, amount = str(refund["id"]), str(refund["payment_id"]), int(refund["amount"])
            merchant_id = str(refund.get("merchant_id") or event["merchant_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring malformed refund event %s", event.get("id"))
            continue
        if amount <= 0 or not is_id(payment_id, "pay_"):
            log.warning("ignoring refund event %s: amount or payment id out of range", event.get("id"))
            continue
        try:
            with db.transaction() as tx:
                if repository.apply_refund(tx, refund_id, payment_id, merchant_id, amount):
                    applied += 1
        except (psycopg.DataError, psycopg.IntegrityError, ValueError):
            # A poison event (bad ids, over-refund) is logged and skipped, not retried forever.
            log.error("refund %s cannot be applied to payment %s", refund_id, payment_id)
    return applied


def reconciler(db: Database, rc: ReconcileConfig = RECONCILE) -> reconcile.Reconciler:
    """Return the reconciler that applies ``refund.processed`` events whose Celery task was lost."""
    return reconcile.Reconciler(db, [SOURCE], lambda found: apply_refund_events(db, [payload for _, payload in found]), rc)
