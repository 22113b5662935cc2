"""Deployment safety through nginx: no secret in the auth cache, login limits per real client."""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
from pathlib import Path

import requests

from tests.conftest import TEST_KEY, TEST_SECRET, Stack


def cache_files(stack: Stack) -> list[Path]:
    return [p for p in (stack.run_dir / "nginx" / "auth_cache").rglob("*") if p.is_file()]


def test_auth_cache_holds_no_secret_or_token_in_clear_and_still_caches(stack: Stack) -> None:
    headers = {"X-Api-Key": TEST_KEY, "X-Api-Secret": TEST_SECRET}
    for _ in range(3):
        assert requests.get(f"{stack.api}/orders", params={"count": 1}, headers=headers, timeout=10).status_code == 200
    login = requests.post(f"{stack.api}/auth/login", json={"email": "test@example.com", "password": "password123"}, timeout=10)
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    for _ in range(2):
        assert requests.get(f"{stack.api}/merchant", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    # A wrong secret for the same key is its own cache variant: never the right secret's verdict.
    wrong = requests.get(f"{stack.api}/orders", headers={"X-Api-Key": TEST_KEY, "X-Api-Secret": TEST_SECRET + "x"}, timeout=10)
    assert wrong.status_code == 401

    files = cache_files(stack)
    contents = b"".join(p.read_bytes() for p in files)
    assert TEST_SECRET.encode() not in contents
    assert token.encode() not in contents
    assert token.split("_", 1)[1].encode() not in contents
    assert f"KEY: key:{TEST_KEY}".encode() in contents  # the verdicts are cached, under the key alone


def test_a_cached_verdict_outlives_a_rotation_for_at_most_the_cache_time(stack: Stack) -> None:
    email = f"cache-{secrets.token_hex(4)}@example.com"
    created = json.loads(stack.cli("auth.cli", "create-merchant", "--name", "Cache", "--email", email, "--password", "cachepass1"))
    old = {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}
    assert requests.get(f"{stack.api}/merchant", headers=old, timeout=10).status_code == 200
    rotated = requests.post(f"{stack.api}/merchant/rotate-keys", headers=old, timeout=10)
    assert rotated.status_code == 200
    # The auth service already refuses the old key; nginx still answers from its cache.
    assert requests.get(f"{stack.api}/merchant", headers=old, timeout=10).status_code == 200
    assert created["api_secret"].encode() not in b"".join(p.read_bytes() for p in cache_files(stack))
    deadline = time.monotonic() + int(stack.env["AUTH_CACHE_SECONDS"]) + 5
    while requests.get(f"{stack.api}/merchant", headers=old, timeout=10).status_code != 401:
        assert time.monotonic() < deadline, "the old key kept working past the auth cache time"
        time.sleep(0.2)


def _login_burst(stack: Stack, headers_for, size: int | None = None) -> list[requests.Response]:
    """Send logins at once (so the limit's refill during slow logins cannot hide it)."""
    size = size or int(stack.env["LOGIN_RATE_LIMIT_BURST"]) + 5

    def login(index: int) -> requests.Response:
        # Unknown, distinct emails: the auth service's per-account limit never applies here.
        return requests.post(
            f"{stack.api}/auth/login",
            json={"email": f"nobody-{secrets.token_hex(4)}@example.com", "password": "wrongpassword"},
            headers=headers_for(index),
            timeout=30,
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(login, range(size)))


def _wait_for_login_limit_to_refill(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    burst = int(stack.env["LOGIN_RATE_LIMIT_BURST"])
    per_second = int(stack.env["LOGIN_RATE_LIMIT_RPM"]) / 60
    time.sleep(min(burst / per_second, 20))
    while requests.post(f"{stack.api}/auth/login", json={"email": "x@example.com", "password": "x"}, timeout=10).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_login_limit_trusts_a_forwarded_client_address_only_from_the_dashboard(stack: Stack) -> None:
    secret = stack.env["DASHBOARD_FORWARD_SECRET"]
    try:
        # The dashboard's logins count per browser address it names.
        forwarded = _login_burst(stack, lambda i: {"X-Real-IP": f"198.51.100.{i + 1}", "X-Dashboard-Secret": secret})
        assert {r.status_code for r in forwarded} == {401}
        # Anyone else naming addresses is still one client: its own address.
        burst = int(stack.env["LOGIN_RATE_LIMIT_BURST"])
        spoofed = _login_burst(
            stack, lambda i: {"X-Real-IP": f"203.0.113.{i + 1}", "X-Dashboard-Secret": "guess"}, size=burst * 3
        )
        throttled = [r for r in spoofed if r.status_code == 429]
        assert throttled, [r.status_code for r in spoofed]
        assert throttled[0].json()["error"]["code"] == "RATE_LIMIT_ERROR"
    finally:
        _wait_for_login_limit_to_refill(stack)


def test_per_account_login_throttle_through_the_gateway(stack: Stack) -> None:
    email = f"locked-{secrets.token_hex(4)}@example.com"
    stack.cli("auth.cli", "create-merchant", "--name", "Locked", "--email", email, "--password", "rightpass1")
    secret = stack.env["DASHBOARD_FORWARD_SECRET"]
    # Ten failures from ten addresses: the account, not the address, is what is limited.
    for i in range(10):
        failed = requests.post(f"{stack.api}/auth/login", json={"email": email, "password": "wrongpass1"},
                               headers={"X-Real-IP": f"198.51.100.{200 + i}", "X-Dashboard-Secret": secret}, timeout=10)
        assert failed.status_code == 401
    locked = requests.post(f"{stack.api}/auth/login", json={"email": email, "password": "rightpass1"},
                           headers={"X-Real-IP": "198.51.100.250", "X-Dashboard-Secret": secret}, timeout=10)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "RATE_LIMIT_ERROR"
    assert int(locked.headers["Retry-After"]) > 1


def test_services_refuse_calls_that_skip_the_gateway(stack: Stack) -> None:
    auth = f"http://127.0.0.1:{stack.env['AUTH_PORT']}"
    login = requests.post(f"{auth}/api/v1/auth/login", json={"email": "test@example.com", "password": "password123"}, timeout=10)
    assert login.status_code == 401
    assert "token" not in login.json()
    assert requests.get(f"{auth}/api/v1/test/merchant", timeout=10).status_code == 401
