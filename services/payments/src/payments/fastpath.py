"""A WSGI fast path for the two hottest routes: GET /payments/{id} and POST /payments.

Flask's request context, routing, hooks and flask-smorest/webargs parsing cost more CPU than the
work these requests do. This middleware sits in front of ``app.wsgi_app`` and answers only requests
it fully understands, through the same checks, schema and JSON provider as the Flask views (the
gateway check of ``gateway_common.http``, ``api.CREATE_PAYMENT_REQUEST``, ``app.json``), so its
answers are the views' bytes. Everything else (other routes, an ``Idempotency-Key``, a body the
schema refuses, a request that fails the gateway check, request logging turned on) goes to Flask
untouched, before anything has been done, and Flask answers it. Errors raised while answering
(404, INVALID_VPA, database down, ...) are rendered by Flask's own error handlers and after_request
hooks, so their envelopes are the same too.

The routes stay registered in Flask, so the OpenAPI document and the slow path are unchanged.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import marshmallow as ma
from flask import Flask, g
from gateway_common.db import retry_on_conflict
from gateway_common.errors import AuthenticationError
from gateway_common.http import came_through_gateway, canonical_merchant, environ_header, read_test_controls
from gateway_common.logs import REQUEST_ID
from gateway_common.metrics import ROUTE_KEY

from payments import service
from payments.api import CREATE_PAYMENT_REQUEST
from payments.schemas import payment_body

_GET_PATH = re.compile(r"/api/v1/payments/(pay_[A-Za-z0-9]{16})")
_POST_PATH = "/api/v1/payments"
# The Flask rules of the same routes, which name them in the request metrics.
_GET_ROUTE = "/api/v1/payments/<payment_id>"
_POST_ROUTE = "/api/v1/payments"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_BODY = 64 * 1024
# As werkzeug writes them (the status line of a Response with that status code).
_STATUS_LINES = {200: "200 OK", 201: "201 CREATED"}

StartResponse = Callable[..., Any]


class FastPath:
    """WSGI middleware: answer the hot requests directly, hand the rest to Flask's ``wsgi_app``."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.flask_wsgi = app.wsgi_app
        self.secret = app.extensions["gateway_settings"].gateway_secret
        self.test_mode = app.extensions["gateway_settings"].test_mode
        self.db = app.extensions["db"]
        # The JSON provider's compact form is what the views send; an indented (debug) app goes to Flask.
        self.compact = app.json.compact is not False and not app.debug
        # What DefaultJSONProvider.response passes to its dumps for a compact answer.
        self.dump_args = {"separators": (",", ":")}

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if self.compact and not self.app.config.get("LOG_REQUESTS"):
            if method == "GET":
                match = _GET_PATH.fullmatch(environ.get("PATH_INFO", ""))
                if match is not None:
                    merchant = self._merchant(environ)
                    if merchant is not None:
                        environ[ROUTE_KEY] = _GET_ROUTE
                        return self._get_payment(environ, start_response, merchant, match.group(1))
            elif method == "POST" and environ.get("PATH_INFO") == _POST_PATH:
                merchant = self._merchant(environ)
                if merchant is not None and "HTTP_IDEMPOTENCY_KEY" not in environ:
                    body = self._valid_body(environ)
                    if body is not None:
                        environ[ROUTE_KEY] = _POST_ROUTE
                        return self._create_payment(environ, start_response, merchant, body)
        return self.flask_wsgi(environ, start_response)

    # ------------------------------------------------------------ request checks (no side effects)

    def _merchant(self, environ: dict) -> str | None:
        """The gateway-verified merchant, as ``api.current_merchant`` finds it; None lets Flask answer the 401."""
        if not came_through_gateway(environ.get("HTTP_X_GATEWAY_SECRET", ""), self.secret):
            return None
        try:
            return canonical_merchant(environ.get("HTTP_X_MERCHANT_ID", ""))
        except AuthenticationError:
            return None

    def _valid_body(self, environ: dict) -> dict | None:
        """Load a JSON body with the view's own schema; None means "ask Flask" (which explains a refusal).

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
            return CREATE_PAYMENT_REQUEST.load(self.app.json.loads(raw))
        except (ValueError, ma.ValidationError):
            return None

    @staticmethod
    def _request_id(environ: dict) -> str:
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex

    # ------------------------------------------------------------ answers

    def _json(
        self, environ: dict, start_response: StartResponse, status: int, obj: dict, request_id: str
    ) -> Iterable[bytes]:
        # The bytes app.json.response(obj) would send, without building a Response for them.
        data = f"{self.app.json.dumps(obj, **self.dump_args)}\n".encode()
        start_response(
            _STATUS_LINES[status],
            [("Content-Type", self.app.json.mimetype), ("Content-Length", str(len(data))), ("X-Request-Id", request_id)],
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
        return self._json(environ, start_response, 200, payment_body(payment), request_id)

    def _create_payment(
        self, environ: dict, start_response: StartResponse, merchant: str, body: dict
    ) -> Iterable[bytes]:
        request_id = self._request_id(environ)
        token = REQUEST_ID.set(request_id)  # named by the conflict retry's log lines
        try:
            # The view's checks of X-Test-Outcome / X-Test-Delay-Ms (400 outside test mode), then its call.
            controls = read_test_controls(environ_header(environ), test_mode=self.test_mode)
            payment = retry_on_conflict(lambda: service.create_payment(self.db, merchant, body, controls=controls))
        except Exception as error:  # rendered by Flask's error handlers
            return self._error(environ, start_response, error, request_id)
        finally:
            REQUEST_ID.reset(token)
        return self._json(environ, start_response, 201, payment_body(payment), request_id)


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable."""
    app.wsgi_app = FastPath(app)  # type: ignore[method-assign]
