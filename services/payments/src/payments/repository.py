"""SQL for the payments schema; returns dataclasses."""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import NamedTuple

import psycopg2.errors
import psycopg2.extensions
from gateway_common.db import Transaction
from gateway_common.events import EVENT_ARRAY_TYPES, Outbox, event_columns, insert_events_sql
from psycopg2.extras import Json

from payments.models import Instrument, Order, Payment, PublicOrder

# The schema's outbox: events written in the same transaction as the change they describe.
OUTBOX = Outbox("payments")

_ORDER_COLUMNS = (
    "id, merchant_id::text AS merchant_id, amount, currency, receipt, notes, status, created_at, updated_at"
)
_PAYMENT_COLUMNS = (
    "id, merchant_id::text AS merchant_id, order_id, amount, currency, method, status, vpa, card_network, "
    "card_last4, error_code, error_description, captured, captured_at, amount_refunded, created_at, updated_at"
)
_P_PAYMENT_COLUMNS = ", ".join(f"p.{c.strip()}" for c in _PAYMENT_COLUMNS.split(","))
# One of a merchant's payments, columns in Payment's field order (so ``Payment(*row)`` works).
GET_PAYMENT_SQL = f"SELECT {_PAYMENT_COLUMNS} FROM payments.payments WHERE id = %s AND merchant_id = %s"  # noqa: S608


def _order(row: dict | None) -> Order | None:
    return Order(**row) if row else None


def _payment(row: dict | None) -> Payment | None:
    return Payment(**row) if row else None


# ---------------------------------------------------------------- orders


def insert_order(
    tx: Transaction, order_id: str, merchant_id: str, amount: int, currency: str, receipt: str | None, notes: dict
) -> Order:
    """Insert an order and return it."""
    tx.cursor.execute(
        f"INSERT INTO payments.orders (id, merchant_id, amount, currency, receipt, notes) "  # noqa: S608
        f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_ORDER_COLUMNS}",
        (order_id, merchant_id, amount, currency, receipt, Json(notes)),
    )
    return Order(**tx.cursor.fetchone())


def get_order(tx: Transaction, merchant_id: str, order_id: str) -> Order | None:
    """Load one of a merchant's orders."""
    tx.cursor.execute(
        f"SELECT {_ORDER_COLUMNS} FROM payments.orders WHERE id = %s AND merchant_id = %s",  # noqa: S608
        (order_id, merchant_id),
    )
    return _order(tx.cursor.fetchone())


def list_orders(tx: Transaction, merchant_id: str, limit: int, offset: int) -> tuple[list[Order], int]:
    """Return a page of a merchant's orders, newest first, and how many there are."""
    tx.cursor.execute(
        f"SELECT {_ORDER_COLUMNS} FROM payments.orders WHERE merchant_id = %s "  # noqa: S608
        "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
        (merchant_id, limit, offset),
    )
    items = [Order(**row) for row in tx.cursor.fetchall()]
    tx.cursor.execute("SELECT count(*) AS n FROM payments.orders WHERE merchant_id = %s", (merchant_id,))
    return items, tx.cursor.fetchone()["n"]


def get_public_order(tx: Transaction, order_id: str) -> PublicOrder | None:
    """Load an order with its merchant's display name (nothing secret)."""
    tx.cursor.execute(
        "SELECT o.id, o.amount, o.currency, o.status, "
        "(SELECT pm.name FROM auth.public_merchants pm WHERE pm.merchant_id = o.merchant_id LIMIT 1) AS merchant_name "
        "FROM payments.orders o WHERE o.id = %s",
        (order_id,),
    )
    row = tx.cursor.fetchone()
    return PublicOrder(**row) if row else None


def mark_order_attempted(tx: Transaction, order_id: str) -> None:
    """Move an order from created to attempted (never backwards)."""
    tx.cursor.execute(
        "UPDATE payments.orders SET status = 'attempted', updated_at = now() WHERE id = %s AND status = 'created'",
        (order_id,),
    )


def lock_orders_paid(tx: Transaction, order_ids: list[str]) -> set[str]:
    """Lock the given orders (in id order) and return those already paid."""
    if not order_ids:
        return set()
    tx.cursor.execute(
        "SELECT id, status FROM payments.orders WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
        (sorted(set(order_ids)),),
    )
    return {row["id"] for row in tx.cursor.fetchall() if row["status"] == "paid"}


