"""Flask app factory: request ids, JSON logs, the safe JSON loader, the one error handler, /health."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import flask_smorest
import marshmallow as ma
import psycopg
import redis
from flask import Flask, Response, current_app, g, has_request_context, jsonify, request
from flask import Request as FlaskRequest
from flask.json.provider import DefaultJSONProvider
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from gateway_common import jsonsafe
from gateway_common.config import Settings
from gateway_common.db import UNAVAILABLE_ERRORS, describe_db_error, is_conflict, retry_on_conflict
from gateway_common.errors import (
    ApiError,
    BadRequestError,
    ServiceUnavailableError,
    TransactionConflictError,
    error_body,
    invalid_json,
)
from gateway_common.logs import REQUEST_ID, configure_logging
from gateway_common.metrics import ROUTE_KEY, RequestMetrics, route_label

log = logging.getLogger("gateway.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

HTTP_CODES = {
    400: ("BAD_REQUEST_ERROR", "Bad request"),
    401: ("AUTHENTICATION_ERROR", "Authentication failed"),
    404: ("NOT_FOUND_ERROR", "The requested URL was not found"),
    405: ("BAD_REQUEST_ERROR", "Method not allowed"),
    413: ("BAD_REQUEST_ERROR", "Request body too large"),
    415: ("BAD_REQUEST_ERROR", "Content-Type must be application/json"),
    429: ("RATE_LIMIT_ERROR", "Too many requests"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
}


class GatewayFlask(Flask):
    """Flask whose views run again when a deadlock or serialization failure rolled them back, and
    whose every request is timed for ``/metrics`` (gateway_common.metrics)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Outermost, in front of whatever wsgi_app is by then (a service's fast path included).
        self.request_metrics = RequestMetrics(lambda: self.wsgi_app)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        """Serve a WSGI request through the request metrics."""
        return self.request_metrics(environ, start_response)

    def dispatch_request(self) -> Any:
        """Dispatch the request; a conflict is retried (bounded, jittered) if nothing had committed."""
        return retry_on_conflict(super().dispatch_request)


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, loading request bodies with ``jsonsafe.loads``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Load JSON, refusing deep nesting, huge numbers and lone surrogates with a ValueError."""
        return jsonsafe.loads(s)


class Request(FlaskRequest):
    """Flask's request, whose unloadable JSON body is a 400 in the envelope that says why."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        """Refuse the body with the loader's reason."""
        raise invalid_json(e)


class Parser(FlaskParser):
    """webargs' Flask parser, loading JSON bodies with the app's (safe) JSON provider."""

    def _raw_load_json(self, req: FlaskRequest) -> Any:
        if not is_json_request(req):
            return ma.missing
        return current_app.json.loads(req.get_data(cache=True))

    def _handle_invalid_json_error(self, error: Exception, req: FlaskRequest, *args: Any, **kwargs: Any) -> Any:
        raise invalid_json(error if isinstance(error, ValueError) else None)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest Blueprint whose request bodies are parsed by ``Parser`` (the safe loader)."""

    ARGUMENTS_PARSER = Parser()


class Api(flask_smorest.Api):
    """flask-smorest Api whose HTTP errors use the API.md envelope."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        """Answer every werkzeug/webargs error in the envelope (422 becomes 400)."""
        return http_error_response(error)

    def register_blueprint(self, blp: flask_smorest.Blueprint, **options: Any) -> None:
        """Register a blueprint; refuse one whose bodies would bypass the safe JSON loader."""
        if not isinstance(blp.ARGUMENTS_PARSER, Parser):
            raise TypeError(f"blueprint {blp.name!r} must be a gateway_common.http.Blueprint")
        super().register_blueprint(blp, **options)


def describe_validation(messages: Any, prefix: str = "") -> str:
    """Turn marshmallow's nested messages into one readable sentence."""
    if isinstance(messages, dict):
        # webargs nests by location ("json", "query"); drop that level.
        if set(messages) <= {"json", "query", "form", "headers", "view_args", "files", "querystring"}:
            parts = [describe_validation(v) for v in messages.values()]
            return "; ".join(p for p in parts if p)
        parts = []
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix
            parts.append(describe_validation(value, name))
        return "; ".join(p for p in parts if p)
    if isinstance(messages, list):
        text = " ".join(str(m).rstrip(".") + "." if isinstance(m, str) else describe_validation(m, prefix) for m in messages)
        if prefix:
            if "Unknown field" in text:
                return f"{prefix} is not a valid field"
            return f"{prefix}: {text}"
        return text
    return f"{prefix}: {messages}" if prefix else str(messages)


def http_error_response(error: HTTPException) -> Response:
    """Build the envelope for a werkzeug HTTPException."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if status == 422 or (status == 400 and "messages" in data):
        description = describe_validation(data.get("messages", {})) or "Invalid request body"
        if "Invalid JSON body" in description:
            description = "Request body is not valid JSON"
        return envelope_response(400, "BAD_REQUEST_ERROR", description)
    code, default = HTTP_CODES.get(status, ("SERVER_ERROR" if status >= 500 else "BAD_REQUEST_ERROR", error.name))
    if status >= 500:
        code, default = ("SERVICE_UNAVAILABLE", "Service unavailable") if status == 503 else ("SERVER_ERROR", "Internal server error")
    description = default if status >= 500 or status == 404 else (error.description or default)
    if status == 400 and description.startswith("The browser (or proxy) sent a request"):
        description = "Request body is not valid JSON"
    response = envelope_response(status, code, description)
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def envelope_response(status: int, code: str, description: str, headers: dict[str, str] | None = None) -> Response:
    """Return a JSON error response in the API.md envelope."""
    response = jsonify(error_body(code, description))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def api_error_response(error: ApiError) -> Response:
    """Return the response for an ApiError."""
    if error.status == 503:
        note_unavailable(error)
    return envelope_response(error.status, error.code, error.description, error.headers)


def note_unavailable(error: BaseException) -> None:
    """Keep why a dependency failed, for the request's log line (one line per 503)."""
    if not has_request_context():
        return
    details = describe_db_error(error)
    if isinstance(error, redis.exceptions.RedisError):
        details["reason"] = "Redis unreachable or connection lost"
    g.unavailable = details


def _handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):
        return http_error_response(error)
    if is_conflict(error):
        return api_error_response(TransactionConflictError())
    if isinstance(error, (UNAVAILABLE_ERRORS, redis.exceptions.ConnectionError)):
        note_unavailable(error)
        return envelope_response(503, ServiceUnavailableError.code, ServiceUnavailableError.description)
    if isinstance(error, psycopg.DataError) and "NUL (0x00)" in str(error):
        # psycopg refuses NUL characters in strings before anything is sent: bad input, not a fault.
        return envelope_response(400, "BAD_REQUEST_ERROR", "Text values must not contain NUL characters")
    if isinstance(error, ma.ValidationError):
        return envelope_response(400, "BAD_REQUEST_ERROR", describe_validation(error.messages))
    log.exception("unhandled error")
    return api_error_response(ApiError())


