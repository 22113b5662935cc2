-- The bank sweeper finds the due payments of merchants with a test clock (auth.merchant_clocks)
-- by merchant, each against its own offset; merchants on real time keep payments_due_idx.
CREATE INDEX payments_merchant_due_idx ON payments.payments (merchant_id, next_run_at) WHERE next_run_at IS NOT NULL;
