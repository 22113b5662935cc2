"""gunicorn settings shared by the API services: its own error answers in the API.md envelope."""

from __future__ import annotations

import json
import socket

from gateway_common.errors import error_body

# gunicorn answers some requests before the app sees them (a request line over
# limit_request_line: 414; a header value with a control character: 400; an app that raised
# past the WSGI callable: 500) with a small HTML page that nginx passes through unchanged.
# Patched: gunicorn.util.write_error, called by Worker.handle_error
# (https://github.com/benoitc/gunicorn/blob/master/gunicorn/workers/base.py, handle_error).
PATCHED_GUNICORN = ("23.", "24.", "25.", "26.", "27.")

_CODES = {414: "BAD_REQUEST_ERROR", 431: "BAD_REQUEST_ERROR", 500: "SERVER_ERROR", 501: "BAD_REQUEST_ERROR"}
_DESCRIPTIONS = {
    400: "Bad request: the request line or a header is malformed",
    403: "Forbidden",
    414: "Request URI too long",
    417: "Expectation failed",
    431: "Request header fields too large",
    500: "Internal server error",
    501: "Transfer coding not supported",
}


def error_response(status: int, reason: str) -> bytes:
    """Return the raw HTTP response gunicorn sends for one of its own errors, in the envelope."""
    code = _CODES.get(status, "BAD_REQUEST_ERROR" if status < 500 else "SERVER_ERROR")
    body = json.dumps(error_body(code, _DESCRIPTIONS.get(status, reason)), separators=(",", ":")).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def json_error_pages() -> None:
    """Make gunicorn's own error answers JSON in the API.md envelope (call from gunicorn.conf.py)."""
    import gunicorn
    from gunicorn import util

    if not gunicorn.__version__.startswith(PATCHED_GUNICORN):
        raise RuntimeError(f"gunicorn {gunicorn.__version__}: check util.write_error before patching it")

    def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
        # mesg is gunicorn's detail (it may quote the request); it is logged by gunicorn, not sent.
        util.write_nonblock(sock, error_response(status_int, reason))

    util.write_error = write_error
