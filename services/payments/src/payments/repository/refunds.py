"""SQL of the refund sync: which processed refunds are not applied yet, and applying one once."""

from __future__ import annotations

from gateway_common.db import Transaction

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
