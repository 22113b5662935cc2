"""The merchant dashboard in a real browser, against the whole running system."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from gateway_common.money import format_amount, format_amount_compact
from playwright.sync_api import Browser, Page, Playwright, expect

TEST_EMAIL = "test@example.com"
TEST_PASSWORD = "password123"
SESSION_COOKIE = "dashboard_session"
SHOTS = Path(os.environ.get("DASHBOARD_SHOTS_DIR", "/tmp/dashboard-shots"))
FINAL = {"success", "failed"}


# --- helpers -------------------------------------------------------------------------------------


def poll(check: Callable[[], Any], timeout: float = 20, message: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.25)


def create_payment(api: str, headers: dict[str, str], *, amount: int = 50000, vpa: str = "success@upi") -> dict:
    """Create an order and pay it with UPI; return the payment as created (pending)."""
    order = requests.post(f"{api}/orders", json={"amount": amount, "receipt": "dash"}, headers=headers, timeout=10)
    assert order.status_code == 201, order.text
    payment = requests.post(
        f"{api}/payments",
        json={"order_id": order.json()["id"], "method": "upi", "vpa": vpa},
        headers=headers,
        timeout=10,
    )
    assert payment.status_code == 201, payment.text
    return payment.json()


def wait_final(api: str, headers: dict[str, str], payment_id: str) -> dict:
    """Wait until the simulated bank has decided a payment; return it."""

    def final() -> dict | None:
        body = requests.get(f"{api}/payments/{payment_id}", headers=headers, timeout=10).json()
        return body if body["status"] in FINAL else None

    return poll(final, 30, f"payment {payment_id} to be final")


def wait_all_final(api: str, headers: dict[str, str]) -> None:
    """Wait until none of the merchant's payments is still at the bank (so stats stop moving)."""

    def settled() -> bool:
        for status in ("pending", "processing"):
            body = requests.get(f"{api}/payments", params={"status": status, "limit": 1}, headers=headers, timeout=10)
            if body.json()["total"]:
                return False
        return True

    poll(settled, 60, "every payment to be final")


def login(page: Page, dashboard: str, email: str = TEST_EMAIL, password: str = TEST_PASSWORD) -> None:
    """Log in through the form and land on the overview."""
    page.goto(f"{dashboard}/login")
    page.get_by_test_id("email-input").fill(email)
    page.get_by_test_id("password-input").fill(password)
    page.get_by_test_id("login-button").click()
    page.wait_for_url(f"{dashboard}/dashboard")


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of the page for people to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def session_cookie(page: Page) -> dict | None:
    """Return the dashboard's session cookie in this browser context, if any."""
    return next((c for c in page.context.cookies() if c["name"] == SESSION_COOKIE), None)


def assert_test_ids(page: Page, ids: list[str]) -> None:
    """Every data-test-id is on the page."""
    missing = [tid for tid in ids if page.locator(f'[data-test-id="{tid}"]').count() == 0]
    assert not missing, f"missing data-test-ids on {page.url}: {missing}"


@pytest.fixture(scope="module", autouse=True)
def _test_id_attribute(playwright_instance: Playwright) -> None:
    """Let ``get_by_test_id`` find this project's ``data-test-id`` attributes."""
    playwright_instance.selectors.set_test_id_attribute("data-test-id")


@pytest.fixture(scope="session")
def dashboard(stack: Any) -> str:
    """The dashboard origin of the running stack."""
    return stack.dashboard


@pytest.fixture
def logged_in(page: Page, dashboard: str) -> Page:
    """A page logged in as the seeded test merchant."""
    login(page, dashboard)
    return page


class Receiver:
    """A merchant's webhook endpoint on 127.0.0.1 that records requests and answers a settable status."""

    def __init__(self) -> None:
        self.status = 500
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(stack: Any, merchant: dict[str, str]) -> Iterator[Receiver]:
    """A webhook receiver; the test merchant's webhook URL is cleared afterwards."""
    server = Receiver()
    try:
        yield server
    finally:
        requests.put(f"{stack.api}/webhooks/config", json={"webhook_url": None}, headers=merchant, timeout=10)
        server.close()


