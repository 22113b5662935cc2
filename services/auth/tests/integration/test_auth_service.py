"""The auth service on a real PostgreSQL database, through its Flask app."""

from __future__ import annotations

import base64
import dataclasses
import uuid

import psycopg
import pytest
from auth import create_app, service
from auth.models import TEST_API_KEY, TEST_API_SECRET, TEST_MERCHANT_ID
from gateway_common.config import Settings
from gateway_common.db import Database, PoolSettings
from gateway_common.errors import AuthenticationError, BadRequestError
from gateway_common.secretbox import SecretBox, new_key

GATEWAY = {"X-Gateway-Secret": "test-gateway-secret"}


@pytest.fixture(scope="module")
def db(app) -> Database:
    return app.extensions["db"]


@pytest.fixture(scope="module")
def box(app) -> SecretBox:
    return app.extensions["secret_box"]


def test_seed_is_idempotent_and_stores_only_hashes(app, db, box, database_url):
    assert service.seed_test_merchant(db, box) is False
    conn = psycopg.connect(database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT password_hash FROM auth.merchants WHERE id = %s", (TEST_MERCHANT_ID,))
        (password_hash,) = cur.fetchone()
        cur.execute("SELECT secret_hash FROM auth.api_keys WHERE api_key = %s", (TEST_API_KEY,))
        (secret_hash,) = cur.fetchone()
        cur.execute("SELECT count(*) FROM auth.merchants WHERE id = %s", (TEST_MERCHANT_ID,))
        (count,) = cur.fetchone()
    conn.close()
    assert count == 1
    assert "password123" not in password_hash
    assert TEST_API_SECRET not in secret_hash


def test_verify_accepts_the_key_and_secret_and_names_the_merchant(app):
    client = app.test_client()
    ok = client.get("/internal/verify", headers={**GATEWAY, "X-Api-Key": TEST_API_KEY, "X-Api-Secret": TEST_API_SECRET})
    assert ok.status_code == 200
    assert ok.headers["X-Merchant-Id"] == TEST_MERCHANT_ID
    for headers in (
        {"X-Api-Key": TEST_API_KEY, "X-Api-Secret": "wrong"},
        {"X-Api-Key": "key_unknown", "X-Api-Secret": TEST_API_SECRET},
        {"X-Api-Key": TEST_API_KEY},
        {},
        {"Authorization": "Bearer sess_not_a_token"},
    ):
        denied = client.get("/internal/verify", headers={**GATEWAY, **headers})
        assert denied.status_code == 401
        assert denied.json["error"]["code"] == "AUTHENTICATION_ERROR"
        assert "X-Merchant-Id" not in denied.headers


def test_verify_refuses_callers_without_the_gateway_secret(app):
    client = app.test_client()
    response = client.get("/internal/verify", headers={"X-Api-Key": TEST_API_KEY, "X-Api-Secret": TEST_API_SECRET})
    assert response.status_code == 401


def test_login_session_verify_and_logout(app):
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"email": "TEST@example.com", "password": "password123"}, headers=GATEWAY)
    assert login.status_code == 200
    token = login.json["token"]
    verified = client.get("/internal/verify", headers={**GATEWAY, "Authorization": f"Bearer {token}"})
    assert verified.headers["X-Merchant-Id"] == TEST_MERCHANT_ID
    logout = client.post(
        "/api/v1/auth/logout", headers={**GATEWAY, "X-Merchant-Id": TEST_MERCHANT_ID, "Authorization": f"Bearer {token}"}
    )
    assert logout.status_code == 200
    assert client.get("/internal/verify", headers={**GATEWAY, "Authorization": f"Bearer {token}"}).status_code == 401


def test_wrong_email_and_wrong_password_answer_alike(app):
    client = app.test_client()
    a = client.post("/api/v1/auth/login", json={"email": "test@example.com", "password": "nope"}, headers=GATEWAY)
    b = client.post("/api/v1/auth/login", json={"email": "ghost@example.com", "password": "password123"}, headers=GATEWAY)
    assert a.status_code == b.status_code == 401
    assert a.json == b.json


def test_created_merchants_are_isolated_and_keys_rotate(app, db, box):
    created = service.create_merchant(db, box, "Second", "second@example.com", "longpassword")
    assert created["api_secret"].startswith("secret_")
    with pytest.raises(BadRequestError):
        service.create_merchant(db, box, "Dup", "second@example.com", "longpassword")
    assert service.verify_api_key(db, created["api_key"], created["api_secret"]) == created["id"]
    with pytest.raises(AuthenticationError):
        service.verify_api_key(db, created["api_key"], TEST_API_SECRET)
    new_key, new_secret = service.rotate_api_key(db, box, created["id"])
    with pytest.raises(AuthenticationError):
        service.verify_api_key(db, created["api_key"], created["api_secret"])
    assert service.verify_api_key(db, new_key, new_secret) == created["id"]
    client = app.test_client()
    profile = client.get("/api/v1/merchant", headers={**GATEWAY, "X-Merchant-Id": created["id"]})
    assert profile.json["api_key"] == new_key
    assert new_secret not in profile.get_data(as_text=True)
    assert profile.json["api_secret_hint"].endswith(new_secret[-4:])


