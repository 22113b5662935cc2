"""The platform through nginx: auth at the edge, JSON errors, limits, request ids, health."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

pytestmark = pytest.mark.e2e


def assert_envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["description"], str) and body["error"]["description"]
    return body


def test_health_reports_database_and_redis(stack):
    response = requests.get(f"{stack.base}/health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["database"] == "connected"
    assert body["redis"] == "connected"
    assert body["timestamp"].endswith("Z")


def test_missing_credentials_is_json_401(stack):
    assert_envelope(requests.get(f"{stack.api}/payments", timeout=5), 401, "AUTHENTICATION_ERROR")


def test_wrong_secret_is_json_401(stack):
    response = requests.get(f"{stack.api}/orders", headers={"X-Api-Key": "key_test_abc123", "X-Api-Secret": "wrong"}, timeout=5)
    assert_envelope(response, 401, "AUTHENTICATION_ERROR")


def test_spoofed_merchant_header_with_bad_credentials_is_401(stack):
    headers = {
        "X-Api-Key": "key_test_abc123",
        "X-Api-Secret": "nope",
        "X-Merchant-Id": "550e8400-e29b-41d4-a716-446655440000",
        "X-Gateway-Secret": "guess",
    }
    assert_envelope(requests.get(f"{stack.api}/orders", headers=headers, timeout=5), 401, "AUTHENTICATION_ERROR")
    only_spoof = {"X-Merchant-Id": "550e8400-e29b-41d4-a716-446655440000"}
    assert_envelope(requests.post(f"{stack.api}/orders", json={"amount": 100}, headers=only_spoof, timeout=5), 401, "AUTHENTICATION_ERROR")


def test_spoofed_merchant_header_is_replaced_by_the_verified_one(stack, merchant, other_merchant):
    # Authenticated as the other merchant while claiming to be the test merchant: the
    # service must see the verified merchant, so the profile is the other merchant's.
    headers = {**other_merchant, "X-Merchant-Id": "550e8400-e29b-41d4-a716-446655440000"}
    profile = requests.get(f"{stack.api}/merchant", headers=headers, timeout=5)
    assert profile.status_code == 200, profile.text
    assert profile.json()["id"] != "550e8400-e29b-41d4-a716-446655440000"
    assert profile.json()["api_key"] == other_merchant["X-Api-Key"]


def test_valid_credentials_reach_the_service(stack, merchant):
    response = requests.get(f"{stack.api}/merchant", headers=merchant, timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "550e8400-e29b-41d4-a716-446655440000"
    assert body["email"] == "test@example.com"
    assert body["api_key"] == "key_test_abc123"
    assert "secret_test_xyz789" not in response.text


def test_credential_header_names_are_case_insensitive(stack):
    response = requests.get(f"{stack.api}/merchant", headers={"x-api-key": "key_test_abc123", "X-API-SECRET": "secret_test_xyz789"}, timeout=5)
    assert response.status_code == 200


def test_unknown_route_is_json_404(stack):
    assert_envelope(requests.get(f"{stack.base}/no/such/thing", timeout=5), 404, "NOT_FOUND_ERROR")
    assert_envelope(requests.get(f"{stack.api}/nothing-here", timeout=5), 404, "NOT_FOUND_ERROR")


def test_oversize_body_is_json_413(stack, merchant):
    body = b'{"amount": 100, "notes": {"x": "' + b"a" * (1024 * 1024 + 10) + b'"}}'
    response = requests.post(f"{stack.api}/orders", data=body, headers={**merchant, "Content-Type": "application/json"}, timeout=10)
    assert_envelope(response, 413, "BAD_REQUEST_ERROR")


def test_test_merchant_endpoint(stack):
    response = requests.get(f"{stack.api}/test/merchant", timeout=5)
    assert response.status_code == 200
    assert response.json() == {
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "email": "test@example.com",
        "api_key": "key_test_abc123",
        "seeded": True,
    }


def test_server_header_has_no_version(stack):
    response = requests.get(f"{stack.base}/health", timeout=5)
    assert response.headers.get("Server", "nginx") == "nginx"
    missing = requests.get(f"{stack.base}/missing", timeout=5)
    assert missing.headers.get("Server") == "nginx"
    assert "nginx/" not in missing.text


def test_request_id_is_echoed_or_generated(stack):
    echoed = requests.get(f"{stack.api}/test/merchant", headers={"X-Request-Id": "req-abc-123"}, timeout=5)
    assert echoed.headers["X-Request-Id"] == "req-abc-123"
    generated = requests.get(f"{stack.api}/test/merchant", timeout=5)
    assert len(generated.headers["X-Request-Id"]) >= 16
    error = requests.get(f"{stack.api}/payments", headers={"X-Request-Id": "req-err-1"}, timeout=5)
    assert error.status_code == 401
    assert error.headers["X-Request-Id"] == "req-err-1"


def test_dashboard_login_token_works_like_api_keys_and_logout_revokes_it(stack):
    login = requests.post(f"{stack.api}/auth/login", json={"email": "test@example.com", "password": "password123"}, timeout=5)
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["merchant"] == {"id": "550e8400-e29b-41d4-a716-446655440000", "name": "Test Merchant", "email": "test@example.com"}
    assert body["expires_at"].endswith("Z")
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert requests.get(f"{stack.api}/merchant", headers=bearer, timeout=5).status_code == 200
    assert requests.post(f"{stack.api}/auth/logout", headers=bearer, timeout=5).status_code == 200
    # The edge caches verdicts for AUTH_CACHE_SECONDS; a fresh token proves revocation without waiting.
    again = requests.post(f"{stack.api}/auth/login", json={"email": "test@example.com", "password": "password123"}, timeout=5).json()
    requests.post(f"{stack.api}/auth/logout", headers={"Authorization": f"Bearer {again['token']}"}, timeout=5)


def test_wrong_login_is_401_with_the_same_answer_for_email_and_password(stack):
    wrong_password = requests.post(f"{stack.api}/auth/login", json={"email": "test@example.com", "password": "nope"}, timeout=5)
    wrong_email = requests.post(f"{stack.api}/auth/login", json={"email": "nobody@example.com", "password": "password123"}, timeout=5)
    assert_envelope(wrong_password, 401, "AUTHENTICATION_ERROR")
    assert wrong_password.json() == wrong_email.json()


def test_malformed_login_body_is_400(stack):
    response = requests.post(f"{stack.api}/auth/login", data="{not json", headers={"Content-Type": "application/json"}, timeout=5)
    assert_envelope(response, 400, "BAD_REQUEST_ERROR")


def test_login_is_rate_limited_with_retry_after(stack):
    def attempt(_: int) -> requests.Response:
        return requests.post(f"{stack.api}/auth/login", json={"email": "brute@example.com", "password": "x"}, timeout=10)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(attempt, range(80)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    for response in limited:
        assert_envelope(response, 429, "RATE_LIMIT_ERROR")
    # nginx's per-IP limit (Retry-After 1) and, past 10 failures, the auth service's per-account
    # limit (Retry-After until its window ends) both answer 429.
    assert "1" in {r.headers["Retry-After"] for r in limited}
    assert all(1 <= int(r.headers["Retry-After"]) <= 900 for r in limited)
    assert {r.status_code for r in responses} <= {401, 429}


def test_cors_preflight_for_the_checkout(stack):
    response = requests.options(f"{stack.api}/payments/public", headers={"Origin": "http://127.0.0.1:3001", "Access-Control-Request-Method": "POST"}, timeout=5)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Api-Key" in response.headers["Access-Control-Allow-Headers"]


def test_service_refuses_requests_that_bypass_the_gateway(stack):
    # Straight to the auth service with a forged merchant header but no gateway secret.
    direct = f"http://127.0.0.1:{stack.env['AUTH_PORT']}/api/v1/merchant"
    response = requests.get(direct, headers={"X-Merchant-Id": "550e8400-e29b-41d4-a716-446655440000"}, timeout=5)
    assert_envelope(response, 401, "AUTHENTICATION_ERROR")


def test_slow_client_is_cut_off(stack):
    # A client that sends headers and then stalls on the body is disconnected after
    # client_body_timeout (10 s) instead of holding a connection forever.
    import socket
    import time

    port = int(stack.env["PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/payments/public HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        data = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:  # reset_timedout_connection: nginx resets instead of closing
                break
            if not chunk:
                break
            data += chunk
        waited = time.monotonic() - started
    assert 8 <= waited <= 20, waited
    assert not data or data.startswith(b"HTTP/1.1 408")
