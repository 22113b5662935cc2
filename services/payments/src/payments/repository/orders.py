"""SQL for orders: create, read, list, count their attempts, mark them attempted and paid."""

from __future__ import annotations

from gateway_common.db import Transaction
from gateway_common.pagination import Listing, Page, read_page
from psycopg.types.json import Jsonb

from payments.models import Order, PublicOrder
from payments.repository._shared import _ORDER_COLUMNS, _created_between


def _order(row: dict | None) -> Order | None:
    return Order(**row) if row else None


def insert_order(
    tx: Transaction, order_id: str, merchant_id: str, amount: int, currency: str, receipt: str | None, notes: dict
) -> Order:
    """Insert an order and return it."""
    tx.cursor.execute(
        f"INSERT INTO payments.orders (id, merchant_id, amount, currency, receipt, notes) "  # noqa: S608
        f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_ORDER_COLUMNS}",
        (order_id, merchant_id, amount, currency, receipt, Jsonb(notes)),
    )
    return Order(**tx.cursor.fetchone())


def get_order(tx: Transaction, merchant_id: str, order_id: str) -> Order | None:
    """Load one of a merchant's orders."""
    tx.cursor.execute(
        f"SELECT {_ORDER_COLUMNS} FROM payments.orders WHERE id = %s AND merchant_id = %s",  # noqa: S608
        (order_id, merchant_id),
    )
    return _order(tx.cursor.fetchone())

ORDERS = Listing("payments.orders", _ORDER_COLUMNS, ("created_at", "id"), "order")


def list_orders(tx: Transaction, merchant_id: str, query: dict) -> Page:
    """Return a page of a merchant's orders, newest first (``query``: limit, offset or a cursor)."""
    params: dict = {"merchant": merchant_id}
    page = read_page(tx, ORDERS, "merchant_id = %(merchant)s", params, query, _created_between(query, params))
    page.items = [Order(**row) for row in page.items]
    return page


def count_order_payments(tx: Transaction, merchant_id: str, order_ids: list[str]) -> dict[str, int]:
    """Return how many payments each of a merchant's orders has (its attempts)."""
    if not order_ids:
        return {}
    tx.cursor.execute(
        "SELECT order_id, count(*) AS n FROM payments.payments WHERE merchant_id = %s AND order_id = ANY(%s) "
        "GROUP BY order_id",
        (merchant_id, list(order_ids)),
    )
    return {row["order_id"]: row["n"] for row in tx.cursor.fetchall()}


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


def order_merchant(tx: Transaction, order_id: str) -> str | None:
    """Return the merchant of an order (the checkout's link names only the order)."""
    tx.cursor.execute("SELECT merchant_id::text AS merchant_id FROM payments.orders WHERE id = %s", (order_id,))
    row = tx.cursor.fetchone()
    return row["merchant_id"] if row else None


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


def mark_orders_paid(tx: Transaction, order_ids: list[str]) -> list[Order]:
    """Mark orders paid (a payment of theirs succeeded); return those this made paid."""
    if not order_ids:
        return []
    tx.cursor.execute(
        "UPDATE payments.orders SET status = 'paid', updated_at = now() WHERE id = ANY(%s) AND status <> 'paid' "  # noqa: S608
        f"RETURNING {_ORDER_COLUMNS}",
        (sorted(set(order_ids)),),
    )
    return sorted((Order(**row) for row in tx.cursor.fetchall()), key=lambda order: order.id)
