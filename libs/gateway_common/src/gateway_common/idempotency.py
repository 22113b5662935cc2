"""The Idempotency-Key store: ``<schema>.idempotency_keys`` (gateway_common/sql/outbox_idempotency.sql).

The key row is written in the same transaction as the change it protects, so a crash leaves
neither; ``gateway_common.http.once_per_key`` is the decorator that uses this store. Rows live
24 hours; ``prune_expired`` (run by every worker through ``pruner_loop``) forgets them.

The stored fingerprint is a keyed HMAC (a server secret), never a plain hash of the body: a body
may hold a card number and CVV, which an unkeyed hash would give away to anyone reading the table
(a CVV is 1000 guesses). A service whose bodies carry such data also passes ``canonical``, which
replaces it before anything is hashed. A NULL fingerprint (rows from before keyed fingerprints)
replays without the mismatch check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg.errors
from psycopg import sql

from gateway_common import jsonsafe
from gateway_common.db import Database, Transaction
from gateway_common.errors import IdempotencyKeyInUseError, invalid_json
from gateway_common.loops import Loop

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = "24 hours"
# Expired keys deleted per statement, and how often a worker looks for them.
PRUNE_BATCH = 1000
PRUNE_EVERY_SECONDS = 300.0

# Turns a parsed JSON body into what identifies the request; the second argument gives a keyed
# digest of a string, for a value that must decide equality without being kept (a card number).
Canonical = Callable[[Any, Callable[[str], str]], Any]


def keyed_digest(secret: str, label: str, value: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``value`` under ``secret``, separated by ``label`` from other uses."""
    return hmac.new(secret.encode(), label.encode() + b"\0" + value, hashlib.sha256).hexdigest()


def fingerprint(secret: str, method: str, path: str, body: bytes, canonical: Canonical | None = None) -> str:
    """Return a keyed digest of a request so a reused key with a different request is detected."""
    try:
        parsed = jsonsafe.loads(body or b"null")
    except jsonsafe.UnsafeJSONError as exc:
        # Refused before the key is stored: a hostile body leaves nothing behind.
        raise invalid_json(exc) from exc
    except ValueError:
        form = body
    else:
        if canonical is not None:
            parsed = canonical(parsed, lambda value: keyed_digest(secret, "field", value.encode()))
        form = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    return keyed_digest(secret, "request", method.encode() + b" " + path.encode() + b"\n" + form)


class KeyStore:
    """The Idempotency-Key rows of one service schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.table = sql.Identifier(schema, "idempotency_keys")

    def claim(self, tx: Transaction, scope: str, key: str, digest: str, wait_seconds: int) -> dict | None:
        """Claim ``key`` for a new request (None), or return the stored row of an earlier one.

        A concurrent request with the key holds its row lock; waiting longer than ``wait_seconds``
        for it, or finding it still without an answer, is ``IdempotencyKeyInUseError``.
        """
        cur = tx.cursor
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{wait_seconds}s",))
        try:
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} AS k (scope, key, fingerprint, expires_at) "
                    "VALUES (%s, %s, %s, now() + interval '24 hours') "
                    "ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
                    "response_status = NULL, response_body = NULL, created_at = now(), "
                    "expires_at = EXCLUDED.expires_at WHERE k.expires_at < now() "
                    "RETURNING key"
                ).format(self.table),
                (scope, key, digest),
            )
        except psycopg.errors.LockNotAvailable as exc:
            raise IdempotencyKeyInUseError() from exc
        if cur.fetchone() is not None:
            cur.execute("SELECT set_config('lock_timeout', '0', true)")
            return None
        cur.execute(
            sql.SQL("SELECT fingerprint, response_status, response_body FROM {} WHERE scope = %s AND key = %s").format(
                self.table
            ),
            (scope, key),
        )
        row = cur.fetchone()
        if row is None or row["response_status"] is None:
            raise IdempotencyKeyInUseError()
        return row

    def record(self, tx: Transaction, scope: str, key: str, status: int, body: bytes) -> None:
        """Keep the answer of the request that claimed ``key``."""
        tx.cursor.execute(
            sql.SQL("UPDATE {} SET response_status = %s, response_body = %s WHERE scope = %s AND key = %s").format(
                self.table
            ),
            (status, body, scope, key),
        )

    def prune_expired(self, db: Database, batch: int = PRUNE_BATCH) -> int:
        """Delete up to ``batch`` keys past their lifetime; return how many."""
        with db.transaction() as tx:
            tx.cursor.execute(
                sql.SQL(
                    "DELETE FROM {table} WHERE ctid IN "
                    "(SELECT ctid FROM {table} WHERE expires_at < now() ORDER BY expires_at LIMIT %s)"
                ).format(table=self.table),
                (batch,),
            )
            return tx.cursor.rowcount


def pruner_loop(db: Database, schema: str) -> Loop:
    """Return the worker loop that forgets ``<schema>``'s expired Idempotency-Keys, a batch at a time."""
    store = KeyStore(schema)
    # A full batch is followed at once by the next; otherwise the loop sleeps.
    return Loop(
        f"{schema}-idempotency-pruner", lambda: store.prune_expired(db), interval=PRUNE_EVERY_SECONDS, error_backoff=30.0
    )
