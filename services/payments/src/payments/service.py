"""Payments use cases and their transaction boundaries."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2.errors
import psycopg2.extras
from gateway_common.db import Database, Transaction, retry_on_conflict
from gateway_common.errors import AuthenticationError, BadRequestError
from gateway_common.events import Outbox, make_event
from gateway_common.ids import is_id, new_id

from payments import bank, repository
from payments.errors import InvalidCardError, NotCapturableError, OrderNotFoundError, PaymentNotFoundError
from payments.models import (
    Instrument,
    Method,
    Order,
    Page,
    Payment,
    PaymentStatus,
    PublicOrder,
    can_capture,
    one_success_per_order,
)
from payments.schemas import payment_body
from payments.validators import (
    card_digits,
    card_network,
    normalize_card_number,
    validate_cvv,
    validate_expiry,
    validate_vpa,
)

log = logging.getLogger(__name__)

OUTBOX = Outbox("payments")
SWEEP_BATCH = 500
LEASE_SECONDS = 10
# Payments whose answers are due within the same 100 ms are answered as one batch.
DUE_STEP_MS = 100
# A scheduled answer that hit an error (database down) is tried again this much later.
ANSWER_RETRY_SECONDS = 1.0
DEFAULT_CURRENCY = "INR"


def _now() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def single_statement(db: Database) -> Iterator[Transaction]:
    """Run one query string in autocommit (joining an open transaction if there is one).

    A query string is atomic on its own, so hot paths skip the BEGIN and COMMIT round trips.
    """
    if db.current() is not None:
        with db.transaction() as tx:
            yield tx
        return
    with db.connection() as conn:
        conn.autocommit = True
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                yield Transaction(cursor)
        finally:
            if not conn.closed:
                conn.autocommit = False


# ---------------------------------------------------------------- orders


def create_order(db: Database, merchant_id: str, data: dict) -> Order:
    """Create an order for a merchant."""
    with db.transaction() as tx:
        return repository.insert_order(
            tx,
            new_id("order_"),
            merchant_id,
            data["amount"],
            data.get("currency") or DEFAULT_CURRENCY,
            data.get("receipt"),
            data.get("notes") or {},
        )


def get_order(db: Database, merchant_id: str, order_id: str) -> Order:
    """Return one of the merchant's orders or raise 404."""
    if not is_id(order_id, "order_"):
        raise OrderNotFoundError()
    with single_statement(db) as tx:
        order = repository.get_order(tx, merchant_id, order_id)
    if order is None:
        raise OrderNotFoundError()
    return order


def list_orders(db: Database, merchant_id: str, limit: int, offset: int) -> Page:
    """Return a page of the merchant's orders, newest first."""
    with db.transaction() as tx:
        items, total = repository.list_orders(tx, merchant_id, limit, offset)
    return Page(items, total, limit, offset)


def get_public_order(db: Database, order_id: str) -> PublicOrder:
    """Return what the checkout page may see of an order."""
    if not is_id(order_id, "order_"):
        raise OrderNotFoundError()
    with single_statement(db) as tx:
        order = repository.get_public_order(tx, order_id)
    if order is None:
        raise OrderNotFoundError()
    return order


# ---------------------------------------------------------------- payments


def build_instrument(data: dict) -> Instrument:
    """Validate the payment method's details and keep only what may be stored."""
    method = Method(data["method"])
    if method == Method.UPI:
        vpa = validate_vpa(data.get("vpa"))
        outcome, code = bank.preset_outcome(method, vpa=vpa)
        return Instrument(method=method, vpa=vpa, bank_outcome=outcome, bank_error_code=code)
    card = data.get("card")
    if not isinstance(card, dict):
        raise InvalidCardError("card is required for method card")
    number = normalize_card_number(card.get("number"))
    validate_cvv(card.get("cvv"))
    month, year = validate_expiry(card.get("expiry_month"), card.get("expiry_year"), _now().date())
    outcome, code = bank.preset_outcome(method, card_number=number)
    holder = card.get("holder_name")
    return Instrument(
        method=method,
        card_network=card_network(number),
        card_last4=number[-4:],
        card_expiry_month=month,
        card_expiry_year=year,
        card_holder_name=holder.strip() if isinstance(holder, str) and holder.strip() else None,
        bank_outcome=outcome,
        bank_error_code=code,
    )


# The card fields an Idempotency-Key fingerprint may see as they are; the number only through a keyed
# digest, the CVV (sensitive authentication data, kept in no form after authorisation) and anything
# else never.
_FINGERPRINT_CARD_FIELDS = ("expiry_month", "expiry_year", "holder_name")


