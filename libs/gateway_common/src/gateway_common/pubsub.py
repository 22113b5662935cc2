"""Redis pub/sub channel names for live updates (may be missed; never for money)."""

from __future__ import annotations

import json

import redis


def merchant_channel(prefix: str, merchant_id: str) -> str:
    """Return the channel carrying one merchant's events."""
    return f"{prefix}:events:{merchant_id}"


def publish(client: redis.Redis, prefix: str, event: dict) -> None:
    """Publish an event envelope to its merchant's channel."""
    client.publish(merchant_channel(prefix, event["merchant_id"]), json.dumps(event, separators=(",", ":")))