# --- login, sessions, CSRF -----------------------------------------------------------------------


def test_login_page_and_successful_login_sets_a_safe_cookie(page: Page, dashboard: str) -> None:
    page.goto(f"{dashboard}/login")
    assert_test_ids(page, ["login-form", "email-input", "password-input", "login-button"])
    shot(page, "login")
    login(page, dashboard)
    expect(page.get_by_test_id("dashboard")).to_be_visible()
    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find(SESSION_COOKIE) == -1, "session cookie must not be readable by JS"


def test_wrong_password_shows_an_error_and_creates_no_session(page: Page, dashboard: str) -> None:
    page.goto(f"{dashboard}/login")
    page.get_by_test_id("email-input").fill(TEST_EMAIL)
    page.get_by_test_id("password-input").fill("wrong-password")
    page.get_by_test_id("login-button").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("Invalid email or password")
    assert "/login" in page.url
    assert session_cookie(page) is None
    page.goto(f"{dashboard}/dashboard")
    page.wait_for_url(re.compile(r".*/login\?next=.*"))


@pytest.mark.parametrize(
    "path", ["/dashboard", "/dashboard/transactions", "/dashboard/refunds", "/dashboard/webhooks", "/dashboard/docs"]
)
def test_pages_need_a_session(dashboard: str, path: str) -> None:
    response = requests.get(dashboard + path, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    api = requests.get(f"{dashboard}/dashboard/api/payments", allow_redirects=False, timeout=10)
    assert api.status_code == 401


def test_posts_without_the_csrf_token_are_refused(logged_in: Page, dashboard: str, stack: Any, merchant: dict) -> None:
    before = requests.get(f"{stack.api}/webhooks/config", headers=merchant, timeout=10).json()
    request = logged_in.context.request  # carries the logged-in session cookie
    no_token = request.post(
        f"{dashboard}/dashboard/webhooks/config", form={"webhook_url": "http://127.0.0.1:9/x"}, max_redirects=0
    )
    assert no_token.status == 400
    wrong_token = request.post(
        f"{dashboard}/dashboard/webhooks/config",
        form={"webhook_url": "http://127.0.0.1:9/x", "csrf_token": "forged"},
        max_redirects=0,
    )
    assert wrong_token.status == 400
    assert request.post(f"{dashboard}/logout", max_redirects=0).status == 400
    assert requests.get(f"{stack.api}/webhooks/config", headers=merchant, timeout=10).json() == before
    # A login form posted from elsewhere (no token) is refused too.
    assert (
        requests.post(
            f"{dashboard}/login", data={"email": TEST_EMAIL, "password": TEST_PASSWORD}, timeout=10
        ).status_code
        == 400
    )
    # The session still works: nothing above logged it out.
    logged_in.goto(f"{dashboard}/dashboard")
    expect(logged_in.get_by_test_id("dashboard")).to_be_visible()


def test_logout_revokes_the_session(browser: Browser, page: Page, dashboard: str) -> None:
    login(page, dashboard)
    stolen = session_cookie(page)
    page.get_by_test_id("logout-button").click()
    page.wait_for_url(re.compile(r".*/login.*"))
    assert session_cookie(page) is None
    # Replaying the old cookie does not work: the gateway revoked its token.
    context = browser.new_context()
    try:
        context.add_cookies([stolen])
        replay = context.new_page()
        replay.goto(f"{dashboard}/dashboard")
        replay.wait_for_url(re.compile(r".*/login.*"))
    finally:
        context.close()


# --- pages ---------------------------------------------------------------------------------------


def test_overview_shows_credentials_and_stats_from_the_api(
    logged_in: Page, dashboard: str, stack: Any, merchant: dict
) -> None:
    for vpa in ("success@upi", "success@upi", "failure@upi"):
        create_payment(stack.api, merchant, amount=12345, vpa=vpa)
    wait_all_final(stack.api, merchant)
    stats = requests.get(f"{stack.api}/payments/stats", params={"days": 14}, headers=merchant, timeout=10).json()
    page = logged_in
    page.goto(f"{dashboard}/dashboard")
    assert_test_ids(
        page,
        [
            "dashboard",
            "api-credentials",
            "api-key",
            "api-secret",
            "stats-container",
            "total-transactions",
            "total-amount",
            "success-rate",
        ],
    )
    expect(page.get_by_test_id("api-key")).to_have_text("key_test_abc123")
    expect(page.get_by_test_id("api-secret")).to_have_text("secret_test_xyz789")
    expect(page.get_by_test_id("total-transactions")).to_have_text(f"{stats['total_transactions']:,}")
    # Compact (₹1.2 L, ₹1,002.8 Cr) past a lakh, with the exact figure in Indian grouping on hover.
    expect(page.get_by_test_id("total-amount")).to_have_text(format_amount_compact(stats["total_amount"]))
    expect(page.get_by_test_id("total-amount")).to_have_attribute("title", format_amount(stats["total_amount"]))
    rate = page.get_by_test_id("success-rate").inner_text()
    assert float(rate.rstrip("%")) == pytest.approx(stats["success_rate"], abs=0.01)
    assert stats["failed_transactions"] >= 1 and stats["successful_transactions"] >= 2
    assert page.locator("svg.chart rect.bar").count() == 14
    shot(page, "overview")

    # Live: a new payment shows up in the stats without a reload.
    marker = page.evaluate("window.__marker = Math.random()")
    created = create_payment(stack.api, merchant, amount=777700, vpa="success@upi")
    wait_final(stack.api, merchant, created["id"])
    expect(page.get_by_test_id("total-transactions")).to_have_text(
        f"{stats['total_transactions'] + 1:,}", timeout=20_000
    )
    expect(page.get_by_test_id("total-amount")).to_have_attribute(
        "title", format_amount(stats["total_amount"] + 777700), timeout=20_000
    )
    expect(page.get_by_test_id("total-amount")).to_have_text(format_amount_compact(stats["total_amount"] + 777700))
    assert page.evaluate("window.__marker") == marker, "the page reloaded"


def test_transactions_list_filters_search_and_live_updates(
    logged_in: Page, dashboard: str, stack: Any, merchant: dict
) -> None:
    ok = wait_final(stack.api, merchant, create_payment(stack.api, merchant, amount=50000)["id"])
    bad = wait_final(stack.api, merchant, create_payment(stack.api, merchant, amount=25050, vpa="failure@upi")["id"])
    page = logged_in
    page.goto(f"{dashboard}/dashboard/transactions")
    expect(page.get_by_test_id("transactions-table")).to_be_visible()
    row = page.locator(f'[data-test-id="transaction-row"][data-payment-id="{ok["id"]}"]')
    expect(row.get_by_test_id("payment-id")).to_have_text(ok["id"])
    expect(row.get_by_test_id("order-id")).to_have_text(ok["order_id"])
    expect(row.get_by_test_id("amount")).to_have_text("₹500.00")
    expect(row.get_by_test_id("method")).to_have_text("upi")
    expect(row.get_by_test_id("status")).to_have_text("success")
    created_at = row.get_by_test_id("created-at").locator("time")
    assert created_at.get_attribute("datetime") == ok["created_at"]
    assert "T" not in created_at.inner_text(), "times are shown in the browser's locale, not raw ISO"
    # Newest first.
    first_ids = page.locator('[data-test-id="transaction-row"]').evaluate_all(
        "rows => rows.map(r => r.dataset.paymentId)"
    )
    assert first_ids.index(bad["id"]) < first_ids.index(ok["id"])
    shot(page, "transactions")

    page.get_by_test_id("status-filter").select_option("failed")
    page.get_by_test_id("apply-filters").click()
    expect(page.locator(f'[data-test-id="transaction-row"][data-payment-id="{bad["id"]}"]')).to_be_visible()
    statuses = page.locator('[data-test-id="transaction-row"] [data-test-id="status"]').all_inner_texts()
    assert statuses and set(statuses) == {"failed"}

    page.goto(f"{dashboard}/dashboard/transactions")
    page.get_by_test_id("search-input").fill(ok["order_id"])
    page.get_by_test_id("apply-filters").click()
    expect(page.locator('[data-test-id="transaction-row"]')).to_have_count(1)
    expect(page.locator('[data-test-id="transaction-row"]')).to_have_attribute("data-payment-id", ok["id"])

    # Live: a new payment appears, then turns final, without a reload.
    page.goto(f"{dashboard}/dashboard/transactions")
    marker = page.evaluate("window.__marker = Math.random()")
    fresh = create_payment(stack.api, merchant, amount=30000)
    fresh_row = page.locator(f'[data-test-id="transaction-row"][data-payment-id="{fresh["id"]}"]')
    expect(fresh_row).to_be_visible(timeout=20_000)
    expect(fresh_row.get_by_test_id("status")).to_have_text("success", timeout=20_000)
    assert page.evaluate("window.__marker") == marker, "the page reloaded"


def test_transactions_page_older_and_newer_by_cursor(page: Page, dashboard: str, stack: Any) -> None:
    # A merchant of its own, so its payments are the only ones listed.
    email = f"pager-{secrets.token_hex(4)}@example.com"
    password = "pw-" + secrets.token_hex(6)
    created = json.loads(stack.cli("auth.cli", "create-merchant", "--name", "Pager Merchant", "--email", email,
                                   "--password", password))
    headers = {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}
    for n in range(12):
        create_payment(stack.api, headers, amount=10000 + n)
    listed = requests.get(f"{stack.api}/payments", params={"limit": 100}, headers=headers, timeout=10).json()
    ids = [p["id"] for p in listed["data"]]  # newest first, as every page shows them
    assert len(ids) == 12
    login(page, dashboard, email, password)
    page.goto(f"{dashboard}/dashboard/transactions?limit=5")

    def shown(expected: list[str], summary: str) -> None:
        expect(page.get_by_test_id("transaction-row")).to_have_count(len(expected))
        rows = page.locator('[data-test-id="transaction-row"]').evaluate_all("rows => rows.map(r => r.dataset.paymentId)")
        assert rows == expected
        expect(page.locator("[data-live-summary]")).to_have_text(summary)

    shown(ids[:5], "1–5 of 12 payments")
    expect(page.get_by_test_id("prev-page")).to_have_count(0)
    # Older pages by cursor: the links name the last row shown, never an offset.
    page.get_by_test_id("next-page").click()
    page.wait_for_url(re.compile(rf"starting_after={ids[4]}"))
    assert "offset=" not in page.url
    shown(ids[5:10], "6–10 of 12 payments")
    page.get_by_test_id("next-page").click()
    shown(ids[10:], "11–12 of 12 payments")
    expect(page.get_by_test_id("next-page")).to_have_count(0)
    # And back to the newest, by the first row's id.
    page.get_by_test_id("prev-page").click()
    page.wait_for_url(re.compile(rf"ending_before={ids[10]}"))
    shown(ids[5:10], "6–10 of 12 payments")
    page.get_by_test_id("prev-page").click()
    shown(ids[:5], "1–5 of 12 payments")
    expect(page.get_by_test_id("prev-page")).to_have_count(0)
    # A payment made meanwhile goes to the top; the page read by cursor still shows the same rows.
    page.get_by_test_id("next-page").click()
    shown(ids[5:10], "6–10 of 12 payments")
    create_payment(stack.api, headers, amount=20000)
    page.reload()
    expect(page.locator("[data-live-summary]")).to_contain_text("of 13 payments")
    rows = page.locator('[data-test-id="transaction-row"]').evaluate_all("rows => rows.map(r => r.dataset.paymentId)")
    assert rows == ids[5:10]


def test_capture_and_refund_from_the_payment_page(logged_in: Page, dashboard: str, stack: Any, merchant: dict) -> None:
    payment = wait_final(stack.api, merchant, create_payment(stack.api, merchant, amount=100000)["id"])
    assert payment["status"] == "success"
    page = logged_in
    page.goto(f"{dashboard}/dashboard/transactions/{payment['id']}")
    expect(page.get_by_test_id("payment-detail")).to_be_visible()

    page.get_by_test_id("capture-button").click()
    expect(page.get_by_test_id("flash-success")).to_contain_text("captured")
    assert (
        requests.get(f"{stack.api}/payments/{payment['id']}", headers=merchant, timeout=10).json()["captured"] is True
    )

    page.get_by_test_id("refund-amount-input").fill("250.50")
    page.get_by_test_id("refund-reason-input").fill("Customer request")
    page.get_by_test_id("refund-button").click()
    expect(page.get_by_test_id("flash-success")).to_contain_text("₹250.50")
    refunds = requests.get(f"{stack.api}/payments/{payment['id']}/refunds", headers=merchant, timeout=10).json()["data"]
    assert [(r["amount"], r["reason"]) for r in refunds] == [(25050, "Customer request")]
    refund_id = refunds[0]["id"]
    expect(page.locator(f'[data-test-id="payment-refund-row"][data-refund-id="{refund_id}"]')).to_be_visible()
    shot(page, "payment")

    # More than what is left: the API's reason is shown and nothing is created.
    page.get_by_test_id("refund-amount-input").fill("900")
    page.get_by_test_id("refund-button").click()
    expect(page.get_by_test_id("flash-error")).to_contain_text("exceeds")
    assert (
        len(requests.get(f"{stack.api}/payments/{payment['id']}/refunds", headers=merchant, timeout=10).json()["data"])
        == 1
    )

    page.goto(f"{dashboard}/dashboard/refunds")
    assert_test_ids(page, ["refunds-table", "refund-row"])
    row = page.locator(f'[data-test-id="refund-row"][data-refund-id="{refund_id}"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("refund-amount")).to_have_text("₹250.50")
    poll(
        lambda: (
            requests.get(f"{stack.api}/refunds/{refund_id}", headers=merchant, timeout=10).json()["status"]
            == "processed"
        ),
        30,
        "the refund to be processed",
    )
    page.reload()
    expect(row.get_by_test_id("refund-status")).to_have_text("processed")
    shot(page, "refunds")


def test_webhook_settings_test_event_and_retry(
    logged_in: Page, dashboard: str, stack: Any, merchant: dict, receiver: Receiver
) -> None:
    page = logged_in
    page.goto(f"{dashboard}/dashboard/webhooks")
    assert_test_ids(
        page,
        [
            "webhook-config",
            "webhook-config-form",
            "webhook-url-input",
            "webhook-secret",
            "regenerate-secret-button",
            "save-webhook-button",
            "test-webhook-button",
            "webhook-logs-table",
        ],
    )
    page.get_by_test_id("webhook-url-input").fill(receiver.url)
    page.get_by_test_id("save-webhook-button").click()
    expect(page.get_by_test_id("flash-success")).to_contain_text("saved")
    expect(page.get_by_test_id("webhook-url-input")).to_have_value(receiver.url)
    assert (
        requests.get(f"{stack.api}/webhooks/config", headers=merchant, timeout=10).json()["webhook_url"] == receiver.url
    )

    old_secret = page.get_by_test_id("webhook-secret").inner_text()
    page.get_by_test_id("regenerate-secret-button").click()
    expect(page.get_by_test_id("flash-success")).to_be_visible()
    new_secret = page.get_by_test_id("webhook-secret").inner_text()
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    assert (
        requests.get(f"{stack.api}/webhooks/config", headers=merchant, timeout=10).json()["webhook_secret"]
        == new_secret
    )

    receiver.status = 500
    page.get_by_test_id("test-webhook-button").click()
    expect(page.get_by_test_id("flash-success")).to_be_visible()
    # The failed attempt shows up in the log without a reload.
    item = page.locator(
        '[data-test-id="webhook-log-item"]', has=page.locator('[data-test-id="webhook-event"]', has_text="webhook.test")
    ).first
    expect(item.get_by_test_id("webhook-response-code")).to_have_text("500", timeout=30_000)
    log_id = item.get_attribute("data-webhook-id")
    assert int(item.get_by_test_id("webhook-attempts").inner_text()) >= 1
    expect(item.get_by_test_id("webhook-last-attempt").locator("time")).to_have_count(1)
    shot(page, "webhooks")

    receiver.status = 200
    seen = len(receiver.requests)
    page.locator(f'[data-test-id="retry-webhook-button"][data-webhook-id="{log_id}"]').click()
    expect(page.get_by_test_id("flash-success")).to_contain_text("Retry scheduled")
    row = page.locator(f'[data-test-id="webhook-log-item"][data-webhook-id="{log_id}"]')
    expect(row.get_by_test_id("webhook-status")).to_have_text("success", timeout=30_000)
    expect(row.get_by_test_id("webhook-response-code")).to_have_text("200")
    assert len(receiver.requests) > seen

    # The verification code on the docs page accepts what the gateway really sent, and rejects tampering.
    headers, body = receiver.requests[-1]
    page.goto(f"{dashboard}/dashboard/docs")
    python_code = page.locator("#webhook-python pre").text_content()
    node_code = page.locator("#webhook-node pre").text_content()
    verdicts = run_python_snippet(python_code, new_secret, headers, body)
    assert verdicts == [True, True, False, False]
    verdicts = run_node_snippet(node_code, new_secret, headers, body)
    assert verdicts == [True, True, False, False]


def run_python_snippet(code: str, secret: str, headers: dict[str, str], body: bytes) -> list[bool]:
    """Run the docs' Python verifier on a real delivery (and a tampered copy)."""
    os.environ["WEBHOOK_SECRET"] = secret
    try:
        namespace: dict[str, Any] = {"__name__": "webhook_snippet"}
        exec(compile(code, "docs-webhook-python", "exec"), namespace)
    finally:
        del os.environ["WEBHOOK_SECRET"]
    v1, v2 = namespace["verify_signature"], namespace["verify_signature_v2"]
    sig, sig2 = headers["x-webhook-signature"], headers["x-webhook-signature-v2"]
    return [v1(body, sig), v2(body, sig2), v1(body + b" ", sig), v2(body + b" ", sig2)]


def run_node_snippet(code: str, secret: str, headers: dict[str, str], body: bytes) -> list[bool]:
    """Run the docs' Node verifier with node (express stubbed: it is not installed here)."""
    stub = (
        "const Module = require('module'); const load = Module._load;"
        "Module._load = function (r, ...a) { if (r === 'express') { const e = () => ({ post() {}, listen() {} });"
        " e.raw = () => null; return e; } return load.call(this, r, ...a); };\n"
    )
    check = (
        "\nconst input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const body = Buffer.from(input.body, 'base64'); const bad = Buffer.concat([body, Buffer.from(' ')]);"
        "process.stdout.write(JSON.stringify([verifySignature(body, input.sig), verifySignatureV2(body, input.sig2),"
        " verifySignature(bad, input.sig), verifySignatureV2(bad, input.sig2)]));\n"
    )

    payload = json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "sig": headers["x-webhook-signature"],
            "sig2": headers["x-webhook-signature-v2"],
        }
    )
    out = subprocess.run(
        ["node", "-e", stub + code + check],
        input=payload,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "WEBHOOK_SECRET": secret},
        check=True,
    )
    return json.loads(out.stdout)


