"""Per-request test controls (``X-Test-Outcome``, ``X-Test-Delay-Ms``): parsed, checked, refused outside test mode."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway_common.errors import BadRequestError

OUTCOME_HEADER = "X-Test-Outcome"
DELAY_HEADER = "X-Test-Delay-Ms"
MAX_DELAY_MS = 86_400_000
CONTROLS_OFF = "Test controls are off"

_ERROR_CODE = re.compile(r"[A-Z][A-Z_]{2,39}")
_DELAY = re.compile(r"[0-9]{1,8}")


@dataclass(frozen=True)
class ChosenOutcome:
    """The outcome a test asked for: ``success``, or ``failed`` with an error code (None: the default)."""

    status: str
    error_code: str | None = None


def require_test_controls(test_mode: bool) -> None:
    """Refuse a test control outside test mode: 400 ``Test controls are off``."""
    if not test_mode:
        raise BadRequestError(CONTROLS_OFF)


def parse_test_outcome(value: str | None, *, test_mode: bool) -> ChosenOutcome | None:
    """Parse ``X-Test-Outcome`` (``success``, ``failed``, ``failed:<ERROR_CODE>``); None when not sent."""
    if value is None:
        return None
    require_test_controls(test_mode)
    wanted = value.strip()
    if wanted in ("success", "failed"):
        return ChosenOutcome(wanted)
    status, _, code = wanted.partition(":")
    if status == "failed" and _ERROR_CODE.fullmatch(code):
        return ChosenOutcome("failed", code)
    raise BadRequestError(
        f"{OUTCOME_HEADER} must be success, failed or failed:<ERROR_CODE> (ERROR_CODE: 3-40 of A-Z and _, "
        "starting with a letter)"
    )


def parse_test_delay_ms(value: str | None, *, test_mode: bool) -> int | None:
    """Parse ``X-Test-Delay-Ms`` (0..86400000 milliseconds); None when not sent."""
    if value is None:
        return None
    require_test_controls(test_mode)
    stripped = value.strip()
    if not _DELAY.fullmatch(stripped) or int(stripped) > MAX_DELAY_MS:
        raise BadRequestError(f"{DELAY_HEADER} must be a whole number of milliseconds from 0 to {MAX_DELAY_MS}")
    return int(stripped)


@dataclass(frozen=True)
class RequestControls:
    """What a request's test-control headers asked for (each None when not sent)."""

    outcome: ChosenOutcome | None = None
    delay_ms: int | None = None


def read_test_controls(header: Callable[[str], str | None], *, test_mode: bool, outcome: bool = True) -> RequestControls:
    """Read the test-control headers through ``header(name)``; ``outcome=False`` refuses ``X-Test-Outcome``.

    400 ``Test controls are off`` outside test mode, 400 for a malformed value: nothing is done then.
    """
    chosen = header(OUTCOME_HEADER)
    if chosen is not None and not outcome:
        require_test_controls(test_mode)
        raise BadRequestError(f"{OUTCOME_HEADER} applies to payments only")
    return RequestControls(
        outcome=parse_test_outcome(chosen, test_mode=test_mode),
        delay_ms=parse_test_delay_ms(header(DELAY_HEADER), test_mode=test_mode),
    )


def environ_header(environ: dict) -> Callable[[str], str | None]:
    """Return a ``header(name)`` reader over a WSGI environ (for code that runs before Flask)."""
    return lambda name: environ.get("HTTP_" + name.upper().replace("-", "_"))


# OpenAPI descriptions of the headers, for the views that read them.
OUTCOME_PARAMETER = {
    "in": "header",
    "name": OUTCOME_HEADER,
    "required": False,
    "description": "Test mode only: success, failed or failed:<ERROR_CODE> decides this payment at the bank "
    "(400 'Test controls are off' outside test mode).",
    "schema": {"type": "string", "pattern": "^(success|failed|failed:[A-Z][A-Z_]{2,39})$"},
}
DELAY_PARAMETER = {
    "in": "header",
    "name": DELAY_HEADER,
    "required": False,
    "description": "Test mode only: milliseconds until the simulated processor answers, instead of the configured "
    "delay (400 'Test controls are off' outside test mode).",
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY_MS},
}
