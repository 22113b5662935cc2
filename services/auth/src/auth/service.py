"""Auth use cases: verify credentials, log in and out, seed and create merchants."""

from __future__ import annotations

import logging
import math
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from gateway_common.db import Database
from gateway_common.errors import AuthenticationError, BadRequestError, RateLimitError
from gateway_common.secretbox import SecretBox

from auth import models, repository
from auth.hashing import DUMMY_PASSWORD_HASH, check_password, check_secret, hash_password, hash_secret
from auth.models import LoginThrottle, Merchant, Session, TestClock

log = logging.getLogger("auth.service")
SESSION_TTL = timedelta(hours=12)
INVALID = "Invalid API key or secret"


def verify_api_key(db: Database, api_key: str, api_secret: str) -> str:
    """Return the merchant id for a valid key and secret."""
    if not api_key or not api_secret:
        raise AuthenticationError(INVALID)
    with db.transaction() as tx:
        key = repository.get_api_key(tx, api_key)
    # Compare against a dummy hash for unknown keys so timing does not reveal them.
    stored = key.secret_hash if key else hash_secret(secrets.token_hex(8))
    if not check_secret(api_secret, stored) or key is None:
        raise AuthenticationError(INVALID)
    return key.merchant_id


def verify_session(db: Database, token: str) -> str:
    """Return the merchant id for a live dashboard session token."""
    if not token:
        raise AuthenticationError("Invalid or expired session")
    with db.transaction() as tx:
        merchant_id = repository.session_merchant(tx, hash_secret(token))
    if merchant_id is None:
        raise AuthenticationError("Invalid or expired session")
    return merchant_id


def login(db: Database, email: str, password: str, throttle: LoginThrottle | None = None) -> Session:
    """Check email and password and open a dashboard session, at most ``max_failures`` failures per account and window."""
    throttle = throttle or LoginThrottle()
    with db.transaction() as tx:
        found = repository.get_merchant_login(tx, email)
        # Keyed by the account the database matched (so no spelling of the email escapes the
        # count), else by the email itself: unknown emails are counted and refused alike.
        account_key = f"merchant:{found[0].id}" if found else f"email:{hash_secret(email.lower())}"
        # Counted before the password is checked, so concurrent guesses cannot all slip in
        # under the limit; a success takes back only its own count.
        attempt = repository.count_login_attempt(tx, account_key, throttle.window_seconds)
        if secrets.randbelow(100) == 0:
            repository.prune_login_failures(tx, throttle.window_seconds)
    if attempt.failures > throttle.max_failures:
        retry_after = max(1, math.ceil(attempt.retry_after_seconds))
        log.warning("login refused: %d attempts for one account in its window; retry after %d s", attempt.failures, retry_after)
        raise RateLimitError(
            f"Too many failed logins for this account; retry after {retry_after} seconds",
            headers={"Retry-After": str(retry_after)},
        )
    stored = found[1] if found else DUMMY_PASSWORD_HASH
    if not check_password(password, stored) or found is None:
        log.info("login refused: wrong email or password (%d of %d attempts in the window)", attempt.failures, throttle.max_failures)
        raise AuthenticationError("Invalid email or password")
    merchant = found[0]
    token = "sess_" + secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + SESSION_TTL
    with db.transaction() as tx:
        repository.uncount_login_attempt(tx, attempt)
        repository.insert_session(tx, hash_secret(token), merchant.id, expires_at)
    return Session(merchant=merchant, token=token, expires_at=expires_at)


def logout(db: Database, token: str) -> None:
    """Revoke a dashboard session token."""
    with db.transaction() as tx:
        repository.revoke_session(tx, hash_secret(token))


def get_merchant(db: Database, merchant_id: str) -> tuple[Merchant, str | None, str | None]:
    """Return a merchant with its active API key and the secret's hint."""
    with db.transaction() as tx:
        merchant = repository.get_merchant(tx, merchant_id)
        key = repository.active_key_for_merchant(tx, merchant_id)
    if merchant is None:
        raise AuthenticationError()
    return merchant, (key.api_key if key else None), (key.secret_hint if key else None)