def mark_orders_paid(tx: Transaction, order_ids: list[str]) -> None:
    """Mark orders paid (a payment of theirs succeeded)."""
    if order_ids:
        tx.cursor.execute(
            "UPDATE payments.orders SET status = 'paid', updated_at = now() WHERE id = ANY(%s) AND status <> 'paid'",
            (sorted(set(order_ids)),),
        )


def merchant_for_key(tx: Transaction, api_key: str) -> str | None:
    """Return the merchant owning an active public API key."""
    tx.cursor.execute(
        "SELECT merchant_id::text AS merchant_id FROM auth.public_merchants WHERE api_key = %s LIMIT 1", (api_key,)
    )
    row = tx.cursor.fetchone()
    return row["merchant_id"] if row else None


# ---------------------------------------------------------------- payments


class Prepared:
    """One statement PREPAREd per pooled connection; ``sql(cursor)`` returns the EXECUTE to run.

    Parsing and planning the hot statements costs the server about as much as running them;
    prepared, they are parsed once per connection. ``replan_seconds`` prepares the statement
    again after that long, so a plan cached while a table was tiny does not live on. Autocommit
    only: PREPARE is not undone by a rollback, and an error inside a transaction would abort it.
    """

    def __init__(
        self, name: str, query: str, arg_types: tuple[str, ...] = (), *, cast_args: tuple[str, ...] = ()
    ) -> None:
        count = query.count("%s")
        types = f" ({', '.join(arg_types)})" if arg_types else ""
        self.name = name
        self.prepare = f"PREPARE {name}{types} AS {query % tuple(f'${i}' for i in range(1, count + 1))}"
        # EXECUTE coerces its arguments like an assignment, which turns no text[] into uuid[] or
        # smallint[] (psycopg2 sends a list as ARRAY[...]): such arguments are cast explicitly.
        args = [f"%s::{t}" for t in cast_args] if cast_args else ["%s"] * count
        self.execute = f"EXECUTE {name} ({', '.join(args)})"
        self.prepared_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def sql(self, cursor: psycopg2.extensions.cursor, replan_seconds: float | None = None) -> str:
        """Prepare on the cursor's connection if needed (or due again); return the EXECUTE."""
        conn = cursor.connection
        now = time.monotonic()
        prepared_at = self.prepared_at.get(conn)
        if prepared_at is None or (replan_seconds is not None and now - prepared_at > replan_seconds):
            if prepared_at is not None:
                cursor.execute(f"DEALLOCATE {self.name}")
            with contextlib.suppress(psycopg2.errors.DuplicatePreparedStatement):
                cursor.execute(self.prepare)
            self.prepared_at[conn] = now
        return self.execute


class NewPayment(NamedTuple):
    """A payment to insert: its row, its instrument, its events and the order it pays (if any)."""

    payment: Payment
    instrument: Instrument
    events: list[dict]
    order_ref: str | None = None


# Many payments (and their events) in one statement: one array per column, unnested in order.
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
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_PAYMENT_ARRAY_TYPES = tuple(f"{t}[]" for _, t in _PAYMENT_COLUMN_TYPES)
_INSERT_PAYMENTS_SQL = (
    f"INSERT INTO payments.payments ({', '.join(c for c, _ in _PAYMENT_COLUMN_TYPES)}, next_run_at) "  # noqa: S608
    f"SELECT *, now() FROM unnest({', '.join(f'%s::{t}' for t in _PAYMENT_ARRAY_TYPES)})"
)
_INSERT_EVENTS_SQL = insert_events_sql("payments")
_INSERT_PAYMENTS = Prepared("payments_insert_payments", _INSERT_PAYMENTS_SQL, cast_args=_PAYMENT_ARRAY_TYPES)
_INSERT_EVENTS = Prepared("payments_insert_events", _INSERT_EVENTS_SQL, cast_args=EVENT_ARRAY_TYPES)


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
        payment.created_at,
        payment.updated_at,
    )