def _stored_secret(database_url: str, api_key: str) -> str | None:
    conn = psycopg.connect(database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT secret_encrypted FROM auth.api_keys WHERE api_key = %s", (api_key,))
        (stored,) = cur.fetchone()
    conn.close()
    return stored


def test_api_secrets_are_kept_encrypted_and_recoverable(db, box, database_url):
    created = service.create_merchant(db, box, "Recoverable", f"rec-{uuid.uuid4().hex[:8]}@example.com", "longpassword")
    stored = _stored_secret(database_url, created["api_key"])
    assert stored and created["api_secret"] not in stored
    assert box.decrypt(stored) == created["api_secret"]
    # Another server key opens nothing: the column alone does not reveal the secret.
    assert SecretBox(new_key()).decrypt(stored) is None
    new_key_id, new_secret = service.rotate_api_key(db, box, created["id"])
    assert box.decrypt(_stored_secret(database_url, new_key_id)) == new_secret
    assert box.decrypt(_stored_secret(database_url, TEST_API_KEY)) == TEST_API_SECRET


def test_seed_recovers_the_test_merchants_secret_after_the_migration_or_a_new_server_key(db, box, database_url):
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        # What the migration leaves for a key created before secrets were kept.
        cur.execute("UPDATE auth.api_keys SET secret_encrypted = NULL WHERE api_key = %s", (TEST_API_KEY,))
    service.seed_test_merchant(db, box)
    assert box.decrypt(_stored_secret(database_url, TEST_API_KEY)) == TEST_API_SECRET
    other = SecretBox(new_key())
    service.seed_test_merchant(db, other)
    assert other.decrypt(_stored_secret(database_url, TEST_API_KEY)) == TEST_API_SECRET
    service.seed_test_merchant(db, box)
    assert box.decrypt(_stored_secret(database_url, TEST_API_KEY)) == TEST_API_SECRET
    conn.close()


def test_verify_accepts_http_basic_key_id_and_secret(app):
    client = app.test_client()

    def basic(value: str) -> dict:
        return {**GATEWAY, "Authorization": "Basic " + base64.b64encode(value.encode()).decode()}

    ok = client.get("/internal/verify", headers=basic(f"{TEST_API_KEY}:{TEST_API_SECRET}"))
    assert ok.status_code == 200
    assert ok.headers["X-Merchant-Id"] == TEST_MERCHANT_ID
    for value in (f"{TEST_API_KEY}:wrong", f"key_unknown:{TEST_API_SECRET}", TEST_API_KEY, f"{TEST_API_KEY}:", ":"):
        denied = client.get("/internal/verify", headers=basic(value))
        assert denied.status_code == 401, value
        assert "X-Merchant-Id" not in denied.headers
    garbage = client.get("/internal/verify", headers={**GATEWAY, "Authorization": "Basic !!not-base64!!"})
    assert garbage.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/merchant"),
        ("post", "/api/v1/merchant/rotate-keys"),
        ("get", "/api/v1/test/merchant"),
        ("get", "/internal/verify"),
    ],
)
def test_every_auth_route_refuses_callers_without_the_gateway_secret(app, method, path):
    client = app.test_client()
    for headers in ({}, {"X-Gateway-Secret": "wrong"}):
        response = getattr(client, method)(
            path,
            json={"email": "test@example.com", "password": "password123"},
            headers={**headers, "X-Merchant-Id": TEST_MERCHANT_ID, "X-Api-Key": TEST_API_KEY, "X-Api-Secret": TEST_API_SECRET},
        )
        assert response.status_code == 401, (path, response.json)
        assert response.json["error"]["code"] == "AUTHENTICATION_ERROR"
        assert "token" not in response.json


def test_test_merchant_is_not_found_outside_test_mode(app, service_env):
    assert app.test_client().get("/api/v1/test/merchant", headers=GATEWAY).status_code == 200
    strict = create_app(dataclasses.replace(Settings.from_env("auth"), test_mode=False, db_pool=PoolSettings(max_size=1)))
    response = strict.test_client().get("/api/v1/test/merchant", headers=GATEWAY)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "NOT_FOUND_ERROR"


def _login(client, email: str, password: str):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password}, headers=GATEWAY)


@pytest.fixture
def account(db, box) -> str:
    email = f"throttle-{uuid.uuid4().hex[:10]}@example.com"
    service.create_merchant(db, box, "Throttled", email, "rightpassword")
    return email


def test_ten_failures_for_one_account_throttle_even_the_right_password(app, account):
    client = app.test_client()
    for _ in range(10):
        assert _login(client, account, "wrongpassword").status_code == 401
    # Another spelling of the same account is the same account.
    throttled = _login(client, account.upper(), "rightpassword")
    assert throttled.status_code == 429
    assert throttled.json["error"]["code"] == "RATE_LIMIT_ERROR"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 900
    assert "token" not in throttled.json
    # Other accounts are not affected.
    assert _login(client, "test@example.com", "password123").status_code == 200


def test_unknown_emails_are_throttled_the_same_way(app):
    client = app.test_client()
    ghost = f"ghost-{uuid.uuid4().hex[:10]}@example.com"
    answers = [_login(client, ghost, "whatever1") for _ in range(11)]
    assert [a.status_code for a in answers] == [401] * 10 + [429]
    assert answers[-1].json["error"]["code"] == "RATE_LIMIT_ERROR"
    assert "Retry-After" in answers[-1].headers


def test_a_success_takes_back_only_its_own_attempt(app, account):
    client = app.test_client()
    for _ in range(9):
        assert _login(client, account, "wrongpassword").status_code == 401
    assert _login(client, account, "rightpassword").status_code == 200
    # The nine failures still count: one more failure uses up the window's ten.
    assert _login(client, account, "wrongpassword").status_code == 401
    assert _login(client, account, "rightpassword").status_code == 429


def test_the_window_ends(app, db, account):
    client = app.test_client()
    for _ in range(11):
        _login(client, account, "wrongpassword")
    assert _login(client, account, "rightpassword").status_code == 429
    with db.transaction() as tx:
        tx.cursor.execute("UPDATE auth.login_failures SET window_start = now() - interval '16 minutes'")
    assert _login(client, account, "rightpassword").status_code == 200