def test_docs_page_snippets(logged_in: Page, dashboard: str, stack: Any) -> None:
    page = logged_in
    page.goto(f"{dashboard}/dashboard/docs")
    assert_test_ids(
        page,
        [
            "api-docs",
            "section-create-order",
            "code-snippet-create-order",
            "section-sdk-integration",
            "code-snippet-sdk",
            "section-webhook-verification",
            "code-snippet-webhook",
        ],
    )
    sdk = page.get_by_test_id("code-snippet-sdk").text_content()
    assert f"{stack.checkout}/checkout.js" in sdk
    assert "new PaymentGateway" in sdk and "key_test_abc123" in sdk
    shot(page, "docs")
    # The Python create-order snippet works against this gateway as written.
    code = page.locator("#order-python pre").text_content()
    namespace: dict[str, Any] = {"__name__": "order_snippet"}
    exec(compile(code, "docs-create-order", "exec"), namespace)
    assert namespace["order"]["id"].startswith("order_")
    assert namespace["order"]["amount"] == 50000


def test_docs_page_lists_every_test_instrument_and_control(logged_in: Page, dashboard: str) -> None:
    from gateway_common.http.controls import DELAY_HEADER, OUTCOME_HEADER
    from payments import bank

    page = logged_in
    page.goto(f"{dashboard}/dashboard/docs")
    expect(page.get_by_test_id("section-test-controls")).to_be_visible()
    rows = {
        row.get_attribute("data-instrument"): [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.get_by_test_id("test-instrument").all()
    }
    # Every instrument the bank knows, with the code and description a failed payment carries.
    for vpa in (*bank.SUCCESS_VPAS, *bank.FAILURE_VPAS):
        assert vpa in rows, vpa
        expected = "success" if vpa in bank.SUCCESS_VPAS else "failed"
        assert rows[vpa][2] == expected
    for vpa in bank.FAILURE_VPAS:
        assert rows[vpa][3:] == ["PAYMENT_FAILED", bank.ERROR_DESCRIPTIONS["PAYMENT_FAILED"]]
    for number, code in bank.DECLINE_CARDS.items():
        assert rows[number] == ["Card", number, "failed", code, bank.ERROR_DESCRIPTIONS[code]], number
    for number in bank.AUTHENTICATION_CARDS:
        assert rows[number][2].startswith("3-D Secure") and bank.AUTHENTICATION_OTP in rows[number][2], number
        assert rows[number][3] == "AUTHENTICATION_FAILED, AUTHENTICATION_CANCELLED, AUTHENTICATION_TIMEOUT"
    headers = [row.get_attribute("data-header") for row in page.get_by_test_id("test-control").all()]
    assert headers == [OUTCOME_HEADER, DELAY_HEADER]
    clock = page.get_by_test_id("test-clock").inner_text()
    assert all(route in clock for route in ("/test/clock/advance", "/test/clock", "/test/clock/reset")), clock
    shot(page, "docs-test-controls")


# --- isolation -----------------------------------------------------------------------------------


def test_a_second_merchant_never_sees_the_first_ones_data(
    page: Page, dashboard: str, stack: Any, merchant: dict, other_merchant: dict, other_merchant_login: tuple[str, str]
) -> None:
    mine = wait_final(stack.api, merchant, create_payment(stack.api, merchant, amount=43210)["id"])
    refund = requests.post(
        f"{stack.api}/payments/{mine['id']}/refunds", json={"amount": 100}, headers=merchant, timeout=10
    )
    assert refund.status_code == 201, refund.text
    theirs = wait_final(stack.api, other_merchant, create_payment(stack.api, other_merchant, amount=11100)["id"])

    email, password = other_merchant_login
    login(page, dashboard, email, password)
    expect(page.get_by_test_id("api-key")).not_to_have_text("key_test_abc123")
    expect(page.get_by_test_id("api-secret")).not_to_contain_text("secret_test_xyz789")
    stats = requests.get(f"{stack.api}/payments/stats", params={"days": 14}, headers=other_merchant, timeout=10).json()
    expect(page.get_by_test_id("total-transactions")).to_have_text(f"{stats['total_transactions']:,}")

    page.goto(f"{dashboard}/dashboard/transactions")
    expect(page.locator(f'[data-payment-id="{theirs["id"]}"]')).to_be_visible()
    assert page.locator(f'[data-payment-id="{mine["id"]}"]').count() == 0
    page.goto(f"{dashboard}/dashboard/transactions?q={mine['id']}")
    expect(page.locator('[data-test-id="transaction-row"]')).to_have_count(0)

    response = page.goto(f"{dashboard}/dashboard/transactions/{mine['id']}")
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("error-page")).to_be_visible()

    page.goto(f"{dashboard}/dashboard/refunds")
    assert page.locator(f'[data-refund-id="{refund.json()["id"]}"]').count() == 0
    page.goto(f"{dashboard}/dashboard/webhooks")
    expect(page.get_by_test_id("webhook-secret")).not_to_have_text("whsec_test_abc123")

    # Actions on the first merchant's payment are refused as unknown.
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    refused = page.context.request.post(
        f"{dashboard}/dashboard/transactions/{mine['id']}/refunds",
        form={"csrf_token": token, "amount": "1.00"},
        max_redirects=0,
    )
    assert refused.status == 404
    assert (
        len(requests.get(f"{stack.api}/payments/{mine['id']}/refunds", headers=merchant, timeout=10).json()["data"])
        == 1
    )


