-- Idempotency-Key fingerprints used to be an unkeyed SHA-256 of the whole body, card number and
-- CVV included (a CVV falls out in ~1000 guesses). The rows do not say which were card requests
-- (an in-flight or refused request keeps no answer that would tell), and no legacy value can match
-- a keyed fingerprint anyway, so every legacy fingerprint goes. A NULL fingerprint means: replay the
-- stored answer without the mismatch check (rows expire within 24 hours).
ALTER TABLE payments.idempotency_keys ALTER COLUMN fingerprint DROP NOT NULL;
UPDATE payments.idempotency_keys SET fingerprint = NULL WHERE fingerprint IS NOT NULL;
