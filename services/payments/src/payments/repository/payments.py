"""SQL for payments: insert them with their events, read, list, capture, count."""

from __future__ import annotations

import functools
from typing import NamedTuple

from gateway_common.db import Transaction
from gateway_common.events import Outbox, event_values, insert_events_sql
from gateway_common.pagination import Listing, Page, read_page

from payments.models import Instrument, Payment
from payments.repository._shared import _PAYMENT_COLUMNS, _created_between

# The schema's outbox: events written in the same transaction as the change they describe.
OUTBOX = Outbox("payments")
# One of a merchant's payments, columns in Payment's field order (so ``Payment(*row)`` works).
GET_PAYMENT_SQL = f"SELECT {_PAYMENT_COLUMNS} FROM payments.payments WHERE id = %s AND merchant_id = %s"  # noqa: S608


def _payment(row: dict | None) -> Payment | None:
    return Payment(**row) if row else None


class NewPayment(NamedTuple):
    """A payment to insert: its row, its instrument, its events and the order it pays (if any)."""

    payment: Payment
    instrument: Instrument
    events: list[dict]
    order_ref: str | None = None


# The stored columns of a new payment, in the order of ``_payment_values``, with their types.
_PAYMENT_COLUMN_TYPES = (
    ("id", "text"),
    ("merchant_id", "uuid"),
    ("order_id", "text"),
    ("order_ref", "text"),
    ("amount", "bigint"),
    ("currency", "text"),
    ("method", "text"),
    ("vpa", "text"),
    ("card_network", "text"),
    ("card_last4", "text"),
    ("card_expiry_month", "smallint"),
    ("card_expiry_year", "smallint"),
    ("card_holder_name", "text"),
    ("bank_outcome", "text"),
    ("bank_error_code", "text"),
    ("bank_delay_ms", "int"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("auth_status", "text"),
    ("auth_expires_at", "timestamptz"),
)
# Due for the bank at once; a payment waiting for its shopper's authentication is due (to time
# out) when its window closes: next_run_at's parameter is the payment's auth_expires_at.
_PAYMENT_ROW = f"({', '.join(f'%s::{t}' for _, t in _PAYMENT_COLUMN_TYPES)}, coalesce(%s::timestamptz, now()))"


@functools.lru_cache(maxsize=128)
def _insert_payments_sql(count: int) -> str:
    """The INSERT of ``count`` new payments (values: ``_payment_values`` then ``auth_expires_at`` each)."""
    return (
        f"INSERT INTO payments.payments ({', '.join(c for c, _ in _PAYMENT_COLUMN_TYPES)}, next_run_at) "  # noqa: S608
        f"VALUES {', '.join([_PAYMENT_ROW] * count)}"
    )


def _payment_values(new: NewPayment) -> tuple:
    """The stored columns of a new payment, in ``_PAYMENT_COLUMN_TYPES`` order."""
    payment, instrument = new.payment, new.instrument
    return (
        payment.id,
        payment.merchant_id,
        payment.order_id,
        new.order_ref,
        payment.amount,
        payment.currency,
        payment.method,
        instrument.vpa,
        instrument.card_network,
        instrument.card_last4,
        instrument.card_expiry_month,
        instrument.card_expiry_year,
        instrument.card_holder_name,
        instrument.bank_outcome,
        instrument.bank_error_code,
        instrument.bank_delay_ms,
        payment.created_at,
        payment.updated_at,
        payment.auth_status,
        payment.auth_expires_at,
    )


def insert_payments(tx: Transaction, rows: list[NewPayment]) -> None:
    """Insert pending payments (due for the bank, or for their authentication's timeout) and their events in one round trip.

    Two statements in one ``Transaction.script``: in ``Database.autocommit()`` (the group commit)
    PostgreSQL runs them as one implicit transaction, so the payments and their outbox rows commit
    together or not at all.
    """
    values: list = []
    for new in rows:
        values += (*_payment_values(new), new.payment.auth_expires_at)
    events = [e for new in rows for e in new.events]
    query = _insert_payments_sql(len(rows))
    if events:
        query = f"{query}; {insert_events_sql('payments', len(events))}"
        values += event_values(events)
    tx.script(query, values)


def get_payment(tx: Transaction, merchant_id: str, payment_id: str, *, for_update: bool = False) -> Payment | None:
    """Load one of a merchant's payments (optionally locking it)."""
    lock = " FOR UPDATE" if for_update else ""
    tx.cursor.execute(
        f"SELECT {_PAYMENT_COLUMNS} FROM payments.payments WHERE id = %s AND merchant_id = %s{lock}",  # noqa: S608
        (payment_id, merchant_id),
    )
    return _payment(tx.cursor.fetchone())


def get_payment_by_id(tx: Transaction, payment_id: str) -> Payment | None:
    """Load a payment by id alone (public checkout status)."""
    tx.cursor.execute(f"SELECT {_PAYMENT_COLUMNS} FROM payments.payments WHERE id = %s", (payment_id,))  # noqa: S608
    return _payment(tx.cursor.fetchone())


PAYMENTS = Listing("payments.payments", _PAYMENT_COLUMNS, ("created_at", "id"), "payment")


def list_payments(tx: Transaction, merchant_id: str, query: dict) -> Page:
    """Return a filtered page of a merchant's payments, newest first.

    ``query``: limit, offset or a cursor, and the filters status, method, q (a payment or order id).
    Each filter is served by an index of (merchant_id, ..., created_at, id): see migration 0012.
    """
    params: dict = {"merchant": merchant_id}
    where = [w for w in (_created_between(query, params),) if w]
    for name in ("status", "method"):
        if query.get(name):
            where.append(f"{name} = %({name})s")
            params[name] = query[name]
    if query.get("q"):
        where.append("(id = %(q)s OR order_id = %(q)s)")
        params["q"] = query["q"]
    page = read_page(tx, PAYMENTS, "merchant_id = %(merchant)s", params, query, " AND ".join(where))
    page.items = [Payment(**row) for row in page.items]
    return page


def mark_captured(tx: Transaction, payment_id: str) -> Payment:
    """Mark a (locked, successful) payment captured."""
    tx.cursor.execute(
        "UPDATE payments.payments SET captured = true, captured_at = now(), updated_at = now() "  # noqa: S608
        f"WHERE id = %s RETURNING {_PAYMENT_COLUMNS}",
        (payment_id,),
    )
    return Payment(**tx.cursor.fetchone())


def totals_by_day(tx: Transaction, merchant_id: str) -> list[dict]:
    """Return per-UTC-day, per-status counts and amounts of all of a merchant's payments.

    Read from ``payments.daily_totals``, which triggers keep in step with every write (migration
    0010): the cost grows with the days the merchant has traded, not with its payments.
    """
    tx.cursor.execute(
        "SELECT day, status, sum(n)::bigint AS n, sum(amount)::bigint AS amount FROM payments.daily_totals "
        "WHERE merchant_id = %s GROUP BY 1, 2 HAVING sum(n) <> 0",
        (merchant_id,),
    )
    return [dict(row) for row in tx.cursor.fetchall()]


def count_by_status(tx: Transaction) -> dict[str, int]:
    """Count every payment by status (from the counters the table's triggers keep, not a scan)."""
    tx.cursor.execute("SELECT status, sum(n)::bigint AS n FROM payments.status_counts GROUP BY status")
    return {row["status"]: row["n"] for row in tx.cursor.fetchall()}
