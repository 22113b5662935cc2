"""SQL for the refunds schema (and the payments view it may read); returns dataclasses."""

from __future__ import annotations

from datetime import datetime

from gateway_common.db import Transaction
from gateway_common.pagination import Listing, Page, read_page

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


def payment_currencies(tx: Transaction, merchant_id: str, payment_ids: list[str]) -> dict[str, str]:
    """Return the currency of each of a merchant's payments (from the payments view)."""
    if not payment_ids:
        return {}
    tx.cursor.execute(
        "SELECT id, currency FROM payments.payments_for_refunds WHERE merchant_id = %s AND id = ANY(%s)",
        (merchant_id, list(payment_ids)),
    )
    return {row["id"]: row["currency"] for row in tx.cursor.fetchall()}


def refunded_total(tx: Transaction, payment_id: str) -> int:
    """Return how much of a payment is refunded or being refunded (0 before its first refund)."""
    tx.cursor.execute("SELECT refunded_total FROM refunds.payment_balances WHERE payment_id = %s", (payment_id,))
    row = tx.cursor.fetchone()
    return row["refunded_total"] if row else 0


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
    """Insert a pending refund due ``delay_ms`` from now on its merchant's clock."""
    tx.cursor.execute(
        "INSERT INTO refunds.refunds (id, payment_id, merchant_id, amount, reason, due_at, next_run_at) "  # noqa: S608
        "VALUES (%(id)s, %(payment_id)s, %(merchant_id)s, %(amount)s, %(reason)s, "
        "auth.merchant_now(%(merchant_id)s) + make_interval(secs => %(delay)s), "
        "auth.merchant_now(%(merchant_id)s) + make_interval(secs => %(delay)s)) "
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


REFUNDS = Listing("refunds.refunds", _REFUND_COLUMNS, ("created_at", "id"), "refund")


def list_refunds(tx: Transaction, merchant_id: str, query: dict, payment_id: str | None = None) -> Page:
    """Return a page of a merchant's refunds (optionally of one payment), newest first.

    Served by refunds_merchant_created_idx, or refunds_payment_created_idx for one payment.
    """
    scope = "merchant_id = %(merchant_id)s"
    params = {"merchant_id": merchant_id}
    if payment_id is not None:
        scope += " AND payment_id = %(payment_id)s"
        params["payment_id"] = payment_id
    for key, op in (("created_from", ">="), ("created_to", "<=")):
        if query.get(key) is not None:
            scope += f" AND created_at {op} %({key})s"
            params[key] = query[key]
    page = read_page(tx, REFUNDS, scope, params, query)
    page.items = [_refund(row) for row in page.items]
    return page


def claim_due(tx: Transaction, limit: int, lease_seconds: float) -> list[str]:
    """Lease refunds due on their merchant's clock (skipping rows others hold) and return their ids.

    Merchants on real time are found through refunds_due_idx; the few with a test clock
    (auth.merchant_clocks) through refunds_merchant_due_idx, each against its own offset.
    """
    tx.cursor.execute(
        "WITH on_time AS (SELECT id FROM refunds.refunds WHERE next_run_at <= now() "
        "  ORDER BY next_run_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
        "clocked AS (SELECT r.id FROM auth.merchant_clocks c JOIN refunds.refunds r ON r.merchant_id = c.merchant_id "
        "  WHERE r.next_run_at <= now() + c.offset_seconds * interval '1 second' "
        "  ORDER BY r.next_run_at LIMIT %(limit)s FOR UPDATE OF r SKIP LOCKED) "
        "UPDATE refunds.refunds SET next_run_at = auth.merchant_now(merchant_id) + make_interval(secs => %(lease)s) "
        "WHERE id = ANY(ARRAY(SELECT id FROM on_time UNION SELECT id FROM clocked)) RETURNING id",
        {"limit": limit, "lease": lease_seconds},
    )
    return [row["id"] for row in tx.cursor.fetchall()]


def backlog(tx: Transaction) -> tuple[int, float]:
    """Pending refunds, and how far past its ``next_run_at`` the most overdue one is (0 when none is late)."""
    tx.cursor.execute(
        "SELECT count(*) AS n, GREATEST(extract(epoch FROM now() - min(next_run_at)), 0)::float8 AS late "
        "FROM refunds.refunds WHERE next_run_at IS NOT NULL"
    )
    row = tx.cursor.fetchone()
    return int(row["n"]), float(row["late"] or 0.0)


def lock_due_pending(tx: Transaction, refund_ids: list[str]) -> list[Refund]:
    """Lock those of ``refund_ids`` that are pending and due; skip rows another worker holds."""
    tx.cursor.execute(
        f"SELECT {_REFUND_COLUMNS} FROM refunds.refunds "  # noqa: S608
        "WHERE id = ANY(%s) AND status = 'pending' AND due_at <= auth.merchant_now(merchant_id) "
        "ORDER BY id FOR UPDATE SKIP LOCKED",
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
        "FROM unnest(%b::text[], %b::timestamptz[]) AS v (id, processed_at) "
        f"WHERE r.id = v.id AND r.status = 'pending' RETURNING {_qualified('r')}",
        ([r.id for r in refunds], [r.processed_at for r in refunds]),
    )
    return sorted((_refund(row) for row in tx.cursor.fetchall()), key=lambda r: r.id)


def _qualified(alias: str) -> str:
    return (
        f"{alias}.id, {alias}.payment_id, {alias}.merchant_id::text AS merchant_id, {alias}.amount, "
        f"{alias}.reason, {alias}.status, {alias}.created_at, {alias}.processed_at"
    )
