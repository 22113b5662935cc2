"""SQL for the payments schema; returns dataclasses.

One module per capability (orders, payments, the bank's schedule, the refund sync, what is read of
the merchants); ``repository.<name>`` keeps naming each of them from here.
"""

from payments.repository.merchants import clock_offset, encrypted_api_secret, merchant_for_key
from payments.repository.orders import (
    ORDERS,
    count_order_payments,
    get_order,
    get_public_order,
    insert_order,
    list_orders,
    lock_orders_paid,
    mark_order_attempted,
    mark_orders_paid,
    order_merchant,
)
from payments.repository.payments import (
    GET_PAYMENT_SQL,
    OUTBOX,
    PAYMENTS,
    NewPayment,
    count_by_status,
    get_payment,
    get_payment_by_id,
    insert_payments,
    list_payments,
    mark_captured,
    totals_by_day,
)
from payments.repository.refunds import REFUND_NOT_APPLIED, apply_refund
from payments.repository.schedule import (
    claim_due,
    complete,
    expired_authentications,
    lease,
    lock_answerable,
    lock_for_authentication,
    not_yet_due,
    overdue_seconds,
    reschedule_authentications,
    start_processing,
    unschedule,
)

__all__ = [
    "GET_PAYMENT_SQL",
    "ORDERS",
    "OUTBOX",
    "PAYMENTS",
    "REFUND_NOT_APPLIED",
    "NewPayment",
    "apply_refund",
    "claim_due",
    "clock_offset",
    "complete",
    "count_by_status",
    "count_order_payments",
    "encrypted_api_secret",
    "expired_authentications",
    "get_order",
    "get_payment",
    "get_payment_by_id",
    "get_public_order",
    "insert_order",
    "insert_payments",
    "lease",
    "list_orders",
    "list_payments",
    "lock_answerable",
    "lock_for_authentication",
    "lock_orders_paid",
    "mark_captured",
    "mark_order_attempted",
    "mark_orders_paid",
    "merchant_for_key",
    "not_yet_due",
    "order_merchant",
    "overdue_seconds",
    "reschedule_authentications",
    "start_processing",
    "totals_by_day",
    "unschedule",
]
