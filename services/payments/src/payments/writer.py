"""Group commit: the payments that concurrent requests of one process create, written many per round trip."""

from __future__ import annotations

import os
import threading

import psycopg
from gateway_common.db import Database

from payments import repository
from payments.models import Instrument, Payment


class _PendingInsert:
    """One request's payment, waiting to be written with others."""

    __slots__ = ("done", "error", "new", "wake")

    def __init__(self, new: repository.NewPayment) -> None:
        self.new = new
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
        """Return once the payment (without an order) and its events are committed; raise what the write raised."""
        item = _PendingInsert(repository.NewPayment(payment, instrument, events))
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
            with self.db.autocommit() as tx:
                repository.insert_payments(tx, [item.new for item in batch])
        except (psycopg.DataError, psycopg.IntegrityError) as error:
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


def writer_for(db: Database) -> PaymentWriter:
    """Return this process's writer for ``db`` (made again after a fork: a lock may have been held)."""
    pid = os.getpid()
    found = _writers.get(id(db))
    if found is None or found[0] != pid:
        with _writers_lock:
            found = _writers.get(id(db))
            if found is None or found[0] != pid:
                found = (pid, PaymentWriter(db))
                _writers[id(db)] = found
    return found[1]