def insert_payments(tx: Transaction, rows: list[NewPayment]) -> None:
    """Insert pending payments (due for the bank at once) and their events, in one round trip.

    One query string of two statements, which PostgreSQL runs atomically even in autocommit mode:
    the payments and their outbox rows commit together or not at all.
    """
    columns: list[list] = [[] for _ in _PAYMENT_COLUMN_TYPES]
    for new in rows:
        for column, value in zip(columns, _payment_values(new), strict=True):
            column.append(value)
    events = [e for new in rows for e in new.events]
    prepare = tx.cursor.connection.autocommit
    payments_sql = _INSERT_PAYMENTS.sql(tx.cursor) if prepare else _INSERT_PAYMENTS_SQL
    events_sql = _INSERT_EVENTS.sql(tx.cursor) if prepare else _INSERT_EVENTS_SQL
    tx.cursor.execute(f"{payments_sql}; {events_sql}", [*columns, *event_columns(events)])


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


def list_payments(
    tx: Transaction,
    merchant_id: str,
    limit: int,
    offset: int,
    status: str | None = None,
    method: str | None = None,
    q: str | None = None,
) -> tuple[list[Payment], int]:
    """Return a filtered page of a merchant's payments, newest first, and the filtered total."""
    where = ["merchant_id = %s"]
    params: list = [merchant_id]
    if status:
        where.append("status = %s")
        params.append(status)
    if method:
        where.append("method = %s")
        params.append(method)
    if q:
        where.append("(id = %s OR order_id = %s)")
        params.extend([q, q])
    condition = " AND ".join(where)  # only literals from this function; values stay parameters
    tx.cursor.execute(
        f"SELECT {_PAYMENT_COLUMNS} FROM payments.payments WHERE {condition} "  # noqa: S608
        "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
        (*params, limit, offset),
    )
    items = [Payment(**row) for row in tx.cursor.fetchall()]
    if offset == 0 and len(items) < limit:
        return items, len(items)
    tx.cursor.execute(f"SELECT count(*) AS n FROM payments.payments WHERE {condition}", params)  # noqa: S608
    return items, tx.cursor.fetchone()["n"]


def mark_captured(tx: Transaction, payment_id: str) -> Payment:
    """Mark a (locked, successful) payment captured."""
    tx.cursor.execute(
        "UPDATE payments.payments SET captured = true, captured_at = now(), updated_at = now() "  # noqa: S608
        f"WHERE id = %s RETURNING {_PAYMENT_COLUMNS}",
        (payment_id,),
    )
    return Payment(**tx.cursor.fetchone())


def totals_by_day(tx: Transaction, merchant_id: str) -> list[dict]:
    """Return per-UTC-day, per-status counts and amounts of all of a merchant's payments (one scan)."""
    tx.cursor.execute(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, status, count(*) AS n, "
        "coalesce(sum(amount), 0) AS amount FROM payments.payments WHERE merchant_id = %s GROUP BY 1, 2",
        (merchant_id,),
    )
    return [dict(row) for row in tx.cursor.fetchall()]


def count_by_status(tx: Transaction) -> dict[str, int]:
    """Count every payment by status (from the counters the table's triggers keep, not a scan)."""
    tx.cursor.execute("SELECT status, sum(n)::bigint AS n FROM payments.status_counts GROUP BY status")
    return {row["status"]: row["n"] for row in tx.cursor.fetchall()}


# ---------------------------------------------------------------- the bank's schedule