def test_expired_gateway_session_goes_back_to_login(page: Page, dashboard: str, stack: Any) -> None:
    login(page, dashboard)
    signer = Flask("reader")
    signer.secret_key = stack.env["DASHBOARD_SECRET_KEY"]
    token = signer.session_interface.get_signing_serializer(signer).loads(session_cookie(page)["value"])["token"]
    # The gateway forgets the token (as when it expires); the dashboard notices on the next call.
    revoked = requests.post(f"{stack.api}/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert revoked.status_code == 200
    page.goto(f"{dashboard}/dashboard/transactions")
    page.wait_for_url(re.compile(r".*/login\?expired=1.*"))
    expect(page.get_by_test_id("login-form")).to_contain_text("session expired")
    assert session_cookie(page) is None


def test_rotating_keys_shows_the_new_secret_once(page: Page, dashboard: str, stack: Any) -> None:
    email, password = f"rotate-{int(time.time() * 1000)}@example.com", "rotate-password-1"
    created = json.loads(
        stack.cli("auth.cli", "create-merchant", "--name", "Rotate Co", "--email", email, "--password", password)
    )
    old = {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}
    login(page, dashboard, email, password)
    expect(page.get_by_test_id("api-key")).to_have_text(created["api_key"])
    assert created["api_secret"] not in page.get_by_test_id("api-secret").inner_text()
    page.locator("summary", has_text="Rotate keys").click()
    page.get_by_test_id("rotate-keys-button").click()
    new_key = page.get_by_test_id("new-api-key").inner_text()
    new_secret = page.get_by_test_id("new-api-secret").inner_text()
    assert new_key != created["api_key"]
    expect(page.get_by_test_id("api-key")).to_have_text(new_key)
    new = {"X-Api-Key": new_key, "X-Api-Secret": new_secret}
    assert requests.get(f"{stack.api}/payments", headers=new, timeout=10).status_code == 200
    poll(
        lambda: requests.get(f"{stack.api}/payments", headers=old, timeout=10).status_code == 401,
        15,
        "the old key to stop working",
    )
    page.goto(f"{dashboard}/dashboard")
    assert page.get_by_test_id("new-api-secret").count() == 0