def idempotency_form(body: Any, keyed: Callable[[str], str]) -> Any:
    """Return what identifies a payment request for Idempotency-Key: no card number, no CVV."""
    if not isinstance(body, dict) or not isinstance(body.get("card"), dict):
        return body
    card = body["card"]
    form = {name: card[name] for name in _FINGERPRINT_CARD_FIELDS if name in card}
    number = card.get("number")
    if isinstance(number, str):
        digits = card_digits(number)
        form.update(number_hmac=keyed(digits), last4=digits[-4:], network=card_network(digits))
    elif number is not None:
        form["number_hmac"] = keyed(json.dumps(number))
    return {**body, "card": form}


def create_payment(db: Database, merchant_id: str, data: dict, *, require_order: bool = False) -> Payment:
    """Create a pending payment; the bank sweeper picks it up within ~100 ms."""
    instrument = build_instrument(data)
    order_id = data.get("order_id")
    # Only a well-formed order id can name an order; anything else is the merchant's reference.
    order = None
    if order_id and is_id(order_id, "order_"):
        with single_statement(db) as tx:
            order = repository.get_order(tx, merchant_id, order_id)
    if order is not None:
        if "amount" in data and data["amount"] != order.amount:
            raise BadRequestError("amount must equal the order amount")
        if "currency" in data and data["currency"] != order.currency:
            raise BadRequestError("currency must equal the order currency")
        if order.status == "paid":
            raise BadRequestError("Order has already been paid")
        amount, currency = order.amount, order.currency
    elif require_order or "amount" not in data:
        raise OrderNotFoundError()
    else:
        amount, currency = data["amount"], data.get("currency") or DEFAULT_CURRENCY
    now = _now()
    payment = Payment(
        id=new_id("pay_"),
        merchant_id=merchant_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        method=str(instrument.method),
        status=str(PaymentStatus.PENDING),
        vpa=instrument.vpa,
        card_network=instrument.card_network,
        card_last4=instrument.card_last4,
        error_code=None,
        error_description=None,
        captured=False,
        captured_at=None,
        amount_refunded=0,
        created_at=now,
        updated_at=now,
    )
    event_data = {"payment": payment_body(payment)}
    # The same envelopes Outbox.add writes, sent with the payment in one round trip.
    events = [
        make_event("payment.created", merchant_id, event_data),
        make_event("payment.pending", merchant_id, event_data),
    ]
    if order is None and db.current() is None:
        _writer(db).write(payment, instrument, events)
        return payment
    with single_statement(db) as tx:
        repository.insert_payment(
            tx,
            payment,
            order.id if order else None,
            instrument,
            events,
            mark_order_attempted=order is not None and order.status == "created",
        )
    return payment


class _PendingInsert:
    """One request's payment, waiting to be written with others."""

    __slots__ = ("done", "error", "events", "instrument", "payment", "wake")

    def __init__(self, payment: Payment, instrument: Instrument, events: list[dict]) -> None:
        self.payment = payment
        self.instrument = instrument
        self.events = events
        self.wake = threading.Event()
        self.done = False
        self.error: BaseException | None = None


class PaymentWriter:
    """Writes the payments that concurrent requests of one process create, many per round trip.

    Group commit: the first request to arrive writes its payment at once; requests arriving while
    a write is in flight queue up, and when it has committed the first of them writes all queued
    payments (and their events) in one statement and one commit, then wakes the others. Nobody
    waits for a timer, so a lone request costs what it did before; under load PostgreSQL does one
    commit per batch instead of one per payment. Each request is answered only after the commit
    that holds its payment.

    A batch the database rejects as a whole for one payment's data (a constraint, say) is written
    again one payment at a time, so only that payment's request fails. Any other error (the
    database unreachable) is every request's answer, as it would have been for each alone.
    """

    MAX_BATCH = 64

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._queue: list[_PendingInsert] = []
        self._writing = False

    def write(self, payment: Payment, instrument: Instrument, events: list[dict]) -> None:
        """Return once the payment and its events are committed; raise what the write raised."""
        item = _PendingInsert(payment, instrument, events)
        with self._lock:
            self._queue.append(item)
            lead = not self._writing
            self._writing = True
        if not lead:
            item.wake.wait()
        if not item.done:
            # The writer now (the first to arrive, or handed the turn): the item is first in line.
            self._write_next_batch()
        if item.error is not None:
            raise item.error

    def _write_next_batch(self) -> None:
        with self._lock:
            batch = self._queue[: self.MAX_BATCH]
            del self._queue[: self.MAX_BATCH]
        try:
            self._write(batch)
        except BaseException as error:  # a signal or timeout in the writing thread: fail them all
            for item in batch:
                item.error = item.error or error
            raise
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._writing = successor is not None
            for item in batch:
                item.done = True
                item.wake.set()
            if successor is not None:
                successor.wake.set()

    def _write(self, batch: list[_PendingInsert]) -> None:
        try:
            with single_statement(self.db) as tx:
                repository.insert_payments(tx, [(i.payment, i.instrument, i.events) for i in batch])
        except (psycopg2.DataError, psycopg2.IntegrityError) as error:
            # The statement failed, so nothing of the batch was written: find whose data it was.
            if len(batch) == 1:
                batch[0].error = error
                return
            for item in batch:
                self._write([item])
        except Exception as error:
            for item in batch:
                item.error = error


