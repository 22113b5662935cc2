"""UTC timestamps in the API's ISO 8601 form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_ZERO = timedelta(0)


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """Format a datetime as ``2026-01-15T10:30:00Z`` (None stays None)."""
    if value is None:
        return None
    if value.utcoffset() != _ZERO:  # another zone, or naive (local time, as astimezone reads it)
        value = value.astimezone(UTC)
    # isoformat is twice as fast as strftime; every payment body formats two or three of these.
    return value.isoformat(timespec="seconds")[:19] + "Z"