def create_base_app(settings: Settings, *, title: str, version: str = "1.0.0") -> tuple[Flask, Api]:
    """Create a service app with request ids, JSON logs, error envelope and OpenAPI."""
    configure_logging(settings.service)
    app = GatewayFlask(settings.service)
    # Every JSON body (get_json, webargs, the payments fast path) goes through one safe loader.
    app.json = SafeJSONProvider(app)
    app.request_class = Request
    app.config.update(
        API_TITLE=title,
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.json.compact = True
    app.extensions["gateway_settings"] = settings
    api = Api(app)

    app.register_error_handler(ApiError, api_error_response)
    app.register_error_handler(HTTPException, http_error_response)
    app.register_error_handler(Exception, _handle_unexpected)

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        REQUEST_ID.set(g.request_id)
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = route_label(request.url_rule.rule)

    @app.teardown_request
    def _forget_request_id(_error: BaseException | None) -> None:
        REQUEST_ID.set(None)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if response.status_code >= 500 or current_app.config.get("LOG_REQUESTS"):
            unavailable = g.get("unavailable") if response.status_code == 503 else None
            log.log(
                logging.ERROR if response.status_code >= 500 else logging.INFO,
                f"request failed: {unavailable['reason']}" if unavailable else "request",
                extra={
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                    **(unavailable or {}),
                },
            )
        return response

    return app, api


def add_health_route(app: Flask, checks: dict[str, Callable[[], None]]) -> None:
    """Add ``GET /health`` that runs each check and names the failing ones."""

    @app.get("/health")
    def health() -> tuple[Response, int]:
        body: dict[str, Any] = {"status": "healthy"}
        failed = False
        for name, check in checks.items():
            try:
                check()
                body[name] = "connected"
            except Exception as error:
                note_unavailable(error)
                body[name] = "disconnected"
                failed = True
        body["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if failed:
            body["status"] = "unhealthy"
        return jsonify(body), (503 if failed else 200)


def parse_json_object() -> dict:
    """Return the request body as a JSON object or raise a 400."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequestError("Request body must be a JSON object")
    return data