# By id(db): the writer holds its Database, so the id is not reused while the entry lives.
_writers: dict[int, tuple[int, PaymentWriter]] = {}
_writers_lock = threading.Lock()


def _writer(db: Database) -> PaymentWriter:
    """This process's writer for ``db`` (made again after a fork: a lock may have been held)."""
    pid = os.getpid()
    found = _writers.get(id(db))
    if found is None or found[0] != pid:
        with _writers_lock:
            found = _writers.get(id(db))
            if found is None or found[0] != pid:
                found = (pid, PaymentWriter(db))
                _writers[id(db)] = found
    return found[1]


def merchant_for_public_key(db: Database, api_key: str | None) -> str:
    """Return the merchant of a public API key (checkout), or raise 401."""
    if not api_key:
        raise AuthenticationError("An API key is required (X-Api-Key header or body key)")
    if len(api_key) > 128 or "\x00" in api_key:
        raise AuthenticationError("Invalid API key")
    with single_statement(db) as tx:
        merchant = repository.merchant_for_key(tx, api_key)
    if merchant is None:
        raise AuthenticationError("Invalid API key")
    return merchant


def _fetch_one(db: Database, query: str, params: tuple) -> tuple | None:
    """Run one read-only query in autocommit with a plain (tuple) cursor; return its first row.

    The hot reads skip RealDictCursor, whose per-column Python bookkeeping costs more than the query.
    """
    if db.current() is not None:
        with db.transaction() as tx:
            tx.cursor.execute(query, params)
            row = tx.cursor.fetchone()
            return tuple(row.values()) if row is not None else None
    with db.connection() as conn:
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchone()
        finally:
            if not conn.closed:
                conn.autocommit = False


class PreparedQuery:
    """A read-only query run as a prepared statement (``repository.Prepared``) in autocommit.

    GET /payments/{id} is a primary-key lookup whose planning (five candidate indexes) costs the
    server more than running it: with the plan cached, pgbench ran this lookup at 75k tps against
    33k when it was planned on every execution. A plan made while the table was tiny can be a
    sequential scan (seen: 9 ms per GET at 23k payments), so each connection prepares the query
    again every ``REPLAN_SECONDS``: a stale plan lives that long at most.
    Inside an open transaction it runs as a plain query in that transaction.
    """

    REPLAN_SECONDS = 30.0

    def __init__(self, name: str, arg_types: tuple[str, ...], query: str) -> None:
        self.query = query
        self.statement = repository.Prepared(name, query, arg_types)

    def fetch_one(self, db: Database, params: tuple) -> tuple | None:
        """Return the first row (a tuple) or None."""
        if db.current() is not None:
            return _fetch_one(db, self.query, params)
        with db.connection() as conn:
            conn.autocommit = True
            try:
                with conn.cursor() as cursor:
                    cursor.execute(self.statement.sql(cursor, self.REPLAN_SECONDS), params)
                    return cursor.fetchone()
            finally:
                if not conn.closed:
                    conn.autocommit = False


_GET_PAYMENT = PreparedQuery("payments_get_payment", ("text", "uuid"), repository.GET_PAYMENT_SQL)


def get_payment(db: Database, merchant_id: str, payment_id: str) -> Payment:
    """Return one of the merchant's payments or raise 404."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    row = _GET_PAYMENT.fetch_one(db, (payment_id, merchant_id))
    if row is None:
        raise PaymentNotFoundError()
    return Payment(*row)


def get_public_payment(db: Database, payment_id: str) -> Payment:
    """Return a payment by id for the checkout page."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with single_statement(db) as tx:
        payment = repository.get_payment_by_id(tx, payment_id)
    if payment is None:
        raise PaymentNotFoundError()
    return payment


def list_payments(db: Database, merchant_id: str, query: dict) -> Page:
    """Return a filtered page of the merchant's payments, newest first."""
    limit, offset = query["limit"], query["offset"]
    with db.transaction() as tx:
        items, total = repository.list_payments(
            tx, merchant_id, limit, offset, query.get("status"), query.get("method"), query.get("q")
        )
    return Page(items, total, limit, offset)


