"""The columns the repository's modules share and the creation window of its lists."""

from __future__ import annotations

_ORDER_COLUMNS = (
    "id, merchant_id::text AS merchant_id, amount, currency, receipt, notes, status, created_at, updated_at"
)
_PAYMENT_COLUMNS = (
    "id, merchant_id::text AS merchant_id, order_id, amount, currency, method, status, vpa, card_network, "
    "card_last4, error_code, error_description, captured, captured_at, amount_refunded, created_at, updated_at, "
    "auth_status, auth_expires_at"
)
_P_PAYMENT_COLUMNS = ", ".join(f"p.{c.strip()}" for c in _PAYMENT_COLUMNS.split(","))


def _created_between(query: dict, params: dict) -> str:
    """The condition of an optional creation window (``created_from`` / ``created_to`` in ``query``)."""
    where = []
    for key, op in (("created_from", ">="), ("created_to", "<=")):
        if query.get(key) is not None:
            where.append(f"created_at {op} %({key})s")
            params[key] = query[key]
    return " AND ".join(where)
