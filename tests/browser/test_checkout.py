"""The hosted checkout page and the checkout.js SDK, driven through headless Chromium."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Frame, FrameLocator, Page, Request, expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SHOTS = Path("/tmp/checkout-shots")
TEST_KEY = "key_test_abc123"
FINAL_TIMEOUT_MS = 30_000  # processing delay + one 2 s poll, with room for a busy machine
PAYMENT_ID = re.compile(r"^pay_[A-Za-z0-9]{16}$")


# ---------------------------------------------------------------- helpers


def shot(page: Page, name: str) -> None:
    """Save a screenshot of the current state for a human to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def by_id(test_id: str) -> str:
    """Return the selector of a data-test-id."""
    return f'[data-test-id="{test_id}"]'


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """Fail a test whose pages throw or trip the content security policy."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

    def on_console(message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"CSP: {message.text}")

    page.on("console", on_console)
    yield
    assert problems == []


@pytest.fixture
def create_order(stack, merchant) -> Callable[..., str]:
    """Create an order as the test merchant and return its id."""

    def create(amount: int = 50000) -> str:
        body = {"amount": amount, "currency": "INR", "receipt": f"rcpt_{secrets.token_hex(4)}"}
        response = requests.post(f"{stack.api}/orders", json=body, headers=merchant, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return create


@pytest.fixture
def open_checkout(stack, page: Page) -> Callable[..., Page]:
    """Open the hosted checkout page for an order on a phone-sized screen."""

    def open_(order_id: str, key: str = TEST_KEY) -> Page:
        page.set_viewport_size({"width": 400, "height": 860})
        page.goto(f"{stack.checkout}/checkout?order_id={order_id}&key={key}")
        return page

    return open_


def payment_posts(page: Page) -> list[Request]:
    """Record every payment creation the page sends from now on."""
    seen: list[Request] = []

    def record(request: Request) -> None:
        if request.method == "POST" and "/payments" in request.url:
            seen.append(request)

    page.on("request", record)
    return seen


def pay_upi(scope: Page | Frame | FrameLocator, vpa: str) -> None:
    """Choose UPI, enter the VPA and pay."""
    scope.locator(by_id("method-upi")).click()
    scope.locator(by_id("vpa-input")).fill(vpa)
    scope.locator(by_id("pay-button")).click()


def fill_card(
    scope: Page | FrameLocator, number: str, expiry: str = "12/30", cvv: str = "123", name: str = "John Doe"
) -> None:
    """Choose card and fill in the card form."""
    scope.locator(by_id("method-card")).click()
    scope.locator(by_id("card-number-input")).fill(number)
    scope.locator(by_id("expiry-input")).fill(expiry)
    scope.locator(by_id("cvv-input")).fill(cvv)
    scope.locator(by_id("cardholder-name-input")).fill(name)


def payment_status(stack, merchant, payment_id: str) -> str:
    """Return the payment's status as the merchant API reports it."""
    response = requests.get(f"{stack.api}/payments/{payment_id}", headers=merchant, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["status"]


# ---------------------------------------------------------------- hosted page


def test_hosted_page_shows_every_element_of_the_contract(create_order, open_checkout) -> None:
    order_id = create_order(50000)
    page = open_checkout(order_id)

    for test_id in (
        "checkout-container",
        "order-summary",
        "order-amount",
        "order-id",
        "payment-methods",
        "method-upi",
        "method-card",
    ):
        expect(page.locator(by_id(test_id))).to_be_visible()
    expect(page.locator(by_id("order-amount"))).to_have_text("₹500.00")
    expect(page.locator(by_id("order-id"))).to_have_text(order_id)
    expect(page.locator(by_id("method-upi"))).to_have_attribute("data-method", "upi")
    expect(page.locator(by_id("method-card"))).to_have_attribute("data-method", "card")
    for test_id in ("processing-state", "success-state", "error-state"):
        expect(page.locator(by_id(test_id))).to_have_count(1)
        expect(page.locator(by_id(test_id))).to_be_hidden()
    shot(page, "01-method-choice")

    page.locator(by_id("method-upi")).click()
    for test_id in ("upi-form", "vpa-input", "pay-button"):
        expect(page.locator(by_id(test_id))).to_be_visible()
    expect(page.locator(by_id("pay-button"))).to_have_text("Pay ₹500.00")
    expect(page.locator(by_id("vpa-input"))).to_be_focused()
    shot(page, "02-upi-form")

    page.locator(by_id("method-card")).click()
    expect(page.locator(by_id("upi-form"))).to_have_count(0)
    for test_id in (
        "card-form",
        "card-number-input",
        "expiry-input",
        "cvv-input",
        "cardholder-name-input",
        "pay-button",
    ):
        expect(page.locator(by_id(test_id))).to_be_visible()
    expect(page.locator(by_id("expiry-input"))).to_have_attribute("placeholder", "MM/YY")
    # Every input has a visible label, so the form works with a screen reader and the keyboard.
    for test_id in ("card-number-input", "expiry-input", "cvv-input", "cardholder-name-input"):
        input_id = page.locator(by_id(test_id)).get_attribute("id")
        expect(page.locator(f'label[for="{input_id}"]')).to_be_visible()
    shot(page, "03-card-form")


def test_upi_payment_reaches_success(stack, merchant, create_order, open_checkout) -> None:
    order_id = create_order()
    page = open_checkout(order_id)
    pay_upi(page, "success@upi")

    expect(page.locator(by_id("processing-state"))).to_be_visible()
    expect(page.locator(by_id("processing-message"))).to_have_text("Processing payment...")
    shot(page, "04-processing")

    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    expect(page.locator(by_id("success-message"))).to_have_text("Your payment has been processed successfully")
    payment_id = page.locator(by_id("payment-id")).inner_text()
    assert PAYMENT_ID.match(payment_id)
    assert payment_status(stack, merchant, payment_id) == "success"
    shot(page, "05-success")

    # The full-page result URL shows the same final state.
    page.goto(f"{stack.checkout}/success?payment_id={payment_id}")
    expect(page.locator(by_id("success-state"))).to_be_visible()
    expect(page.locator(by_id("payment-id"))).to_have_text(payment_id)
    expect(page.locator(by_id("order-id"))).to_have_text(order_id)
    expect(page.locator(by_id("order-amount"))).to_have_text("₹500.00")
    shot(page, "06-success-page")

    # A paid order cannot be paid again, and the page says so.
    open_checkout(order_id)
    expect(page.get_by_text("This order is already paid")).to_be_visible()
    expect(page.locator(by_id("payment-methods"))).to_be_hidden()
    shot(page, "07-already-paid")


def test_hosted_page_pays_with_only_the_order_id(stack, merchant, create_order, page: Page) -> None:
    """The link UI.md documents, /checkout?order_id=, needs no key: the order names its merchant."""
    order_id = create_order(25000)
    page.set_viewport_size({"width": 400, "height": 860})
    posts = payment_posts(page)
    page.goto(f"{stack.checkout}/checkout?order_id={order_id}")
    expect(page.locator(by_id("order-amount"))).to_have_text("₹250.00")
    pay_upi(page, "success@upi")

    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    payment_id = page.locator(by_id("payment-id")).inner_text()
    assert payment_status(stack, merchant, payment_id) == "success"
    assert len(posts) == 1
    assert "key" not in posts[0].post_data_json and "x-api-key" not in posts[0].headers
    shot(page, "05b-success-order-id-only")


def test_card_payment_reaches_success(stack, merchant, create_order, open_checkout) -> None:
    order_id = create_order(123456)
    page = open_checkout(order_id)
    posts = payment_posts(page)
    fill_card(page, "4111111111111111", expiry="1230")
    expect(page.locator(by_id("card-number-input"))).to_have_value("4111 1111 1111 1111")
    expect(page.locator(by_id("expiry-input"))).to_have_value("12/30")
    expect(page.locator(by_id("order-amount"))).to_have_text("₹1,234.56")
    page.locator(by_id("cardholder-name-input")).press("Enter")  # Enter submits the form

    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    payment_id = page.locator(by_id("payment-id")).inner_text()
    assert payment_status(stack, merchant, payment_id) == "success"
    assert len(posts) == 1
    sent = posts[0].post_data_json
    assert sent["method"] == "card"
    assert sent["card"] == {
        "number": "4111111111111111",
        "expiry_month": "12",
        "expiry_year": "2030",
        "cvv": "123",
        "holder_name": "John Doe",
    }
    # Once sent, the card number and CVV are gone from the page.
    assert page.locator(by_id("card-form")).evaluate("f => f.elements.number.value + f.elements.cvv.value") == ""
    shot(page, "08-card-success")


def test_failed_upi_payment_shows_the_error_and_try_again_starts_over(stack, create_order, open_checkout) -> None:
    order_id = create_order()
    page = open_checkout(order_id)
    pay_upi(page, "failure@upi")

    expect(page.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    expect(page.locator(by_id("error-message"))).to_have_text("Payment could not be processed")
    expect(page.locator(by_id("retry-button"))).to_have_text("Try Again")
    expect(page.locator("#error-detail")).not_to_be_empty()
    failed_id = page.locator("#error-payment-id").inner_text()
    assert PAYMENT_ID.match(failed_id)
    shot(page, "09-error")

    page.locator(by_id("retry-button")).click()
    expect(page.locator(by_id("error-state"))).to_be_hidden()
    expect(page.locator(by_id("payment-methods"))).to_be_visible()
    expect(page.locator(by_id("vpa-input"))).to_have_value("")
    pay_upi(page, "success@upi")
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    assert page.locator(by_id("payment-id")).inner_text() != failed_id

    page.goto(f"{stack.checkout}/failure?payment_id={failed_id}")
    expect(page.locator(by_id("error-state"))).to_be_visible()
    expect(page.locator(by_id("error-message"))).to_have_text("Payment could not be processed")
    shot(page, "10-failure-page")
    # From the result page, "Try Again" goes back to the order's checkout (paid by now).
    page.locator(by_id("retry-button")).click()
    page.wait_for_url(f"{stack.checkout}/checkout?order_id={order_id}")
    expect(page.get_by_text("This order is already paid")).to_be_visible()


def test_a_payment_resent_after_a_lost_answer_is_not_made_twice(stack, merchant, create_order, open_checkout) -> None:
    order_id = create_order()
    page = open_checkout(order_id)
    lost_keys: list[str] = []

    def lose_the_answer(route) -> None:
        lost_keys.append(route.request.headers["idempotency-key"])
        route.fetch()  # the gateway gets the request and creates the payment...
        route.abort()  # ...but the answer never reaches the page

    page.route("**/api/v1/payments/public", lose_the_answer)
    pay_upi(page, "success@upi")
    expect(page.locator(by_id("error-state"))).to_be_visible()
    expect(page.locator("#error-detail")).to_contain_text("could not reach")
    page.unroute("**/api/v1/payments/public")

    posts = payment_posts(page)
    page.locator(by_id("retry-button")).click()
    pay_upi(page, "success@upi")
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    assert [post.headers["idempotency-key"] for post in posts] == lost_keys
    listed = requests.get(f"{stack.api}/payments?limit=100", headers=merchant, timeout=10).json()["data"]
    assert [p["id"] for p in listed if p["order_id"] == order_id] == [page.locator(by_id("payment-id")).inner_text()]


def test_declined_card_shows_the_bank_reason(stack, merchant, create_order, open_checkout) -> None:
    page = open_checkout(create_order())
    fill_card(page, "4000000000000002")
    page.locator(by_id("pay-button")).click()

    expect(page.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    payment_id = page.locator("#error-payment-id").inner_text()
    public = requests.get(f"{stack.api}/payments/{payment_id}/public", timeout=10).json()
    assert public["error_code"] == "CARD_DECLINED"
    expect(page.locator("#error-detail")).to_have_text(public["error_description"])


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("card-number-input", {"number": "4111111111111112"}),  # fails Luhn
        ("card-number-input", {"number": "4111"}),  # too short
        ("expiry-input", {"expiry": "01/20"}),  # in the past
        ("expiry-input", {"expiry": "13/30"}),  # no such month
        ("cvv-input", {"cvv": "12"}),
        ("cardholder-name-input", {"name": ""}),
    ],
)
def test_card_form_rejects_bad_input_before_sending_anything(create_order, open_checkout, field, values) -> None:
    page = open_checkout(create_order())
    posts = payment_posts(page)
    card = {"number": "4111111111111111", "expiry": "12/30", "cvv": "123", "name": "John Doe", **values}
    fill_card(page, card["number"], card["expiry"], card["cvv"], card["name"])
    page.locator(by_id("pay-button")).click()

    error = page.locator(f".field:has({by_id(field)}) {by_id('validation-error')}")
    expect(error).to_be_visible()
    expect(page.locator(by_id(field))).to_be_focused()
    expect(page.locator(by_id("processing-state"))).to_be_hidden()
    if field == "card-number-input" and values["number"].endswith("2"):
        shot(page, "11-validation-card")
    # Fixing the field clears its message.
    page.locator(by_id(field)).fill(
        {"card-number-input": "4111111111111111", "expiry-input": "12/30", "cvv-input": "123"}.get(field, "Jane Doe")
    )
    expect(error).to_have_count(0)
    assert posts == []


@pytest.mark.parametrize("vpa", ["not-a-vpa", "user@", "@bank", "user@bank.com", "us er@bank"])
def test_upi_form_rejects_a_bad_vpa_before_sending_anything(create_order, open_checkout, vpa) -> None:
    page = open_checkout(create_order())
    posts = payment_posts(page)
    pay_upi(page, vpa)

    error = page.locator(f".field:has({by_id('vpa-input')}) {by_id('validation-error')}")
    expect(error).to_be_visible()
    expect(error).to_contain_text("UPI ID")
    if vpa == "not-a-vpa":
        shot(page, "12-validation-upi")
    assert posts == []


def test_unknown_order_and_broken_links_get_a_clear_message(stack, open_checkout, page: Page) -> None:
    open_checkout("order_doesnotexist0001")
    expect(page.get_by_text("Order not found")).to_be_visible()
    expect(page.locator(by_id("order-id"))).to_have_text("order_doesnotexist0001")
    expect(page.locator(by_id("payment-methods"))).to_be_hidden()
    shot(page, "13-unknown-order")

    page.goto(f"{stack.checkout}/checkout")
    expect(page.get_by_text("This payment link is incomplete")).to_be_visible()

    page.goto(f"{stack.checkout}/success?payment_id=pay_doesnotexist0001")
    expect(page.get_by_text("Payment not found")).to_be_visible()


# ---------------------------------------------------------------- checkout.js on a merchant's site

MERCHANT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo store</title></head>
<body>
  <h1>Demo store</h1>
  <p>A merchant's own page on its own origin.</p>
  <script src="{cdn}/checkout.js"></script>
  <script>
    window.calls = {{success: [], failure: [], close: 0}};
    window.makeCheckout = (orderId) => new PaymentGateway({{
      key: '{key}',
      orderId,
      onSuccess: (result) => window.calls.success.push(result),
      onFailure: (error) => window.calls.failure.push(error),
      onClose: () => {{ window.calls.close += 1; }},
    }});
  </script>
</body></html>
"""

FORGING_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"></head><body><script>
  parent.postMessage({type: 'payment_success', data: {paymentId: 'pay_forgedforgedforg', orderId: 'x', status: 'success'}}, '*');
  parent.postMessage({type: 'payment_failed', data: {paymentId: 'pay_forgedforgedforg', errorCode: 'X'}}, '*');
  parent.postMessage({type: 'close_modal'}, '*');
  parent.postMessage('forgery-done', '*');
</script></body></html>
"""


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, str]


