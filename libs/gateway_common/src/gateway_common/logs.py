"""Structured (JSON-lines) logging with the request id on every line."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

_configured = False
# The id of the request this thread is answering, for log lines written below the HTTP layer
# (the database's conflict retries); None outside a request.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("gateway_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON."""
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in (
            "service", "request_id", "method", "path", "status", "duration_ms", "merchant_id",
            "error_class", "sqlstate", "reason", "error",
        ):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send JSON log lines to stderr, once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())

    class ServiceFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.service = service
            return True

    handler.addFilter(ServiceFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _configured = True