def capture_payment(db: Database, merchant_id: str, payment_id: str, data: dict) -> Payment:
    """Capture a successful payment, once (the row lock serialises concurrent captures)."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with db.transaction() as tx:
        payment = repository.get_payment(tx, merchant_id, payment_id, for_update=True)
        if payment is None:
            raise PaymentNotFoundError()
        if not can_capture(payment):
            raise NotCapturableError()
        if "amount" in data and data["amount"] != payment.amount:
            raise BadRequestError("Capture amount must equal the payment amount")
        if "currency" in data and data["currency"] != payment.currency:
            raise BadRequestError("Capture currency must equal the payment currency")
        captured = repository.mark_captured(tx, payment.id)
        OUTBOX.add(tx, "payment.captured", merchant_id, {"payment": payment_body(captured)})
    return captured


def payment_stats(db: Database, merchant_id: str, days: int) -> dict:
    """Summarise the merchant's payments: all-time totals and the last ``days`` UTC days."""
    today = _now().date()
    since = today - timedelta(days=days - 1)
    with single_statement(db) as tx:
        rows = repository.totals_by_day(tx, merchant_id)
    total = success = failed = success_amount = 0
    daily = {since + timedelta(days=i): {"count": 0, "success": 0, "failed": 0, "amount": 0} for i in range(days)}
    for row in rows:
        n, status = row["n"], row["status"]
        total += n
        if status == "success":
            success += n
            success_amount += int(row["amount"])
        elif status == "failed":
            failed += n
        day = daily.get(row["day"])
        if day is None:
            continue
        day["count"] += n
        if status == "success":
            day["success"] += n
            day["amount"] += int(row["amount"])
        elif status == "failed":
            day["failed"] += n
    return {
        "total_transactions": total,
        "successful_transactions": success,
        "failed_transactions": failed,
        "total_amount": success_amount,
        "success_rate": _rate(success, failed),
        "currency": DEFAULT_CURRENCY,
        "daily": [
            {
                "date": day.isoformat(),
                "count": v["count"],
                "success_count": v["success"],
                "amount": v["amount"],
                "success_rate": _rate(v["success"], v["failed"]),
            }
            for day, v in daily.items()
        ],
    }


def _rate(success: int, failed: int) -> float:
    final = success + failed
    return round(success * 100 / final, 2) if final else 0


def job_counts(db: Database) -> dict[str, int]:
    """Count payments by processing state for the test endpoint."""
    with single_statement(db) as tx:
        counts = repository.count_by_status(tx)
    return {
        "pending": counts.get("pending", 0),
        "processing": counts.get("processing", 0),
        "completed": counts.get("success", 0),
        "failed": counts.get("failed", 0),
    }


# ---------------------------------------------------------------- the simulated bank


def sweep_due(db: Database, config: bank.BankConfig, dispatch: Callable[[list[str], float], None]) -> int:
    """Move due pending payments to the bank and schedule each batch's answer for when it is due.

    A pending payment becomes ``processing`` with ``bank_due_at = now() + delay`` and
    ``next_run_at`` a lease after that; after the commit its answer goes to ``dispatch`` with a
    countdown to ``bank_due_at`` (the worker keeps it in an ``AnswerSchedule``). If that answer
    is lost (the process died), the row comes due ``LEASE_SECONDS`` later and is sent again at
    once (countdown 0), under a new lease. Returns how many rows were claimed, so the loop runs
    again at once while there is work.
    """
    with db.transaction() as tx:
        rows = repository.claim_due(tx, SWEEP_BATCH)
        if not rows:
            return 0
        pending = [r["id"] for r in rows if r["status"] == PaymentStatus.PENDING]
        answerable = [r["id"] for r in rows if r["status"] == PaymentStatus.PROCESSING]
        stale = [r["id"] for r in rows if r["status"] not in (PaymentStatus.PENDING, PaymentStatus.PROCESSING)]
        if pending:
            delays = [bank.delay_ms(config, pid) for pid in pending]
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
        with single_statement(db) as tx:
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
        )
        paid_orders = [
            r["order_ref"]
            for r, d in zip(rows, decisions, strict=True)
            if r["order_ref"] and d.status == PaymentStatus.SUCCESS
        ]
        repository.mark_orders_paid(tx, paid_orders)
        OUTBOX.write(
            tx,
            [
                make_event(
                    "payment.success" if p.status == PaymentStatus.SUCCESS else "payment.failed",
                    p.merchant_id,
                    {"payment": payment_body(p)},
                )
                for p in sorted(completed, key=lambda p: p.id)
            ],
        )
    return len(completed)
