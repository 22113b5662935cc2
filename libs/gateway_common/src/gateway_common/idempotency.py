"""Idempotency-Key handling for POSTs that create or change money.

The key row is written in the same transaction as the change it protects, so a
crash leaves neither. A concurrent duplicate waits on the first request's row lock
and then replays its committed answer; if the first takes longer than
``wait_seconds`` the duplicate gets 409. Responses with 401, 429 or 5xx are not kept.

The stored fingerprint is a keyed HMAC (a server secret), never a plain hash of the body: a body
may hold a card number and CVV, which an unkeyed hash would give away to anyone reading the table
(a CVV is 1000 guesses). A service whose bodies carry such data also passes ``canonical``, which
replaces it before anything is hashed. A NULL fingerprint (rows from before keyed fingerprints)
replays without the mismatch check.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg2.errors
from flask import Response, make_response, request
from psycopg2 import sql

from gateway_common import jsonsafe
from gateway_common.db import Database
from gateway_common.errors import (
    ApiError,
    BadRequestError,
    IdempotencyKeyInUseError,
    IdempotencyKeyMismatchError,
)
from gateway_common.http import api_error_response, invalid_json

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = "24 hours"

# Turns a parsed JSON body into what identifies the request; the second argument gives a keyed
# digest of a string, for a value that must decide equality without being kept (a card number).
Canonical = Callable[[Any, Callable[[str], str]], Any]


class _Unstored(Exception):
    """Carries a response that must not be remembered out of the transaction."""

    def __init__(self, response: Response) -> None:
        self.response = response


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


def _cacheable(status: int) -> bool:
    return status < 500 and status not in (401, 429)


def idempotent(
    db: Database,
    schema: str,
    scope: Callable[[], str],
    *,
    secret: str,
    canonical: Canonical | None = None,
    wait_seconds: int = 5,
) -> Callable:
    """Decorate a Flask view so an ``Idempotency-Key`` makes it run once (``secret`` keys the fingerprints)."""
    table = sql.Identifier(schema, "idempotency_keys")

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = request.headers.get(HEADER)
            if given is None:
                return view(*args, **kwargs)
            if not 1 <= len(given) <= 255 or not given.isprintable():
                raise BadRequestError("Idempotency-Key must be 1-255 printable characters")
            owner = scope()
            digest = fingerprint(secret, request.method, request.path, request.get_data(cache=True), canonical)
            try:
                with db.transaction() as tx:
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
                            ).format(table),
                            (owner, given, digest),
                        )
                    except psycopg2.errors.LockNotAvailable as exc:
                        raise IdempotencyKeyInUseError() from exc
                    if cur.fetchone() is None:
                        cur.execute(
                            sql.SQL(
                                "SELECT fingerprint, response_status, response_body FROM {} "
                                "WHERE scope = %s AND key = %s"
                            ).format(table),
                            (owner, given),
                        )
                        row = cur.fetchone()
                        if row is None or row["response_status"] is None:
                            raise IdempotencyKeyInUseError()
                        if row["fingerprint"] is None:
                            log.info("idempotency: key stored without a fingerprint, replayed unchecked")
                        elif not hmac.compare_digest(row["fingerprint"], digest):
                            log.info("idempotency: key reused with a different request")
                            raise IdempotencyKeyMismatchError()
                        replay = Response(
                            bytes(row["response_body"]), status=row["response_status"], mimetype="application/json"
                        )
                        replay.headers[REPLAYED_HEADER] = "true"
                        return replay
                    cur.execute("SELECT set_config('lock_timeout', '0', true)")
                    try:
                        with db.savepoint("idempotent_view"):
                            response = make_response(view(*args, **kwargs))
                    except ApiError as error:
                        response = api_error_response(error)
                    if not _cacheable(response.status_code):
                        raise _Unstored(response)
                    cur.execute(
                        sql.SQL("UPDATE {} SET response_status = %s, response_body = %s WHERE scope = %s AND key = %s").format(
                            table
                        ),
                        (response.status_code, response.get_data(), owner, given),
                    )
                    return response
            except _Unstored as unstored:
                return unstored.response

        return wrapper

    return decorator