def claim_due(tx: Transaction, limit: int) -> list[dict]:
    """Lock payments whose ``next_run_at`` has come, skipping rows others hold."""
    tx.cursor.execute(
        "SELECT id, status FROM payments.payments WHERE next_run_at <= now() "
        "ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [dict(row) for row in tx.cursor.fetchall()]


def start_processing(tx: Transaction, ids: list[str], delays_ms: list[int], lease_seconds: int) -> None:
    """Hand pending payments to the bank: processing, due after each one's delay.

    Their answer is scheduled when they start (see ``bank_schedule.sweep_due``), so they come due
    again for the sweeper only ``lease_seconds`` after that, in case the answer is lost.
    """
    tx.cursor.execute(
        "UPDATE payments.payments AS p SET status = 'processing', "
        "bank_due_at = now() + d.ms * interval '1 millisecond', "
        "next_run_at = now() + d.ms * interval '1 millisecond' + %s * interval '1 second', updated_at = now() "
        "FROM unnest(%s::text[], %s::int[]) AS d(id, ms) WHERE p.id = d.id AND p.status = 'pending'",
        (lease_seconds, ids, delays_ms),
    )


def not_yet_due(tx: Transaction, ids: list[str]) -> list[tuple[str, float]]:
    """Processing payments among ``ids`` whose answer is not due yet: (id, seconds until due)."""
    tx.cursor.execute(
        "SELECT id, extract(epoch FROM bank_due_at - clock_timestamp())::float8 AS wait FROM payments.payments "
        "WHERE id = ANY(%s) AND status = 'processing' AND bank_due_at > clock_timestamp()",
        (ids,),
    )
    return [(row["id"], max(0.0, row["wait"])) for row in tx.cursor.fetchall()]


def lease(tx: Transaction, ids: list[str], seconds: int) -> None:
    """Push ``next_run_at`` out while a task completes these payments (re-sent if it dies)."""
    tx.cursor.execute(
        "UPDATE payments.payments SET next_run_at = now() + %s * interval '1 second' WHERE id = ANY(%s)",
        (seconds, ids),
    )


def unschedule(tx: Transaction, ids: list[str]) -> None:
    """Take payments off the bank's schedule."""
    tx.cursor.execute("UPDATE payments.payments SET next_run_at = NULL WHERE id = ANY(%s)", (ids,))


def lock_answerable(tx: Transaction, ids: list[str]) -> list[dict]:
    """Lock the given payments that are processing and whose bank answer is due (locked in id order).

    Returned oldest first (created_at, then id): where attempts on one order compete, the earliest wins.
    """
    tx.cursor.execute(
        "SELECT id, method, order_ref, bank_outcome, bank_error_code, created_at FROM payments.payments "
        "WHERE id = ANY(%s) AND status = 'processing' AND bank_due_at <= now() ORDER BY id FOR UPDATE",
        (ids,),
    )
    return sorted((dict(row) for row in tx.cursor.fetchall()), key=lambda row: (row["created_at"], row["id"]))


def complete(tx: Transaction, ids: list[str], statuses: list[str], codes: list, descriptions: list) -> list[Payment]:
    """Record the bank's answers and take the payments off the schedule."""
    tx.cursor.execute(
        "UPDATE payments.payments AS p SET status = d.status, error_code = d.code, error_description = d.description, "  # noqa: S608
        "next_run_at = NULL, updated_at = now() "
        "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS d(id, status, code, description) "
        f"WHERE p.id = d.id AND p.status = 'processing' RETURNING {_P_PAYMENT_COLUMNS}",
        (ids, statuses, codes, descriptions),
    )
    return [Payment(**row) for row in tx.cursor.fetchall()]


# For the refund reconciler (gateway_common.reconcile): a processed refund not yet in amount_refunded.
REFUND_NOT_APPLIED = (
    "ev.event_type = 'refund.processed' AND NOT EXISTS (SELECT 1 FROM payments.applied_refunds a "
    "WHERE a.refund_id = ev.payload -> 'data' -> 'refund' ->> 'id')"
)


def apply_refund(tx: Transaction, refund_id: str, payment_id: str, merchant_id: str, amount: int) -> bool:
    """Add a processed refund to ``amount_refunded`` once per refund id; return whether applied."""
    tx.cursor.execute(
        "SELECT id FROM payments.payments WHERE id = %s AND merchant_id = %s FOR UPDATE", (payment_id, merchant_id)
    )
    if tx.cursor.fetchone() is None:
        return False
    tx.cursor.execute(
        "INSERT INTO payments.applied_refunds (refund_id, payment_id, amount) VALUES (%s, %s, %s) "
        "ON CONFLICT (refund_id) DO NOTHING RETURNING refund_id",
        (refund_id, payment_id, amount),
    )
    if tx.cursor.fetchone() is None:
        return False
    tx.cursor.execute(
        "UPDATE payments.payments SET amount_refunded = amount_refunded + %s, updated_at = now() WHERE id = %s",
        (amount, payment_id),
    )
    return True
