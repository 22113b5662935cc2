"""A WSGI fast path for the two hottest routes: GET /payments/{id} and the plain POST /payments.

Flask's request context, routing, hooks and flask-smorest/webargs parsing cost more CPU than the
work these requests do. This middleware sits in front of ``app.wsgi_app`` and answers only requests
it fully understands, with the same bytes (status, body, Content-Type, Content-Length, X-Request-Id)
the Flask views produce; everything else (other routes, an ``Idempotency-Key``, card payments, any
field or value outside the plain subset, request logging turned on) goes to Flask untouched, before
anything has been done. Errors raised while answering (404, INVALID_VPA, database down, ...) are
rendered by Flask's own error handlers and after_request hooks, so their envelopes are the same too.

The routes stay registered in Flask, so the OpenAPI document and the slow path are unchanged.
"""

from __future__ import annotations

import hmac
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, g
from gateway_common import jsonsafe
from gateway_common.db import retry_on_conflict
from gateway_common.money import CURRENCIES, MAX_AMOUNT

from payments import service
from payments.schemas import payment_body

_GET_PATH = re.compile(r"/api/v1/payments/(pay_[A-Za-z0-9]{16})")
_POST_PATH = "/api/v1/payments"
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The fields of CreatePaymentRequest a UPI payment may carry; anything else goes to Flask.
_UPI_FIELDS = frozenset({"order_id", "method", "vpa", "amount", "currency"})
_MAX_BODY = 64 * 1024

StartResponse = Callable[..., Any]


class FastPath:
    """WSGI middleware: answer the hot requests directly, hand the rest to Flask's ``wsgi_app``."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.flask_wsgi = app.wsgi_app
        settings = app.extensions["gateway_settings"]
        self.secret = settings.gateway_secret.encode()
        self.db = app.extensions["db"]
        provider = app.json
        # What DefaultJSONProvider.response writes: compact, its ensure_ascii/sort_keys, then "\n".
        self.encode = json.JSONEncoder(
            ensure_ascii=provider.ensure_ascii,
            sort_keys=provider.sort_keys,
            separators=(",", ":"),
            default=provider.default,
        ).encode
        self.compact = provider.compact is not False and not app.debug

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if self.compact and not self.app.config.get("LOG_REQUESTS"):
            if method == "GET":
                match = _GET_PATH.fullmatch(environ.get("PATH_INFO", ""))
                if match is not None:
                    merchant = self._merchant(environ)
                    if merchant is not None:
                        return self._get_payment(environ, start_response, merchant, match.group(1))
            elif method == "POST" and environ.get("PATH_INFO") == _POST_PATH:
                merchant = self._merchant(environ)
                if merchant is not None and "HTTP_IDEMPOTENCY_KEY" not in environ:
                    body = self._plain_upi_body(environ)
                    if body is not None:
                        return self._create_payment(environ, start_response, merchant, body)
        return self.flask_wsgi(environ, start_response)

    # ------------------------------------------------------------ request checks (no side effects)

    def _merchant(self, environ: dict) -> str | None:
        """The gateway-verified merchant, or None to let Flask answer (401 and friends)."""
        given = environ.get("HTTP_X_GATEWAY_SECRET", "")
        if not given or not hmac.compare_digest(given.encode(), self.secret):
            return None
        value = environ.get("HTTP_X_MERCHANT_ID", "")
        if _CANONICAL_UUID.fullmatch(value):
            return value  # what the gateway sends: already str(uuid.UUID(value))
        try:
            return str(uuid.UUID(value)) if value else None
        except ValueError:
            return None

    def _plain_upi_body(self, environ: dict) -> dict | None:
        """Parse a JSON body CreatePaymentRequest would load unchanged; None means "ask Flask".

        The body is read here, so it is put back for Flask in every case that falls through.
        """
        if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != "application/json":
            return None
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= _MAX_BODY:
            return None
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        try:
            body = jsonsafe.loads(raw)
        except ValueError:  # deep nesting, huge numbers, lone surrogates too: Flask refuses them
            return None
        if not isinstance(body, dict) or not body.keys() <= _UPI_FIELDS or body.get("method") != "upi":
            return None
        vpa = body.get("vpa")
        if not isinstance(vpa, str) or len(vpa) > 255 or "\x00" in vpa:
            return None
        if "amount" in body:
            amount = body["amount"]
            if type(amount) is not int or not 100 <= amount <= MAX_AMOUNT:
                return None
        if "currency" in body and not (isinstance(body["currency"], str) and body["currency"] in CURRENCIES):
            return None
        if "order_id" in body:
            order_id = body["order_id"]
            if not isinstance(order_id, str) or not 1 <= len(order_id) <= 64 or "\x00" in order_id:
                return None
        elif "amount" not in body:
            return None
        return body

    @staticmethod
    def _request_id(environ: dict) -> str:
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex

    # ------------------------------------------------------------ answers

    def _json(self, start_response: StartResponse, status: str, obj: dict, request_id: str) -> list[bytes]:
        data = (self.encode(obj) + "\n").encode()
        start_response(
            status,
            [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("X-Request-Id", request_id)],
        )
        return [data]

    def _error(
        self, environ: dict, start_response: StartResponse, error: Exception, request_id: str
    ) -> Iterable[bytes]:
        """Answer an error exactly as Flask would: its error handlers, then its after_request hooks."""
        app = self.app
        with app.request_context(environ):
            g.request_id = request_id
            response = app.finalize_request(app.handle_user_exception(error))
            return response(environ, start_response)

    def _get_payment(
        self, environ: dict, start_response: StartResponse, merchant: str, payment_id: str
    ) -> Iterable[bytes]:
        request_id = self._request_id(environ)
        try:
            payment = service.get_payment(self.db, merchant, payment_id)
        except Exception as error:  # rendered by Flask's error handlers
            return self._error(environ, start_response, error, request_id)
        return self._json(start_response, "200 OK", payment_body(payment), request_id)

    def _create_payment(
        self, environ: dict, start_response: StartResponse, merchant: str, body: dict
    ) -> Iterable[bytes]:
        request_id = self._request_id(environ)
        try:
            payment = retry_on_conflict(lambda: service.create_payment(self.db, merchant, body))
        except Exception as error:  # rendered by Flask's error handlers
            return self._error(environ, start_response, error, request_id)
        return self._json(start_response, "201 CREATED", payment_body(payment), request_id)


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable."""
    app.wsgi_app = FastPath(app)  # type: ignore[method-assign]