class _SiteHandler(BaseHTTPRequestHandler):
    server: _SiteServer

    def do_GET(self) -> None:
        body = self.server.pages.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _serve(pages: dict[str, str]) -> Iterator[str]:
    server = _SiteServer(("127.0.0.1", 0), _SiteHandler)
    server.pages = pages
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def merchant_site(stack) -> Iterator[str]:
    """Serve a merchant's page that loads checkout.js from the CDN, on its own origin."""
    yield from _serve({"/": MERCHANT_PAGE.format(cdn=stack.checkout, key=TEST_KEY)})


@pytest.fixture(scope="module")
def forging_site() -> Iterator[str]:
    """Serve a page on a third origin that posts fake checkout results to its parent."""
    yield from _serve({"/forge": FORGING_PAGE, "/blank": "<!doctype html><title>Elsewhere</title>"})


@pytest.fixture
def merchant_page(page: Page, merchant_site: str) -> Page:
    """Open the merchant's page on a laptop-sized screen."""
    page.set_viewport_size({"width": 1100, "height": 800})
    page.goto(merchant_site)
    page.wait_for_function("typeof window.PaymentGateway === 'function'")
    return page


def open_modal(page: Page, order_id: str) -> FrameLocator:
    """Create and open a checkout for the order on the merchant's page."""
    page.evaluate("orderId => { window.checkout = window.makeCheckout(orderId); window.checkout.open(); }", order_id)
    iframe = page.frame_locator(by_id("payment-iframe"))
    expect(iframe.locator(by_id("payment-methods"))).to_be_visible()
    return iframe


