"""SQL for the auth schema; returns dataclasses."""

from __future__ import annotations

from datetime import datetime

from gateway_common.db import Transaction

from auth.models import ApiKey, LoginAttempt, Merchant, TestClock

_MERCHANT_COLUMNS = "id::text AS id, name, email, created_at"


def _merchant(row: dict | None) -> Merchant | None:
    return Merchant(**row) if row else None


def get_merchant(tx: Transaction, merchant_id: str) -> Merchant | None:
    """Load a merchant by id."""
    tx.cursor.execute(f"SELECT {_MERCHANT_COLUMNS} FROM auth.merchants WHERE id = %s", (merchant_id,))  # noqa: S608
    return _merchant(tx.cursor.fetchone())


def get_merchant_login(tx: Transaction, email: str) -> tuple[Merchant, str] | None:
    """Load a merchant and its password hash by email."""
    tx.cursor.execute(
        f"SELECT {_MERCHANT_COLUMNS}, password_hash FROM auth.merchants WHERE lower(email) = lower(%s)",  # noqa: S608
        (email,),
    )
    row = tx.cursor.fetchone()
    if row is None:
        return None
    password_hash = row.pop("password_hash")
    return Merchant(**row), password_hash


def upsert_merchant(tx: Transaction, merchant_id: str, name: str, email: str, password_hash: str | None) -> bool:
    """Insert a merchant unless it exists; return whether it was inserted."""
    tx.cursor.execute(
        "INSERT INTO auth.merchants (id, name, email, password_hash) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        (merchant_id, name, email, password_hash),
    )
    return tx.cursor.fetchone() is not None


def email_taken(tx: Transaction, email: str) -> bool:
    """Tell whether a merchant already uses this email."""
    tx.cursor.execute("SELECT 1 FROM auth.merchants WHERE lower(email) = lower(%s)", (email,))
    return tx.cursor.fetchone() is not None


def get_api_key(tx: Transaction, api_key: str) -> ApiKey | None:
    """Load an active API key."""
    tx.cursor.execute(
        "SELECT api_key, merchant_id::text AS merchant_id, secret_hash, secret_hint FROM auth.api_keys "
        "WHERE api_key = %s AND revoked_at IS NULL",
        (api_key,),
    )
    row = tx.cursor.fetchone()
    return ApiKey(**row) if row else None


def active_key_for_merchant(tx: Transaction, merchant_id: str) -> ApiKey | None:
    """Return the merchant's newest active API key."""
    tx.cursor.execute(
        "SELECT api_key, merchant_id::text AS merchant_id, secret_hash, secret_hint FROM auth.api_keys "
        "WHERE merchant_id = %s AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1",
        (merchant_id,),
    )
    row = tx.cursor.fetchone()
    return ApiKey(**row) if row else None


def insert_api_key(
    tx: Transaction, api_key: str, merchant_id: str, secret_hash: str, secret_hint: str, secret_encrypted: str
) -> bool:
    """Insert an API key unless it exists; return whether it was inserted."""
    tx.cursor.execute(
        "INSERT INTO auth.api_keys (api_key, merchant_id, secret_hash, secret_hint, secret_encrypted) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (api_key) DO NOTHING RETURNING api_key",
        (api_key, merchant_id, secret_hash, secret_hint, secret_encrypted),
    )
    return tx.cursor.fetchone() is not None


def get_encrypted_secret(tx: Transaction, api_key: str, secret_hash: str) -> tuple[bool, str | None]:
    """Return whether this active key has this secret hash, and its encrypted secret (None if not kept)."""
    tx.cursor.execute(
        "SELECT secret_encrypted FROM auth.api_keys WHERE api_key = %s AND secret_hash = %s AND revoked_at IS NULL",
        (api_key, secret_hash),
    )
    row = tx.cursor.fetchone()
    return (row is not None, row["secret_encrypted"] if row else None)


def set_encrypted_secret(tx: Transaction, api_key: str, secret_hash: str, secret_encrypted: str) -> None:
    """Store the encrypted secret of a key whose secret hash matches."""
    tx.cursor.execute(
        "UPDATE auth.api_keys SET secret_encrypted = %s WHERE api_key = %s AND secret_hash = %s",
        (secret_encrypted, api_key, secret_hash),
    )


def revoke_api_keys(tx: Transaction, merchant_id: str) -> None:
    """Revoke every active API key of a merchant."""
    tx.cursor.execute(
        "UPDATE auth.api_keys SET revoked_at = now() WHERE merchant_id = %s AND revoked_at IS NULL", (merchant_id,)
    )


