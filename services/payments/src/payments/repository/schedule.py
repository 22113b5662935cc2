"""SQL for the bank's schedule: claim due payments, hand them to the bank, lease, answer, authenticate."""

from __future__ import annotations

from gateway_common.db import Transaction

from payments.models import Payment
from payments.repository._shared import _P_PAYMENT_COLUMNS


def claim_due(tx: Transaction, limit: int, lease_seconds: float) -> list[dict]:
    """Lock payments whose ``next_run_at`` has come on their merchant's clock, skipping rows others hold.

    Schedule columns are on the merchant's clock (``auth.merchant_now``). Merchants on real time
    are found through payments_due_idx as before; the few with a test clock through
    payments_merchant_due_idx, each against its own offset. A clocked merchant's processing
    payment whose answer the clock has reached while it is still under its first lease is due
    too: its answer waits in a worker's schedule for the real countdown, so it is given now.
    """
    tx.cursor.execute(
        "WITH on_time AS (SELECT id, status, auth_status, bank_delay_ms FROM payments.payments "
        "  WHERE next_run_at <= now() ORDER BY next_run_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
        "clocked AS (SELECT p.id, p.status, p.auth_status, p.bank_delay_ms "
        "  FROM auth.merchant_clocks c JOIN payments.payments p ON p.merchant_id = c.merchant_id "
        "  WHERE p.next_run_at <= now() + c.offset_seconds * interval '1 second' + %(lease)s * interval '1 second' "
        "    AND (p.next_run_at <= now() + c.offset_seconds * interval '1 second' OR (p.status = 'processing' "
        "      AND p.bank_due_at <= now() + c.offset_seconds * interval '1 second' "
        "      AND p.next_run_at = p.bank_due_at + %(lease)s * interval '1 second')) "
        "  ORDER BY p.next_run_at LIMIT %(limit)s FOR UPDATE OF p SKIP LOCKED) "
        "SELECT * FROM on_time UNION SELECT * FROM clocked",
        {"limit": limit, "lease": lease_seconds},
    )
    return [dict(row) for row in tx.cursor.fetchall()]


def overdue_seconds(tx: Transaction) -> float:
    """How far past its ``next_run_at`` the most overdue payment of the schedule is (0 when none is late)."""
    tx.cursor.execute(
        "SELECT GREATEST(extract(epoch FROM now() - min(next_run_at)), 0)::float8 AS late "
        "FROM payments.payments WHERE next_run_at IS NOT NULL"
    )
    return float(tx.cursor.fetchone()["late"] or 0.0)


def start_processing(tx: Transaction, ids: list[str], delays_ms: list[int], lease_seconds: int) -> None:
    """Hand pending payments to the bank: processing, due after each one's delay.

    Their answer is scheduled when they start (see ``bank_schedule.sweep_due``), so they come due
    again for the sweeper only ``lease_seconds`` after that, in case the answer is lost. Both times
    are on the merchant's clock.
    """
    tx.cursor.execute(
        "UPDATE payments.payments AS p SET status = 'processing', "
        "bank_due_at = auth.merchant_now(p.merchant_id) + d.ms * interval '1 millisecond', "
        "next_run_at = auth.merchant_now(p.merchant_id) + d.ms * interval '1 millisecond' + %s * interval '1 second', "
        "updated_at = now() "
        "FROM unnest(%b::text[], %b::int[]) AS d(id, ms) WHERE p.id = d.id AND p.status = 'pending' "
        "AND p.auth_status IS DISTINCT FROM 'pending'",
        (lease_seconds, ids, delays_ms),
    )


def not_yet_due(tx: Transaction, ids: list[str]) -> list[tuple[str, float]]:
    """Processing payments among ``ids`` whose answer is not due yet: (id, seconds until due)."""
    tx.cursor.execute(
        "SELECT id, wait FROM (SELECT id, status, extract(epoch FROM bank_due_at - "
        "(auth.merchant_now(merchant_id) + (clock_timestamp() - now())))::float8 AS wait FROM payments.payments "
        "WHERE id = ANY(%s)) AS p WHERE status = 'processing' AND wait > 0",
        (ids,),
    )
    return [(row["id"], max(0.0, row["wait"])) for row in tx.cursor.fetchall()]


