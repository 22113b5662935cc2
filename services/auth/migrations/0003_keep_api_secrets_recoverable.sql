-- API secrets kept recoverable (the Razorpay payment signature is an HMAC keyed with the secret):
-- Fernet-encrypted under the server key API_SECRET_KEY, next to the hash that the auth check uses.
-- Keys created before this migration have no plaintext anywhere, so their column stays NULL: the
-- seeded test merchant's is filled by the seed (its secret is documented), any other merchant gets
-- one by rotating its keys (POST /api/v1/merchant/rotate-keys). Until then its payments carry no
-- razorpay_signature; everything else works as before.
ALTER TABLE auth.api_keys ADD COLUMN secret_encrypted TEXT;

-- Published on purpose for the payments service, which signs successful payments with the secret.
CREATE VIEW auth.api_key_secrets AS
    SELECT merchant_id, api_key, secret_encrypted, created_at
    FROM auth.api_keys
    WHERE revoked_at IS NULL AND secret_encrypted IS NOT NULL;
GRANT SELECT ON auth.api_key_secrets TO svc_payments;
