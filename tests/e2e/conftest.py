"""Fixtures of the end-to-end tests of events, endpoints, the stream and the paygate client."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.test_webhooks import receiver_module


@pytest.fixture
def new_merchant(stack) -> Callable[[], dict[str, str]]:
    """Create merchants of our own, so no other test's events reach our receivers or lists."""

    def create() -> dict[str, str]:
        email = f"wh-{secrets.token_hex(4)}@example.com"
        created = json.loads(stack.cli("auth.cli", "create-merchant", "--name", "Webhook Merchant", "--email", email,
                                       "--password", "pw-" + secrets.token_hex(6)))
        return {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}

    return create


@pytest.fixture
def receivers() -> Iterator[Callable[..., object]]:
    """Start webhook receivers on 127.0.0.1 (examples/webhook_receiver.py); set ``state.secret`` to verify."""
    started = []

    def start(secret: str = "whsec_unset", fail_first: int = 0):
        server = receiver_module.serve_in_thread(secret, fail_first=fail_first)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()