def _hint(secret: str) -> str:
    return "•" * 8 + secret[-4:]


def rotate_api_key(db: Database, box: SecretBox, merchant_id: str) -> tuple[str, str]:
    """Revoke the merchant's keys and issue a new key and secret (shown once, kept encrypted)."""
    api_key = "key_" + secrets.token_hex(8)
    api_secret = "secret_" + secrets.token_urlsafe(24)
    with db.transaction() as tx:
        repository.revoke_api_keys(tx, merchant_id)
        repository.insert_api_key(
            tx, api_key, merchant_id, hash_secret(api_secret), _hint(api_secret), box.encrypt(api_secret)
        )
    return api_key, api_secret


def seed_test_merchant(db: Database, box: SecretBox) -> bool:
    """Create the documented test merchant if missing; return whether it was created.

    Its secret is documented, so the seed also (re-)encrypts it when the stored copy is missing
    (a key created before secrets were kept) or no longer opens with the current server key.
    """
    secret_hash = hash_secret(models.TEST_API_SECRET)
    with db.transaction() as tx:
        created = repository.upsert_merchant(
            tx,
            models.TEST_MERCHANT_ID,
            models.TEST_MERCHANT_NAME,
            models.TEST_MERCHANT_EMAIL,
            hash_password(models.TEST_MERCHANT_PASSWORD),
        )
        repository.insert_api_key(
            tx,
            models.TEST_API_KEY,
            models.TEST_MERCHANT_ID,
            secret_hash,
            _hint(models.TEST_API_SECRET),
            box.encrypt(models.TEST_API_SECRET),
        )
        active, stored = repository.get_encrypted_secret(tx, models.TEST_API_KEY, secret_hash)
        if active and box.decrypt(stored) != models.TEST_API_SECRET:
            repository.set_encrypted_secret(tx, models.TEST_API_KEY, secret_hash, box.encrypt(models.TEST_API_SECRET))
    return created


def create_merchant(db: Database, box: SecretBox, name: str, email: str, password: str) -> dict:
    """Create a merchant with a fresh API key; return its credentials once."""
    if not name.strip() or "@" not in email or len(password) < 8:
        raise BadRequestError("name, a valid email and a password of at least 8 characters are required")
    merchant_id = str(uuid.uuid4())
    api_key = "key_" + secrets.token_hex(8)
    api_secret = "secret_" + secrets.token_urlsafe(24)
    with db.transaction() as tx:
        if repository.email_taken(tx, email):
            raise BadRequestError("A merchant with this email already exists")
        repository.upsert_merchant(tx, merchant_id, name, email, hash_password(password))
        repository.insert_api_key(
            tx, api_key, merchant_id, hash_secret(api_secret), _hint(api_secret), box.encrypt(api_secret)
        )
    return {"id": merchant_id, "name": name, "email": email, "api_key": api_key, "api_secret": api_secret}


def get_clock(db: Database, merchant_id: str) -> TestClock:
    """Return a merchant's test clock."""
    with db.transaction() as tx:
        return repository.get_clock(tx, merchant_id)


def advance_clock(db: Database, merchant_id: str, seconds: int) -> TestClock:
    """Move a merchant's test clock ahead, so its scheduled work comes due that much sooner."""
    with db.transaction() as tx:
        clock = repository.advance_clock(tx, merchant_id, seconds, models.CLOCK_MAX_OFFSET)
    if clock is None:
        raise BadRequestError(f"The test clock cannot run more than {models.CLOCK_MAX_OFFSET} seconds ahead; reset it first")
    log.info("test clock of merchant %s advanced %d s (now %d s ahead)", merchant_id, seconds, clock.offset_seconds)
    return clock


def reset_clock(db: Database, merchant_id: str) -> TestClock:
    """Put a merchant's test clock back on real time."""
    with db.transaction() as tx:
        repository.reset_clock(tx, merchant_id)
        return repository.get_clock(tx, merchant_id)
