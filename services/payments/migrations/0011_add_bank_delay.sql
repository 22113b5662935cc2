-- A payment's bank delay chosen per request (X-Test-Delay-Ms, test mode only); NULL: the configured delay.
ALTER TABLE payments.payments
    ADD COLUMN bank_delay_ms INT CHECK (bank_delay_ms BETWEEN 0 AND 86400000);
