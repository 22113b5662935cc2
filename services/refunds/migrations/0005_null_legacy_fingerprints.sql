-- Idempotency-Key fingerprints are now keyed HMACs; a legacy unkeyed SHA-256 can never match one,
-- so it goes (refund bodies hold no card data, but the rule is the same as in payments). A NULL
-- fingerprint means: replay the stored answer without the mismatch check (rows expire within 24 hours).
ALTER TABLE refunds.idempotency_keys ALTER COLUMN fingerprint DROP NOT NULL;
UPDATE refunds.idempotency_keys SET fingerprint = NULL WHERE fingerprint IS NOT NULL;
