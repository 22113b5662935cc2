"""The simulated bank's schedule: hand pending payments to the bank, give its answers when due."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from gateway_common.db import Database, Transaction, retry_on_conflict
from gateway_common.events import make_event

from payments import bank, repository
from payments.models import AuthStatus, BankDecision, Payment, PaymentStatus, one_success_per_order
from payments.schemas import order_body, payment_body

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
LEASE_SECONDS = 10
# Payments whose answers are due within the same 100 ms are answered as one batch.
DUE_STEP_MS = 100
# A scheduled answer that hit an error (database down) is tried again this much later.
ANSWER_RETRY_SECONDS = 1.0


def sweep_due(db: Database, config: bank.BankConfig, dispatch: Callable[[list[str], float], None]) -> int:
    """Move due pending payments to the bank and schedule each batch's answer for when it is due.

    A pending payment becomes ``processing`` with ``bank_due_at = now() + delay`` and
    ``next_run_at`` a lease after that; after the commit its answer goes to ``dispatch`` with a
    countdown to ``bank_due_at`` (the worker keeps it in an ``AnswerSchedule``). If that answer
    is lost (the process died), the row comes due ``LEASE_SECONDS`` later and is sent again at
    once (countdown 0), under a new lease. A payment still awaiting its shopper's authentication
    is due when its window closes, and fails then (``time_out_authentications``). Returns how many
    rows were claimed, so the loop runs again at once while there is work.
    """
    with db.transaction() as tx:
        rows = repository.claim_due(tx, SWEEP_BATCH, LEASE_SECONDS)
        if not rows:
            return 0
        # A payment awaiting its shopper's authentication comes due when its window closes: it fails.
        awaiting = [r["id"] for r in rows if _awaits_authentication(r)]
        if awaiting:
            time_out_authentications(tx, awaiting)
        pending_rows = [r for r in rows if r["status"] == PaymentStatus.PENDING and not _awaits_authentication(r)]
        pending = [r["id"] for r in pending_rows]
        answerable = [r["id"] for r in rows if r["status"] == PaymentStatus.PROCESSING]
        stale = [r["id"] for r in rows if r["status"] not in (PaymentStatus.PENDING, PaymentStatus.PROCESSING)]
        if pending:
            delays = [bank.delay_ms(config, r["id"], r["bank_delay_ms"]) for r in pending_rows]
            repository.start_processing(tx, pending, delays, LEASE_SECONDS)
            for countdown, ids in due_batches(pending, delays):
                tx.on_commit(lambda ids=ids, countdown=countdown: dispatch(ids, countdown))
        if answerable:
            # Their task was lost (or the worker restarted): a new lease, and the answer now.
            repository.lease(tx, answerable, LEASE_SECONDS)
            tx.on_commit(lambda: dispatch(answerable, 0.0))
        if stale:
            repository.unschedule(tx, stale)
    return len(rows)


def _awaits_authentication(row: dict) -> bool:
    return row["status"] == PaymentStatus.PENDING and row["auth_status"] == AuthStatus.PENDING


def due_batches(ids: list[str], delays_ms: list[int], step_ms: int = DUE_STEP_MS) -> list[tuple[float, list[str]]]:
    """Group payments by their delay rounded up to ``step_ms``: (countdown in seconds, ids).

    The countdown starts after the commit, so it never ends before ``bank_due_at`` (set from
    the transaction's start); rounding up lets one task answer many payments.
    """
    groups: dict[int, list[str]] = {}
    for payment_id, delay in zip(ids, delays_ms, strict=True):
        groups.setdefault(-(-delay // step_ms) * step_ms, []).append(payment_id)
    return [(due / 1000, group) for due, group in sorted(groups.items())]


class AnswerSchedule:
    """Bank answers this worker process will give when they are due: (due time, payment ids).

    Kept in memory, not in the broker: a Celery countdown task is held unacknowledged by the
    worker until it runs, and acknowledging it on a connection lost meanwhile (a Redis restart)
    stops the whole worker. What a dead process held comes back through the lease.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, list[str]]] = []
        self._count = itertools.count()
        self._lock = threading.Lock()

    def add(self, payment_ids: list[str], countdown: float) -> None:
        """Answer these payments ``countdown`` seconds from now."""
        with self._lock:
            heapq.heappush(self._heap, (self._clock() + countdown, next(self._count), list(payment_ids)))

    def take_due(self) -> list[list[str]]:
        """Remove and return the batches whose time has come."""
        now, due = self._clock(), []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap)[2])
        return due

    def __len__(self) -> int:
        with self._lock:
            return len(self._heap)

    def run_due(self, db: Database, config: bank.BankConfig) -> int:
        """Answer every due batch; a batch that fails is tried again in a second. Returns how many."""
        done = 0
        batches = self.take_due()
        for index, payment_ids in enumerate(batches):
            try:
                done += process_payments(db, config, payment_ids, dispatch=self.add)
            except Exception:
                for later in batches[index:]:
                    self.add(later, ANSWER_RETRY_SECONDS)
                raise
        return done


