"""Refund use cases: create, read, list, and process refunds; the due-work sweeper."""

from __future__ import annotations

from collections.abc import Callable

import psycopg.errors
from gateway_common.db import Database, Transaction
from gateway_common.events import Outbox
from gateway_common.ids import is_id, new_id
from gateway_common.pagination import Page

from refunds import models, repository
from refunds.errors import PaymentNotFoundError, RefundAmountExceededError, RefundNotFoundError
from refunds.models import Balance, Refund
from refunds.schemas import refund_resource

outbox = Outbox("refunds")

LEASE_SECONDS = 30.0
CLAIM_BATCH = 500
TASK_BATCH = 100


def _refundable_payment(tx: Transaction, merchant_id: str, payment_id: str) -> models.Payment:
    payment = repository.get_payment(tx, payment_id, merchant_id)
    if payment is None:
        raise PaymentNotFoundError()
    models.ensure_refundable(payment)
    return payment


def create_refund(
    db: Database, merchant_id: str, payment_id: str, amount: int, reason: str | None, delay_ms: int
) -> Refund:
    """Refund part or all of a successful payment, never beyond what is still refundable."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with db.transaction() as tx:
        payment = _refundable_payment(tx, merchant_id, payment_id)
        # Refuse at once what could never fit, without touching the balance row.
        models.ensure_available(amount, Balance(payment.id, payment.amount, 0))
        repository.ensure_balance(tx, payment)
        refund = repository.insert_refund(tx, new_id("rfnd_"), payment, amount, reason, delay_ms)
        outbox.add(tx, "refund.created", merchant_id, {"refund": refund_resource(refund)})
        # The balance row lock serialises refunds of one payment across threads and
        # processes. It is taken last, so it is held only for this update and the commit.
        try:
            balance = repository.add_to_balance(tx, payment.id, amount)
        except psycopg.errors.CheckViolation as exc:
            raise RefundAmountExceededError() from exc
        if balance is None:
            raise RefundAmountExceededError()
    return refund


def get_refund(db: Database, merchant_id: str, refund_id: str) -> Refund:
    """Return one of the merchant's refunds."""
    if not is_id(refund_id, "rfnd_"):
        raise RefundNotFoundError()
    with db.transaction() as tx:
        refund = repository.get_refund(tx, refund_id, merchant_id)
    if refund is None:
        raise RefundNotFoundError()
    return refund


def list_refunds(db: Database, merchant_id: str, query: dict) -> Page:
    """Return a page of the merchant's refunds, newest first (offset or a cursor)."""
    with db.transaction() as tx:
        return repository.list_refunds(tx, merchant_id, query)


def refundable_amount(db: Database, merchant_id: str, payment_id: str) -> int:
    """Return what is still refundable of one of the merchant's successful payments."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with db.transaction() as tx:
        payment = _refundable_payment(tx, merchant_id, payment_id)
        return payment.amount - repository.refunded_total(tx, payment_id)


def payment_currencies(db: Database, merchant_id: str, payment_ids: list[str]) -> dict[str, str]:
    """Return the currency of each of the merchant's payments."""
    with db.transaction() as tx:
        return repository.payment_currencies(tx, merchant_id, payment_ids)


def list_payment_refunds(db: Database, merchant_id: str, payment_id: str, query: dict) -> Page:
    """Return a page of one of the merchant's payments' refunds, newest first (offset or a cursor)."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with db.transaction() as tx:
        if repository.get_payment(tx, payment_id, merchant_id) is None:
            raise PaymentNotFoundError()
        return repository.list_refunds(tx, merchant_id, query, payment_id=payment_id)


def process_refunds(db: Database, refund_ids: list[str]) -> int:
    """Mark due pending refunds processed and announce them; repeats do nothing."""
    if not refund_ids:
        return 0
    with db.transaction() as tx:
        due = repository.lock_due_pending(tx, refund_ids)
        if not due:
            return 0
        at = repository.now(tx)
        done = repository.save_processed(tx, [models.mark_processed(refund, at) for refund in due])
        for refund in done:
            outbox.add(tx, "refund.processed", refund.merchant_id, {"refund": refund_resource(refund)})
    return len(done)


def sweep_due_refunds(
    db: Database,
    dispatch: Callable[[list[str]], None],
    *,
    lease_seconds: float = LEASE_SECONDS,
    limit: int = CLAIM_BATCH,
    batch: int = TASK_BATCH,
) -> int:
    """Lease due refunds and, after commit, hand them to ``dispatch`` in batches; return how many.

    A lost dispatch (crash after commit, broker down) only delays the refunds until
    the lease runs out and a sweeper claims them again.
    """
    with db.transaction() as tx:
        ids = repository.claim_due(tx, limit, lease_seconds)
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            tx.on_commit(lambda chunk=chunk: dispatch(chunk))
    return len(ids)


def refund_backlog(db: Database) -> tuple[int, float]:
    """Refunds still pending, and how late the most overdue one is in seconds (0 when none is)."""
    with db.autocommit() as tx:
        return repository.backlog(tx)