def insert_session(tx: Transaction, token_hash: str, merchant_id: str, expires_at: datetime) -> None:
    """Store a dashboard session by the hash of its token."""
    tx.cursor.execute(
        "INSERT INTO auth.sessions (token_hash, merchant_id, expires_at) VALUES (%s, %s, %s)",
        (token_hash, merchant_id, expires_at),
    )


def session_merchant(tx: Transaction, token_hash: str) -> str | None:
    """Return the merchant of a live session token hash."""
    tx.cursor.execute(
        "SELECT merchant_id::text AS merchant_id FROM auth.sessions "
        "WHERE token_hash = %s AND revoked_at IS NULL AND expires_at > now()",
        (token_hash,),
    )
    row = tx.cursor.fetchone()
    return row["merchant_id"] if row else None


def revoke_session(tx: Transaction, token_hash: str) -> None:
    """Revoke a session."""
    tx.cursor.execute("UPDATE auth.sessions SET revoked_at = now() WHERE token_hash = %s", (token_hash,))


def count_login_attempt(tx: Transaction, account_key: str, window_seconds: int) -> LoginAttempt:
    """Count one login attempt for an account, opening a new window when the last one is over."""
    tx.cursor.execute(
        "INSERT INTO auth.login_failures AS f (account_key, window_start, failures) VALUES (%(key)s, now(), 1) "
        "ON CONFLICT (account_key) DO UPDATE SET "
        "failures = CASE WHEN f.window_start <= now() - make_interval(secs => %(window)s) THEN 1 ELSE f.failures + 1 END, "
        "window_start = CASE WHEN f.window_start <= now() - make_interval(secs => %(window)s) "
        "THEN now() ELSE f.window_start END "
        "RETURNING account_key, window_start, failures, "
        "EXTRACT(EPOCH FROM (window_start + make_interval(secs => %(window)s) - now()))::float8 AS retry_after_seconds",
        {"key": account_key, "window": window_seconds},
    )
    return LoginAttempt(**tx.cursor.fetchone())


def uncount_login_attempt(tx: Transaction, attempt: LoginAttempt) -> None:
    """Take back one counted attempt (a success), leaving every other attempt of its window counted."""
    tx.cursor.execute(
        "UPDATE auth.login_failures SET failures = failures - 1 "
        "WHERE account_key = %s AND window_start = %s AND failures > 0",
        (attempt.account_key, attempt.window_start),
    )


def prune_login_failures(tx: Transaction, window_seconds: int) -> int:
    """Delete the counters whose window is over; return how many."""
    tx.cursor.execute(
        "DELETE FROM auth.login_failures WHERE window_start <= now() - make_interval(secs => %s)", (window_seconds,)
    )
    return tx.cursor.rowcount


def get_clock(tx: Transaction, merchant_id: str) -> TestClock:
    """Read a merchant's test clock (offset 0 without one)."""
    tx.cursor.execute(
        "SELECT auth.merchant_now(%(m)s) AS now, "
        "coalesce((SELECT offset_seconds FROM auth.test_clocks WHERE merchant_id = %(m)s), 0) AS offset_seconds",
        {"m": merchant_id},
    )
    return TestClock(**tx.cursor.fetchone())


def advance_clock(tx: Transaction, merchant_id: str, seconds: int, max_offset: int) -> TestClock | None:
    """Move a merchant's clock ``seconds`` ahead in one statement (concurrent advances add up).

    None when that would put it more than ``max_offset`` seconds ahead: nothing changes then.
    """
    tx.cursor.execute(
        "INSERT INTO auth.test_clocks AS c (merchant_id, offset_seconds) "
        "SELECT %(m)s, %(s)s WHERE %(s)s <= %(max)s "
        "ON CONFLICT (merchant_id) DO UPDATE SET offset_seconds = c.offset_seconds + EXCLUDED.offset_seconds, "
        "updated_at = now() WHERE c.offset_seconds + EXCLUDED.offset_seconds <= %(max)s "
        "RETURNING now() + offset_seconds * interval '1 second' AS now, offset_seconds",
        {"m": merchant_id, "s": seconds, "max": max_offset},
    )
    row = tx.cursor.fetchone()
    return TestClock(**row) if row else None


def reset_clock(tx: Transaction, merchant_id: str) -> None:
    """Put a merchant's clock back on real time."""
    tx.cursor.execute("DELETE FROM auth.test_clocks WHERE merchant_id = %s", (merchant_id,))
