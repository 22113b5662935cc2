"""Sessions, CSRF and redirects of the dashboard app (no gateway needed for these)."""

from __future__ import annotations

import pytest
from dashboard.security import LOGIN_CSRF_COOKIE
from flask import Flask
from flask.testing import FlaskClient

from dashboard import create_app


@pytest.fixture
def app() -> Flask:
    # Port 9 (discard) on loopback: nothing answers, so any gateway call fails fast.
    app = create_app({"GATEWAY_URL": "http://127.0.0.1:9", "TESTING": True})
    app.extensions["gateway"].base_url = "http://127.0.0.1:9/api/v1"
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def login_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/transactions", "/dashboard/webhooks", "/dashboard/docs"])
def test_pages_redirect_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={path}"


def test_background_json_answers_401_without_a_session(client: FlaskClient) -> None:
    response = client.get("/dashboard/api/payments")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "AUTHENTICATION_ERROR"


def test_login_form_csrf_lives_in_its_own_cookie_not_a_session(client: FlaskClient) -> None:
    response = client.get("/login")
    cookies = response.headers.getlist("Set-Cookie")
    assert any(c.startswith(LOGIN_CSRF_COOKIE + "=") and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
    assert not any(c.startswith("dashboard_session=") for c in cookies)


def test_login_post_without_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "a@b.c", "password": "x"})
    assert response.status_code == 400
    assert "did not come from the dashboard" in response.get_data(as_text=True)


def test_login_with_unreachable_gateway_shows_an_error_and_no_session(client: FlaskClient) -> None:
    token = login_token(client)
    response = client.post("/login", data={"email": "a@b.c", "password": "x", "csrf_token": token})
    assert response.status_code == 400
    assert "unreachable" in response.get_data(as_text=True)
    assert not any(c.startswith("dashboard_session=") for c in response.headers.getlist("Set-Cookie"))


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(app: Flask, target: str) -> None:
    from dashboard.security import safe_next

    with app.test_request_context():
        assert safe_next(target) == "/dashboard"


def test_login_names_the_browser_address_to_the_gateway_with_the_forward_secret() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, str]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(dict(self.headers))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"error": {"code": "RATE_LIMIT_ERROR", "description": "Too many failed logins"}}).encode()
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        app = create_app({"GATEWAY_URL": url, "TESTING": True, "DASHBOARD_FORWARD_SECRET": "fwd-secret"})
        app.extensions["gateway"].base_url = url + "/api/v1"
        client = app.test_client()
        token = login_token(client)
        response = client.post(
            "/login", data={"email": "a@b.c", "password": "x", "csrf_token": token}, environ_base={"REMOTE_ADDR": "203.0.113.9"}
        )
    finally:
        server.shutdown()
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)
    assert seen[0]["X-Real-IP"] == "203.0.113.9"
    assert seen[0]["X-Dashboard-Secret"] == "fwd-secret"
