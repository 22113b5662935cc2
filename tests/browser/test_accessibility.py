"""Accessibility: axe-core finds no serious or critical violation on any checkout state or dashboard page.

(The events pages and the endpoints table in their other states are checked in test_events_dashboard.py.)

Checkout pages are checked at a phone's width (375 px), the dashboard at a laptop's (1300 px).
The keyboard-only tests pay and close the modal without a pointer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import requests
from playwright.sync_api import Page, Playwright, expect

from tests.browser.conftest import assert_accessible
from tests.browser.test_checkout import FINAL_TIMEOUT_MS, TEST_KEY, _serve, by_id, fill_card, pay_upi
from tests.browser.test_dashboard import login

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE = {"width": 375, "height": 812}
LAPTOP = {"width": 1300, "height": 900}

MERCHANT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo store</title></head>
<body>
  <main>
    <h1>Demo store</h1>
    <button type="button" id="buy">Buy now</button>
  </main>
  <script src="{cdn}/checkout.js"></script>
  <script>
    window.calls = {{success: [], failure: [], close: 0}};
    document.getElementById('buy').addEventListener('click', () => new PaymentGateway({{
      key: '{key}',
      orderId: document.body.dataset.orderId,
      onSuccess: (result) => window.calls.success.push(result),
      onFailure: (error) => window.calls.failure.push(error),
      onClose: () => {{ window.calls.close += 1; }},
    }}).open());
  </script>
</body></html>
"""


@pytest.fixture(scope="module", autouse=True)
def _test_id_attribute(playwright_instance: Playwright) -> None:
    """Let ``get_by_test_id`` (and the dashboard tests' login helper) find ``data-test-id`` attributes."""
    playwright_instance.selectors.set_test_id_attribute("data-test-id")


@pytest.fixture(scope="module")
def store(stack) -> Iterator[str]:
    """A merchant's page with a Buy button that opens checkout.js."""
    yield from _serve({"/": MERCHANT_PAGE.format(cdn=stack.checkout, key=TEST_KEY)})