def process_payments(
    db: Database,
    config: bank.BankConfig,
    payment_ids: list[str],
    *,
    dispatch: Callable[[list[str], float], None] | None = None,
) -> int:
    """Give the bank's answer to processing payments that are due; idempotent.

    Payments the task reached before their ``bank_due_at`` (clocks apart, a task run early) are
    sent to ``dispatch`` again for when they are due; without it, their lease brings them back.
    """
    done = retry_on_conflict(lambda: _process_once(db, config, payment_ids))
    if done < len(payment_ids) and dispatch is not None:
        with db.autocommit() as tx:
            early = repository.not_yet_due(tx, list(payment_ids))
        if early:
            dispatch([payment_id for payment_id, _ in early], max(wait for _, wait in early))
    return done


def _process_once(db: Database, config: bank.BankConfig, payment_ids: list[str]) -> int:
    with db.transaction() as tx:
        rows = repository.lock_answerable(tx, list(payment_ids))
        if not rows:
            return 0
        decisions = [bank.decide(config, r["id"], r["method"], r["bank_outcome"], r["bank_error_code"]) for r in rows]
        completed = settle(tx, rows, decisions)
    return len(completed)


def settle(
    tx: Transaction,
    rows: list[dict],
    decisions: list[BankDecision],
    *,
    from_status: PaymentStatus = PaymentStatus.PROCESSING,
    auth_statuses: list[str] | None = None,
) -> list[Payment]:
    """Apply final decisions to locked payments (``id``, ``order_ref``; oldest attempt first): one success per order, events.

    The one way a payment becomes final: the bank's answers, the shopper's answer on the bank's page
    and an authentication that timed out all come through here.
    """
    # A success is applied under its order's row lock (payments, then orders, both in id order,
    # so two batches cannot deadlock); the unique index of one success per order stands behind it.
    succeeding = [r["order_ref"] for r, d in zip(rows, decisions, strict=True) if d.status == PaymentStatus.SUCCESS]
    paid = repository.lock_orders_paid(tx, [ref for ref in succeeding if ref])
    decisions = one_success_per_order([r["order_ref"] for r in rows], decisions, paid)
    completed = repository.complete(
        tx,
        [r["id"] for r in rows],
        [str(d.status) for d in decisions],
        [d.error_code for d in decisions],
        [d.error_description for d in decisions],
        from_status=str(from_status),
        auth_statuses=auth_statuses,
    )
    by_id = {p.id: p for p in completed}
    # The payment that pays each order (one_success_per_order left at most one per order).
    paying = {
        r["order_ref"]: by_id[r["id"]]
        for r, d in zip(rows, decisions, strict=True)
        if r["order_ref"] and d.status == PaymentStatus.SUCCESS and r["id"] in by_id
    }
    paid_now = repository.mark_orders_paid(tx, list(paying))
    repository.OUTBOX.write(
        tx,
        [
            make_event(
                "payment.success" if p.status == PaymentStatus.SUCCESS else "payment.failed",
                p.merchant_id,
                {"payment": payment_body(p)},
            )
            for p in sorted(completed, key=lambda p: p.id)
        ]
        # Written with the change that paid the order, so it is emitted exactly once per order.
        + [
            make_event("order.paid", order.merchant_id, {"order": order_body(order), "payment": payment_body(paying[order.id])})
            for order in paid_now
        ],
    )
    return completed


def time_out_authentications(tx: Transaction, payment_ids: list[str]) -> list[Payment]:
    """Fail the (locked) payments whose authentication window closed unanswered: AUTHENTICATION_TIMEOUT.

    One still inside its window (its schedule was moved) is made due again when the window closes.
    """
    expired = repository.expired_authentications(tx, payment_ids)
    early = sorted(set(payment_ids) - {r["id"] for r in expired})
    if early:
        repository.reschedule_authentications(tx, early)
    if not expired:
        return []
    for row in expired:
        log.info("payment %s failed: its shopper did not authenticate in time (AUTHENTICATION_TIMEOUT)", row["id"])
    timeout = bank.failure("AUTHENTICATION_TIMEOUT")
    return settle(
        tx,
        expired,
        [timeout] * len(expired),
        from_status=PaymentStatus.PENDING,
        auth_statuses=[str(AuthStatus.TIMED_OUT)] * len(expired),
    )


def backlog(db: Database) -> dict[tuple[str, ...], float]:
    """Payments waiting for the bank by status: ``pending`` (not handed over yet), ``processing`` (awaiting its answer)."""
    with db.autocommit() as tx:
        counts = repository.count_by_status(tx)
    return {(str(status),): counts.get(str(status), 0) for status in (PaymentStatus.PENDING, PaymentStatus.PROCESSING)}


def overdue_seconds(db: Database) -> float:
    """How late the schedule's most overdue payment is: a hand-over or answer past its time (a lost answer waits its lease)."""
    with db.autocommit() as tx:
        return repository.overdue_seconds(tx)
