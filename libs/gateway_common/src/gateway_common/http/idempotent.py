"""Views that honour an Idempotency-Key: the key row and the change it protects commit together."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, make_response, request

from gateway_common.db import Database
from gateway_common.errors import (
    ApiError,
    BadRequestError,
    IdempotencyKeyMismatchError,
)
from gateway_common.http.app import api_error_response
from gateway_common.http.trust import current_merchant
from gateway_common.idempotency import HEADER as IDEMPOTENCY_HEADER
from gateway_common.idempotency import REPLAYED_HEADER, Canonical, KeyStore, fingerprint

log = logging.getLogger("gateway.http")


class _Unstored(Exception):
    """Carries a response that must not be remembered out of the transaction."""

    def __init__(self, response: Response) -> None:
        self.response = response


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
    """Decorate a view so an ``Idempotency-Key`` makes it run once per ``scope()`` (``secret`` keys the fingerprints).

    A concurrent duplicate waits on the first request's row lock and then replays its committed
    answer; if the first takes longer than ``wait_seconds`` the duplicate gets 409. Responses
    with 401, 429 or 5xx are not kept.
    """
    store = KeyStore(schema)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = request.headers.get(IDEMPOTENCY_HEADER)
            if given is None:
                return view(*args, **kwargs)
            if not 1 <= len(given) <= 255 or not given.isprintable():
                raise BadRequestError("Idempotency-Key must be 1-255 printable characters")
            owner = scope()
            digest = fingerprint(secret, request.method, request.path, request.get_data(cache=True), canonical)
            try:
                with db.transaction() as tx:
                    stored = store.claim(tx, owner, given, digest, wait_seconds)
                    if stored is not None:
                        if stored["fingerprint"] is None:
                            log.info("idempotency: key stored without a fingerprint, replayed unchecked")
                        elif not hmac.compare_digest(stored["fingerprint"], digest):
                            log.info("idempotency: key reused with a different request")
                            raise IdempotencyKeyMismatchError()
                        replay = Response(
                            bytes(stored["response_body"]), status=stored["response_status"], mimetype="application/json"
                        )
                        replay.headers[REPLAYED_HEADER] = "true"
                        return replay
                    try:
                        with db.savepoint("idempotent_view"):
                            response = make_response(view(*args, **kwargs))
                    except ApiError as error:
                        response = api_error_response(error)
                    if not _cacheable(response.status_code):
                        raise _Unstored(response)
                    store.record(tx, owner, given, response.status_code, response.get_data())
                    return response
            except _Unstored as unstored:
                return unstored.response

        return wrapper

    return decorator


def once_per_key(
    schema: str, scope: Callable[[], str] = current_merchant, canonical: Canonical | None = None
) -> Callable:
    """Make a view honour ``Idempotency-Key`` against the app's database (``extensions["db"]``)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            db = current_app.extensions["db"]
            secret = current_app.extensions["gateway_settings"].fingerprint_key
            return idempotent(db, schema, scope, secret=secret, canonical=canonical)(view)(*args, **kwargs)

        return wrapper

    return decorator