@pytest.fixture
def new_order(stack, merchant) -> Callable[..., str]:
    def create(amount: int = 50000) -> str:
        response = requests.post(f"{stack.api}/orders", json={"amount": amount}, headers=merchant, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return create


# ---------------------------------------------------------------- checkout (375 px)


def test_every_checkout_state_is_accessible(stack, axe_page: Page, new_order) -> None:
    page = axe_page
    page.set_viewport_size(PHONE)
    order_id = new_order()
    page.goto(f"{stack.checkout}/checkout?order_id={order_id}")
    expect(page.locator(by_id("payment-methods"))).to_be_visible()
    assert_accessible(page, "checkout: method choice")

    page.locator(by_id("method-upi")).click()
    assert_accessible(page, "checkout: UPI form")
    page.locator(by_id("pay-button")).click()
    expect(page.locator(by_id("validation-error"))).to_be_visible()
    assert_accessible(page, "checkout: UPI field error")

    fill_card(page, "4111111111111112")
    page.locator(by_id("pay-button")).click()
    expect(page.locator(by_id("validation-error"))).to_be_visible()
    assert_accessible(page, "checkout: card form with a field error")

    # The bank holds this payment for 8 s, so the processing state stays on screen while axe runs
    # (and the merchant's payments are all final again soon: the dashboard tests wait for that).
    page.goto(f"{stack.checkout}/checkout?order_id={new_order()}&test_delay_ms=8000")
    pay_upi(page, "success@upi")
    expect(page.locator(by_id("processing-state"))).to_be_visible()
    assert_accessible(page, "checkout: processing")

    page.goto(f"{stack.checkout}/checkout?order_id={new_order()}&test_outcome=failed:CARD_DECLINED&test_delay_ms=0")
    pay_upi(page, "success@upi")
    expect(page.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    assert_accessible(page, "checkout: failure")
    failed_id = page.locator("#error-payment-id").inner_text()

    page.goto(f"{stack.checkout}/checkout?order_id={order_id}&test_delay_ms=0")
    pay_upi(page, "success@upi")
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    assert_accessible(page, "checkout: success")
    paid_id = page.locator(by_id("payment-id")).inner_text()

    for url, seen, where in (
        (f"/success?payment_id={paid_id}", by_id("success-state"), "success page"),
        (f"/failure?payment_id={failed_id}", by_id("error-state"), "failure page"),
        (f"/checkout?order_id={order_id}", "text=This order is already paid", "paid order notice"),
        ("/checkout?order_id=order_doesnotexist0001", "text=Order not found", "unknown order notice"),
        ("/checkout", "text=This payment link is incomplete", "incomplete link notice"),
        ("/no-such-page", "body", "404 page"),
    ):
        page.goto(f"{stack.checkout}{url}")
        expect(page.locator(seen).first).to_be_visible(timeout=FINAL_TIMEOUT_MS)
        assert_accessible(page, f"checkout: {where}")


def test_the_modal_is_accessible(axe_page: Page, store: str, new_order) -> None:
    page = axe_page
    page.set_viewport_size(PHONE)
    page.goto(store)
    page.evaluate("orderId => { document.body.dataset.orderId = orderId; }", new_order())
    page.locator("#buy").click()
    frame_element = page.locator(by_id("payment-iframe"))
    iframe = page.frame_locator(by_id("payment-iframe"))
    expect(iframe.locator(by_id("payment-methods"))).to_be_visible()
    assert_accessible(page, "merchant page with the checkout modal")
    frame = frame_element.element_handle().content_frame()
    assert frame is not None
    assert_accessible(frame, "checkout inside the modal")
    fill_card(iframe, "4111111111111111")
    assert_accessible(frame, "card form inside the modal")


# ---------------------------------------------------------------- keyboard only


def tab_until(page: Page, focused: Callable[[], str | None], wanted: str, limit: int = 12) -> None:
    """Press Tab until ``focused()`` (the focused element's data-test-id) is ``wanted``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused() == wanted:
            return
    pytest.fail(f"Tab never reached {wanted}")


def test_keyboard_only_payment_in_the_hosted_page(stack, merchant, page: Page, new_order) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.checkout}/checkout?order_id={new_order()}&test_delay_ms=0")
    expect(page.locator(by_id("payment-methods"))).to_be_visible()
    # Tab from the top of the page to the UPI method, choose it with Enter, type, and pay with Enter.
    tab_until(page, lambda: page.evaluate("document.activeElement.dataset.testId"), "method-upi")
    page.keyboard.press("Enter")
    expect(page.locator(by_id("vpa-input"))).to_be_focused()
    page.keyboard.type("success@upi")
    page.keyboard.press("Tab")
    expect(page.locator(by_id("pay-button"))).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    payment_id = page.locator(by_id("payment-id")).inner_text()
    status = requests.get(f"{stack.api}/payments/{payment_id}", headers=merchant, timeout=10).json()["status"]
    assert status == "success"


def test_keyboard_only_payment_in_the_modal_and_escape_closes_it(stack, merchant, page: Page, store: str, new_order) -> None:
    page.set_viewport_size(PHONE)
    page.goto(store)
    page.evaluate("orderId => { document.body.dataset.orderId = orderId; }", new_order())
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "buy"
    page.keyboard.press("Enter")
    iframe = page.frame_locator(by_id("payment-iframe"))
    expect(iframe.locator(by_id("payment-methods"))).to_be_visible()
    # Focus moves into the checkout; Tab walks its controls to the card method.
    focused = iframe.locator(":focus")
    tab_until(page, lambda: focused.get_attribute("data-test-id") if focused.count() else None, "method-card")
    page.keyboard.press("Enter")
    expect(iframe.locator(by_id("card-number-input"))).to_be_focused()
    page.keyboard.type("4111111111111111")
    for text in ("12/30", "123", "Keyboard Shopper"):
        page.keyboard.press("Tab")
        page.keyboard.type(text)
    page.keyboard.press("Enter")  # submits the form from the name field
    expect(iframe.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    page.wait_for_function("window.calls.success.length === 1")
    payment_id = page.evaluate("window.calls.success[0].paymentId")
    assert requests.get(f"{stack.api}/payments/{payment_id}", headers=merchant, timeout=10).json()["status"] == "success"

    page.keyboard.press("Escape")
    expect(page.locator(by_id("payment-modal"))).to_have_count(0)
    assert page.evaluate("window.calls.close") == 1
    # Focus goes back to where it was before the modal opened.
    assert page.evaluate("document.activeElement.id") == "buy"


# ---------------------------------------------------------------- dashboard (1300 px)


def test_every_dashboard_page_is_accessible(stack, merchant, axe_page: Page) -> None:
    page = axe_page
    page.set_viewport_size(LAPTOP)
    # Data on every page: a captured payment with a refund, a failed one, a webhook delivery.
    paid = requests.post(
        f"{stack.api}/payments",
        json={"amount": 4200, "method": "upi", "vpa": "success@upi"},
        headers={**merchant, "X-Test-Delay-Ms": "0"},
        timeout=10,
    ).json()
    requests.post(
        f"{stack.api}/payments",
        json={"amount": 4300, "method": "upi", "vpa": "failure@upi"},
        headers={**merchant, "X-Test-Delay-Ms": "0"},
        timeout=10,
    )
    deadline = time.monotonic() + 20
    while requests.get(f"{stack.api}/payments/{paid['id']}", headers=merchant, timeout=10).json()["status"] != "success":
        assert time.monotonic() < deadline, "the payment was not decided in time"
        time.sleep(0.05)
    refund = requests.post(f"{stack.api}/payments/{paid['id']}/refunds", json={"amount": 100}, headers=merchant, timeout=10)
    assert refund.status_code == 201, refund.text
    requests.post(f"{stack.api}/webhooks/test", headers=merchant, timeout=10)

    dashboard = stack.dashboard
    page.goto(f"{dashboard}/login")
    assert_accessible(page, "dashboard: login")
    page.get_by_test_id("email-input").fill("test@example.com")
    page.get_by_test_id("password-input").fill("wrong-password")
    page.get_by_test_id("login-button").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    assert_accessible(page, "dashboard: login with an error")

    event_id = requests.get(f"{stack.api}/events?limit=1", headers=merchant, timeout=10).json()["data"][0]["id"]

    login(page, dashboard)
    for path, ready in (
        ("/dashboard", "stats-container"),
        ("/dashboard/transactions", "transactions-table"),
        (f"/dashboard/transactions/{paid['id']}", None),
        ("/dashboard/refunds", "refunds-table"),
        ("/dashboard/events", "events-table"),
        (f"/dashboard/events/{event_id}", "event-payload"),
        ("/dashboard/webhooks", "endpoints-table"),
        ("/dashboard/docs", "api-docs"),
        ("/dashboard/no-such-page", None),
    ):
        page.goto(f"{dashboard}{path}")
        if ready:
            expect(page.get_by_test_id(ready)).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert_accessible(page, f"dashboard: {path}")