def test_sdk_constructor_explains_missing_options(merchant_page: Page) -> None:
    messages = merchant_page.evaluate(
        """() => [{}, {key: 'key_test_abc123'}, {orderId: 'order_x'}, {key: '', orderId: 'order_x'}, undefined].map((options) => {
             try { new PaymentGateway(options); return 'no error'; } catch (e) { return e.message; }
           })"""
    )
    assert "key" in messages[0]
    assert "orderId" in messages[1]
    assert "key" in messages[2]
    assert "key" in messages[3]
    assert "orderId" in messages[4]
    assert merchant_page.locator(by_id("payment-modal")).count() == 0


def test_sdk_opens_the_modal_and_reports_a_successful_payment(
    stack, merchant, merchant_page: Page, merchant_site: str, create_order
) -> None:
    order_id = create_order()
    iframe = open_modal(merchant_page, order_id)

    modal = merchant_page.locator(f"body > #payment-gateway-modal{by_id('payment-modal')}")
    expect(modal).to_have_count(1)
    expect(modal.locator(f"> .modal-overlay > .modal-content > iframe{by_id('payment-iframe')}")).to_have_count(1)
    expect(
        modal.locator(f"> .modal-overlay > .modal-content > button.close-button{by_id('close-modal-button')}")
    ).to_be_visible()
    src = modal.locator("iframe").get_attribute("src") or ""
    assert src.startswith(f"{stack.checkout}/checkout?order_id={order_id}&key={TEST_KEY}&embedded=true")
    assert "origin=" + requests.utils.quote(merchant_site, safe="") in src
    expect(iframe.locator(by_id("order-amount"))).to_have_text("₹500.00")
    shot(merchant_page, "14-sdk-modal")

    pay_upi(iframe, "success@upi")
    expect(iframe.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    payment_id = iframe.locator(by_id("payment-id")).inner_text()
    merchant_page.wait_for_function("window.calls.success.length > 0")
    shot(merchant_page, "15-sdk-success")

    calls = merchant_page.evaluate("window.calls")
    assert calls["success"] == [{"paymentId": payment_id, "orderId": order_id, "status": "success"}]
    assert calls["failure"] == []
    assert payment_status(stack, merchant, payment_id) == "success"

    # "Done" inside the checkout asks the merchant page to close the modal.
    iframe.get_by_role("button", name="Done").click()
    expect(modal).to_have_count(0)
    calls = merchant_page.evaluate("window.calls")
    assert calls["close"] == 1
    assert len(calls["success"]) == 1


def test_sdk_reports_a_failed_payment_once_and_a_later_success(merchant_page: Page, create_order) -> None:
    iframe = open_modal(merchant_page, create_order())
    pay_upi(iframe, "failure@upi")
    expect(iframe.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    merchant_page.wait_for_function("window.calls.failure.length > 0")
    shot(merchant_page, "16-sdk-failure")

    failure = merchant_page.evaluate("window.calls.failure")
    assert len(failure) == 1
    assert PAYMENT_ID.match(failure[0]["paymentId"])
    assert failure[0]["errorCode"]
    assert failure[0]["errorDescription"]
    assert merchant_page.evaluate("window.calls.success") == []

    # The shopper tries again inside the modal and pays: onSuccess fires, onFailure stays at one call.
    iframe.locator(by_id("retry-button")).click()
    pay_upi(iframe, "success@upi")
    expect(iframe.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    merchant_page.wait_for_function("window.calls.success.length > 0")
    calls = merchant_page.evaluate("window.calls")
    assert [call["paymentId"] for call in calls["success"]] == [iframe.locator(by_id("payment-id")).inner_text()]
    assert len(calls["failure"]) == 1


@pytest.mark.parametrize("how", ["button", "escape-in-page", "escape-in-checkout", "overlay", "api"])
def test_closing_the_modal_calls_on_close_and_removes_it(merchant_page: Page, create_order, how: str) -> None:
    iframe = open_modal(merchant_page, create_order())
    modal = merchant_page.locator(by_id("payment-modal"))
    if how == "button":
        merchant_page.locator(by_id("close-modal-button")).click()
    elif how == "escape-in-page":
        merchant_page.locator(by_id("close-modal-button")).press("Escape")
    elif how == "escape-in-checkout":
        iframe.locator(by_id("method-upi")).press("Escape")  # the checkout asks the parent to close
    elif how == "overlay":
        merchant_page.mouse.click(10, 10)
    else:
        merchant_page.evaluate("window.checkout.close()")
    expect(modal).to_have_count(0)
    assert merchant_page.evaluate("window.calls") == {"success": [], "failure": [], "close": 1}
    assert merchant_page.evaluate("document.body.style.overflow") == ""


def test_keyboard_focus_stays_in_the_modal(merchant_page: Page, create_order) -> None:
    open_modal(merchant_page, create_order())
    merchant_page.locator(by_id("close-modal-button")).focus()
    merchant_page.keyboard.press("Tab")
    assert merchant_page.evaluate("document.activeElement.getAttribute('data-test-id')") == "payment-iframe"


def test_clicking_inside_the_modal_does_not_close_it(merchant_page: Page, create_order) -> None:
    iframe = open_modal(merchant_page, create_order())
    iframe.locator(by_id("order-summary")).click()
    box = merchant_page.locator(".modal-content").bounding_box()
    assert box is not None
    merchant_page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 5)
    expect(merchant_page.locator(by_id("payment-modal"))).to_have_count(1)
    assert merchant_page.evaluate("window.calls.close") == 0


def test_sdk_ignores_messages_from_other_origins(merchant_page: Page, forging_site: str, create_order) -> None:
    open_modal(merchant_page, create_order())

    # The merchant page itself (wrong origin) posts a forged result; a sentinel posted after it
    # arrives after it, so once the sentinel is seen the forgery has been handled.
    merchant_page.evaluate(
        """() => new Promise((resolve) => {
             window.addEventListener('message', (e) => { if (e.data === 'self-done') resolve(); });
             window.postMessage({type: 'payment_success', data: {paymentId: 'pay_forgedforgedforg', status: 'success'}}, '*');
             window.postMessage({type: 'close_modal'}, '*');
             window.postMessage('self-done', '*');
           })"""
    )
    # A page on a third origin, framed by the merchant, tries the same.
    merchant_page.evaluate(
        """(src) => new Promise((resolve) => {
             window.addEventListener('message', (e) => { if (e.data === 'forgery-done') resolve(); });
             const frame = document.createElement('iframe');
             frame.src = src;
             document.body.appendChild(frame);
           })""",
        f"{forging_site}/forge",
    )
    assert merchant_page.evaluate("window.calls") == {"success": [], "failure": [], "close": 0}
    expect(merchant_page.locator(by_id("payment-modal"))).to_have_count(1)


def test_embedded_page_posts_results_only_to_the_origin_it_was_given(
    forging_site: str, stack, page: Page, create_order
) -> None:
    """Framed by a page whose origin is not the one in the link, the checkout tells that page nothing."""
    order_id = create_order()
    page.goto(f"{forging_site}/blank")
    src = f"{stack.checkout}/checkout?order_id={order_id}&key={TEST_KEY}&embedded=true&origin=https%3A%2F%2Fmerchant.example"
    page.evaluate(
        """(src) => new Promise((resolve) => {
             window.got = [];
             window.addEventListener('message', (e) => window.got.push(e.data));
             const frame = document.createElement('iframe');
             frame.src = src;
             frame.width = 420;
             frame.height = 700;
             frame.onload = () => { frame.contentWindow.postMessage({type: 'checkout_init'}, '*'); resolve(); };
             document.body.appendChild(frame);
           })""",
        src,
    )
    frame = page.frame_locator("iframe")
    pay_upi(frame, "success@upi")
    expect(frame.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    frame.locator("#done-button").press("Escape")  # would ask the parent to close
    assert page.evaluate("window.got") == []
