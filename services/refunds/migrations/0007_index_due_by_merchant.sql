-- The refunds sweeper finds the due refunds of merchants with a test clock (auth.merchant_clocks)
-- by merchant, each against its own offset; merchants on real time keep refunds_due_idx.
CREATE INDEX refunds_merchant_due_idx ON refunds.refunds (merchant_id, next_run_at) WHERE next_run_at IS NOT NULL;
