-- 3-D Secure: a card that needs the shopper's authentication (4000000000003220) waits in 'pending'
-- with auth_status 'pending' until the mock bank page answers, or until auth_expires_at, when the
-- bank's sweeper (next_run_at, the same durable schedule) fails it with AUTHENTICATION_TIMEOUT.
-- NULL auth_status: the payment needed no authentication.
ALTER TABLE payments.payments
    ADD COLUMN auth_status TEXT CHECK (auth_status IN ('pending', 'passed', 'failed', 'cancelled', 'timed_out')),
    ADD COLUMN auth_expires_at TIMESTAMPTZ,
    ADD CONSTRAINT payments_auth_window CHECK ((auth_status IS NULL) = (auth_expires_at IS NULL)),
    -- A payment waiting for its shopper has not reached the bank, and one that failed authentication never will.
    ADD CONSTRAINT payments_auth_before_bank CHECK (
        auth_status IS NULL OR auth_status = 'passed'
        OR (auth_status = 'pending' AND status = 'pending')
        OR (auth_status IN ('failed', 'cancelled', 'timed_out') AND status = 'failed')
    );
