"""What payments reads of the merchants (auth's published views): keys, secrets, test clocks."""

from __future__ import annotations

from gateway_common.db import Transaction


def merchant_for_key(tx: Transaction, api_key: str) -> str | None:
    """Return the merchant owning an active public API key."""
    tx.cursor.execute(
        "SELECT merchant_id::text AS merchant_id FROM auth.public_merchants WHERE api_key = %s LIMIT 1", (api_key,)
    )
    row = tx.cursor.fetchone()
    return row["merchant_id"] if row else None


def encrypted_api_secret(tx: Transaction, merchant_id: str) -> str | None:
    """Return the merchant's newest active API secret, encrypted under the server key (None if not kept)."""
    tx.cursor.execute(
        "SELECT secret_encrypted FROM auth.api_key_secrets WHERE merchant_id = %s ORDER BY created_at DESC LIMIT 1",
        (merchant_id,),
    )
    row = tx.cursor.fetchone()
    return row["secret_encrypted"] if row else None


def clock_offset(tx: Transaction, merchant_id: str) -> int:
    """How many seconds the merchant's test clock runs ahead of real time (0 without one)."""
    tx.cursor.execute("SELECT offset_seconds FROM auth.merchant_clocks WHERE merchant_id = %s", (merchant_id,))
    row = tx.cursor.fetchone()
    return int(row["offset_seconds"]) if row else 0
