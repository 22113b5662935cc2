-- An order is paid at most once: at most one successful payment per order, by constraint.
-- Before this rule, concurrent attempts on one order could all succeed. Such history is repaired
-- first: the earliest success of each order stays, later ones become failed ORDER_ALREADY_PAID
-- (uncaptured: a failed payment cannot be captured), as the bank path now decides them.
WITH ranked AS (
    SELECT id, row_number() OVER (PARTITION BY order_ref ORDER BY updated_at, id) AS n
    FROM payments.payments
    WHERE order_ref IS NOT NULL AND status = 'success'
)
UPDATE payments.payments AS p
SET status = 'failed', captured = false, captured_at = NULL,
    error_code = 'ORDER_ALREADY_PAID',
    error_description = 'The order was already paid by another payment; this one was not charged',
    updated_at = now()
FROM ranked
WHERE p.id = ranked.id AND ranked.n > 1;

CREATE UNIQUE INDEX payments_one_success_per_order ON payments.payments (order_ref) WHERE status = 'success';
