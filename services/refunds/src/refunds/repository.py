"""SQL for the refunds schema (and the payments view it may read); returns dataclasses."""

from __future__ import annotations

from datetime import datetime

from gateway_common.db import Transaction

from refunds.models import Balance, Payment, Refund, RefundStatus

_REFUND_COLUMNS = "id, payment_id, merchant_id::text AS merchant_id, amount, reason, status, created_at, processed_at"


def _refund(row: dict) -> Refund:
    return Refund(**{**row, "status": RefundStatus(row["status"])})


def get_payment(tx: Transaction, payment_id: str, merchant_id: str) -> Payment | None:
    """Load a merchant's payment from the view the payments service publishes."""
    tx.cursor.execute(
        "SELECT id, merchant_id::text AS merchant_id, amount, currency, status "
        "FROM payments.payments_for_refunds WHERE id = %s AND merchant_id = %s",
        (payment_id, merchant_id),
    )
    row = tx.cursor.fetchone()
    return Payment(**row) if row else None


def ensure_balance(tx: Transaction, payment: Payment) -> None:
    """Create the payment's refund balance row if it does not exist yet."""
    tx.cursor.execute(
        "INSERT INTO refunds.payment_balances (payment_id, merchant_id, amount) VALUES (%s, %s, %s) "
        "ON CONFLICT (payment_id) DO NOTHING",
        (payment.id, payment.merchant_id, payment.amount),
    )


def add_to_balance(tx: Transaction, payment_id: str, amount: int) -> Balance | None:
    """Lock the payment's balance and count ``amount`` against it if it fits; None if it does not.

    The row lock (held to the end of the transaction) serialises refunds of one
    payment; after waiting for it the condition is evaluated on the newest row, and
    the table's CHECK refuses an over-refund even if this condition were wrong.
    """
    tx.cursor.execute(
        "UPDATE refunds.payment_balances SET refunded_total = refunded_total + %(amount)s, updated_at = now() "
        "WHERE payment_id = %(payment_id)s AND refunded_total + %(amount)s <= amount "
        "RETURNING payment_id, amount, refunded_total",
        {"amount": amount, "payment_id": payment_id},
    )
    row = tx.cursor.fetchone()
    return Balance(**row) if row else None


def insert_refund(
    tx: Transaction, refund_id: str, payment: Payment, amount: int, reason: str | None, delay_ms: int
) -> Refund:
    """Insert a pending refund due ``delay_ms`` from now."""
    tx.cursor.execute(
        "INSERT INTO refunds.refunds (id, payment_id, merchant_id, amount, reason, due_at, next_run_at) "  # noqa: S608
        "VALUES (%(id)s, %(payment_id)s, %(merchant_id)s, %(amount)s, %(reason)s, "
        "now() + make_interval(secs => %(delay)s), now() + make_interval(secs => %(delay)s)) "
        f"RETURNING {_REFUND_COLUMNS}",
        {
            "id": refund_id,
            "payment_id": payment.id,
            "merchant_id": payment.merchant_id,
            "amount": amount,
            "reason": reason,
            "delay": delay_ms / 1000.0,
        },
    )
    return _refund(tx.cursor.fetchone())


def get_refund(tx: Transaction, refund_id: str, merchant_id: str) -> Refund | None:
    """Load a merchant's refund."""
    tx.cursor.execute(
        f"SELECT {_REFUND_COLUMNS} FROM refunds.refunds WHERE id = %s AND merchant_id = %s",  # noqa: S608
        (refund_id, merchant_id),
    )
    row = tx.cursor.fetchone()
    return _refund(row) if row else None


def list_refunds(
    tx: Transaction, merchant_id: str, limit: int, offset: int, payment_id: str | None = None
) -> tuple[list[Refund], int]:
    """Return a page of a merchant's refunds (optionally of one payment), newest first, and the total."""
    where = "merchant_id = %(merchant_id)s"
    if payment_id is not None:
        where += " AND payment_id = %(payment_id)s"
    params = {"merchant_id": merchant_id, "payment_id": payment_id, "limit": limit, "offset": offset}
    tx.cursor.execute(f"SELECT count(*) AS total FROM refunds.refunds WHERE {where}", params)  # noqa: S608
    total = tx.cursor.fetchone()["total"]
    tx.cursor.execute(
        f"SELECT {_REFUND_COLUMNS} FROM refunds.refunds WHERE {where} "  # noqa: S608 - fixed fragments only
        "ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    return [_refund(row) for row in tx.cursor.fetchall()], total


def claim_due(tx: Transaction, limit: int, lease_seconds: float) -> list[str]:
    """Lease due pending refunds (skipping rows others hold) and return their ids."""
    tx.cursor.execute(
        "UPDATE refunds.refunds SET next_run_at = now() + make_interval(secs => %s) "
        "WHERE id IN (SELECT id FROM refunds.refunds WHERE next_run_at <= now() "
        "ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
        (lease_seconds, limit),
    )
    return [row["id"] for row in tx.cursor.fetchall()]


def lock_due_pending(tx: Transaction, refund_ids: list[str]) -> list[Refund]:
    """Lock those of ``refund_ids`` that are pending and due; skip rows another worker holds."""
    tx.cursor.execute(
        f"SELECT {_REFUND_COLUMNS} FROM refunds.refunds "  # noqa: S608
        "WHERE id = ANY(%s) AND status = 'pending' AND due_at <= now() ORDER BY id FOR UPDATE SKIP LOCKED",
        (refund_ids,),
    )
    return [_refund(row) for row in tx.cursor.fetchall()]


def now(tx: Transaction) -> datetime:
    """Return the database's clock (the one ``created_at`` and ``due_at`` come from)."""
    tx.cursor.execute("SELECT now() AS now")
    return tx.cursor.fetchone()["now"]


def save_processed(tx: Transaction, refunds: list[Refund]) -> list[Refund]:
    """Store refunds as processed (status, processed_at) and end their schedule."""
    tx.cursor.execute(
        "UPDATE refunds.refunds AS r SET status = 'processed', processed_at = v.processed_at, next_run_at = NULL "  # noqa: S608
        "FROM unnest(%s::text[], %s::timestamptz[]) AS v (id, processed_at) "
        f"WHERE r.id = v.id AND r.status = 'pending' RETURNING {_qualified('r')}",
        ([r.id for r in refunds], [r.processed_at for r in refunds]),
    )
    return sorted((_refund(row) for row in tx.cursor.fetchall()), key=lambda r: r.id)


def _qualified(alias: str) -> str:
    return (
        f"{alias}.id, {alias}.payment_id, {alias}.merchant_id::text AS merchant_id, {alias}.amount, "
        f"{alias}.reason, {alias}.status, {alias}.created_at, {alias}.processed_at"
    )