def lease(tx: Transaction, ids: list[str], seconds: int) -> None:
    """Push ``next_run_at`` out while a task completes these payments (re-sent if it dies)."""
    tx.cursor.execute(
        "UPDATE payments.payments SET next_run_at = auth.merchant_now(merchant_id) + %s * interval '1 second' "
        "WHERE id = ANY(%s)",
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
        "WHERE id = ANY(%s) AND status = 'processing' AND bank_due_at <= auth.merchant_now(merchant_id) "
        "ORDER BY id FOR UPDATE",
        (ids,),
    )
    return sorted((dict(row) for row in tx.cursor.fetchall()), key=lambda row: (row["created_at"], row["id"]))


def complete(
    tx: Transaction,
    ids: list[str],
    statuses: list[str],
    codes: list,
    descriptions: list,
    *,
    from_status: str = "processing",
    auth_statuses: list | None = None,
) -> list[Payment]:
    """Record the final answers of (locked) payments in ``from_status`` and take them off the schedule.

    ``auth_statuses``: the shopper's answers of payments that awaited authentication (None keeps each as it is),
    written in the same statement as the answer (a failed authentication and a failed payment go together).
    """
    auth = auth_statuses if auth_statuses is not None else [None] * len(ids)
    tx.cursor.execute(
        "UPDATE payments.payments AS p SET status = d.status, error_code = d.code, error_description = d.description, "  # noqa: S608
        "auth_status = coalesce(d.auth, p.auth_status), next_run_at = NULL, updated_at = now() "
        "FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[]) AS d(id, status, code, description, auth) "
        f"WHERE p.id = d.id AND p.status = %s RETURNING {_P_PAYMENT_COLUMNS}",
        (ids, statuses, codes, descriptions, auth, from_status),
    )
    return [Payment(**row) for row in tx.cursor.fetchall()]


# ---------------------------------------------------------------- 3-D Secure


def lock_for_authentication(tx: Transaction, payment_id: str, merchant_id: str | None) -> dict | None:
    """Lock a payment (one of ``merchant_id``'s when given) to answer its authentication.

    ``open`` tells whether its window is still open by the merchant's clock, the one its schedule
    keeps (``now()`` is the transaction's start, so the answer written later agrees with it).
    """
    tx.cursor.execute(
        "SELECT id, merchant_id::text AS merchant_id, order_id, method, order_ref, bank_outcome, bank_error_code, "
        "status, auth_status, auth_expires_at > auth.merchant_now(merchant_id) AS open, created_at FROM payments.payments "
        "WHERE id = %s AND (%s::uuid IS NULL OR merchant_id = %s::uuid) FOR UPDATE",
        (payment_id, merchant_id, merchant_id),
    )
    row = tx.cursor.fetchone()
    return dict(row) if row else None


def expired_authentications(tx: Transaction, ids: list[str]) -> list[dict]:
    """Among (locked) payments, those awaiting authentication whose window has closed: id, order_ref, created_at."""
    tx.cursor.execute(
        "SELECT id, order_ref, created_at FROM payments.payments "
        "WHERE id = ANY(%s) AND status = 'pending' AND auth_status = 'pending' "
        "AND auth_expires_at <= auth.merchant_now(merchant_id)",
        (ids,),
    )
    return [dict(row) for row in tx.cursor.fetchall()]


def reschedule_authentications(tx: Transaction, ids: list[str]) -> None:
    """Make payments awaiting authentication due again when their window closes."""
    tx.cursor.execute(
        "UPDATE payments.payments SET next_run_at = auth_expires_at "
        "WHERE id = ANY(%s) AND status = 'pending' AND auth_status = 'pending'",
        (ids,),
    )
