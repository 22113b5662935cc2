"""The mock bank's page (3-D Secure, card 4000000000003220) in Chromium: hosted page, checkout.js modal, Razorpay Checkout.

Success (OTP 1234), failure (any other OTP) and cancel, each checked against the API; axe-core on
the bank's page; the whole path with the keyboard alone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import razorpay
import requests
from playwright.sync_api import FrameLocator, Page, Request, expect

from tests.browser.conftest import assert_accessible
from tests.browser.test_accessibility import PHONE, store, tab_until  # noqa: F401 - fixtures
from tests.browser.test_checkout import (  # noqa: F401 - fixtures
    FINAL_TIMEOUT_MS,
    TEST_KEY,
    _serve,
    by_id,
    create_order,
    fill_card,
    no_script_errors,
    shot,
)
from tests.browser.test_razorpay_checkout import TEST_SECRET, razorpay_page
from tests.e2e.test_three_d_secure import cancel_waiting

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

THREE_DS = "4000000000003220"


def answers(page: Page) -> list[Request]:
    """Record every authentication answer the page (or its iframe) sends from now on."""
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if r.method == "POST" and r.url.endswith("/authenticate") else None)
    return seen


def api_payment(stack, merchant: dict, payment_id: str) -> dict:
    response = requests.get(f"{stack.api}/payments/{payment_id}", headers=merchant, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def reach_bank_page(scope: Page | FrameLocator) -> None:
    """Pay with the 3-D Secure card; the bank's page takes over."""
    fill_card(scope, THREE_DS)
    scope.locator(by_id("pay-button")).click()
    expect(scope.locator(by_id("otp-page"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    for test_id in ("otp-input", "otp-submit", "otp-cancel"):
        expect(scope.locator(by_id(test_id))).to_be_visible()
    expect(scope.locator(by_id("processing-state"))).to_be_hidden()


@pytest.fixture
def open_store(page: Page, store: str, create_order) -> Callable[[], FrameLocator]:  # noqa: F811
    def open_() -> FrameLocator:
        page.set_viewport_size(PHONE)
        page.goto(store)
        page.evaluate("orderId => { document.body.dataset.orderId = orderId; }", create_order())
        page.locator("#buy").click()
        iframe = page.frame_locator(by_id("payment-iframe"))
        expect(iframe.locator(by_id("payment-methods"))).to_be_visible()
        return iframe

    return open_


# ---------------------------------------------------------------- hosted page


def test_hosted_page_right_otp_pays(stack, merchant, page: Page, create_order) -> None:  # noqa: F811
    order_id = create_order()
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.checkout}/checkout?order_id={order_id}")
    sent = answers(page)
    reach_bank_page(page)
    expect(page.locator("#otp-amount")).to_have_text("₹500.00")
    expect(page.locator("#otp-merchant")).to_have_text("Test Merchant")
    expect(page.locator("#otp-card")).to_have_text("•••• 3220")
    expect(page.locator(by_id("otp-input"))).to_be_focused()
    shot(page, "40-3ds-bank-page")
    # Nothing is sent for an empty OTP.
    page.locator(by_id("otp-submit")).click()
    expect(page.locator(by_id("validation-error"))).to_have_text("Enter the OTP your bank sent you")
    assert sent == []

    page.locator(by_id("otp-input")).fill("1234")
    page.locator(by_id("otp-submit")).dblclick()  # a double click sends one answer
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    payment_id = page.locator(by_id("payment-id")).inner_text()
    assert len(sent) == 1 and sent[0].post_data_json == {"otp": "1234"}
    assert sent[0].headers["idempotency-key"].startswith("chk_")
    paid = api_payment(stack, merchant, payment_id)
    assert (paid["status"], paid["authentication"]["status"], paid["order_id"]) == ("success", "passed", order_id)
    shot(page, "41-3ds-success")


@pytest.mark.parametrize(
    ("how", "code", "detail"),
    [
        ("otp", "AUTHENTICATION_FAILED", "The OTP entered on the bank's page was incorrect"),
        ("cancel", "AUTHENTICATION_CANCELLED", "The shopper cancelled the authentication on the bank's page"),
    ],
)
def test_hosted_page_wrong_otp_or_cancel_fails(stack, merchant, page: Page, create_order, how, code, detail) -> None:  # noqa: F811
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.checkout}/checkout?order_id={create_order()}&key={TEST_KEY}")
    reach_bank_page(page)
    if how == "otp":
        page.locator(by_id("otp-input")).fill("9999")
        page.locator(by_id("otp-input")).press("Enter")
    else:
        page.locator(by_id("otp-cancel")).click()
    expect(page.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    expect(page.locator("#error-detail")).to_have_text(detail)
    payment_id = page.locator("#error-payment-id").inner_text()
    failed = api_payment(stack, merchant, payment_id)
    assert (failed["status"], failed["error_code"]) == ("failed", code)
    shot(page, f"42-3ds-{how}")
    # Try again: a new payment, and the bank asks again.
    page.locator(by_id("retry-button")).click()
    reach_bank_page(page)
    page.locator(by_id("otp-input")).fill("1234")
    page.locator(by_id("otp-submit")).click()
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)


def test_an_answer_given_elsewhere_first_shows_what_became_of_the_payment(stack, merchant, page: Page, create_order) -> None:  # noqa: F811
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.checkout}/checkout?order_id={create_order()}")
    with page.expect_response(lambda r: r.url.endswith("/payments/public") and r.request.method == "POST") as info:
        reach_bank_page(page)
    payment_id = info.value.json()["id"]
    # Another tab (or a replay) answers first: this page's answer is refused, and it shows the outcome.
    first = requests.post(f"{stack.api}/payments/{payment_id}/authenticate", json={"otp": "0000"}, timeout=10)
    assert first.status_code == 200
    page.locator(by_id("otp-input")).fill("1234")
    page.locator(by_id("otp-submit")).click()
    expect(page.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    expect(page.locator("#error-detail")).to_have_text("The OTP entered on the bank's page was incorrect")
    assert api_payment(stack, merchant, payment_id)["error_code"] == "AUTHENTICATION_FAILED"


# ---------------------------------------------------------------- checkout.js modal


def test_modal_right_otp_calls_on_success(stack, merchant, page: Page, open_store) -> None:
    iframe = open_store()
    reach_bank_page(iframe)
    shot(page, "43-3ds-modal-bank-page")
    iframe.locator(by_id("otp-input")).fill("1234")
    iframe.locator(by_id("otp-submit")).click()
    expect(iframe.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    page.wait_for_function("window.calls.success.length > 0")
    calls = page.evaluate("window.calls")
    assert calls["failure"] == [] and len(calls["success"]) == 1
    assert api_payment(stack, merchant, calls["success"][0]["paymentId"])["status"] == "success"


@pytest.mark.parametrize(("how", "code"), [("otp", "AUTHENTICATION_FAILED"), ("cancel", "AUTHENTICATION_CANCELLED")])
def test_modal_wrong_otp_or_cancel_calls_on_failure(stack, merchant, page: Page, open_store, how, code) -> None:
    iframe = open_store()
    reach_bank_page(iframe)
    if how == "otp":
        iframe.locator(by_id("otp-input")).fill("4321")
        iframe.locator(by_id("otp-submit")).click()
    else:
        iframe.locator(by_id("otp-cancel")).click()
    expect(iframe.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    page.wait_for_function("window.calls.failure.length > 0")
    [failure] = page.evaluate("window.calls.failure")
    assert failure["errorCode"] == code and failure["errorDescription"]
    assert page.evaluate("window.calls.success") == []
    assert api_payment(stack, merchant, failure["paymentId"])["error_code"] == code


def razorpay_checkout_with_otp(page: Page, stack, order_id: str, otp: str) -> dict:
    """Pay on a Razorpay Checkout page with the 3-D Secure card and this OTP; return what its callbacks got."""
    with razorpay_page(page, stack, order_id):
        page.locator("#rzp-button1").click()
        iframe = page.frame_locator(by_id("payment-iframe"))
        reach_bank_page(iframe)
        iframe.locator(by_id("otp-input")).fill(otp)
        iframe.locator(by_id("otp-submit")).click()
        page.wait_for_function("window.rzp.handler.length + window.rzp.failed.length > 0", timeout=FINAL_TIMEOUT_MS)
        return page.evaluate("window.rzp")


def test_razorpay_checkout_takes_the_otp_and_its_handler_gets_a_signature(page: Page, stack, create_order) -> None:  # noqa: F811
    called = razorpay_checkout_with_otp(page, stack, create_order(), "1234")
    assert called["failed"] == []
    [response] = called["handler"]
    client = razorpay.Client(auth=(TEST_KEY, TEST_SECRET), base_url=f"{stack.base}/razorpay")
    assert client.utility.verify_payment_signature(response) is True
    assert client.payment.fetch(response["razorpay_payment_id"])["status"] == "authorized"


def test_razorpay_checkout_reports_a_wrong_otp_as_razorpay_does(page: Page, stack, create_order) -> None:  # noqa: F811
    order_id = create_order()
    called = razorpay_checkout_with_otp(page, stack, order_id, "0000")
    assert called["handler"] == []
    [error] = called["failed"]
    assert (error["step"], error["reason"]) == ("payment_authentication", "invalid_otp")
    assert error["metadata"]["order_id"] == order_id


# ---------------------------------------------------------------- accessibility and keyboard


def test_the_bank_page_is_accessible_in_the_hosted_page_and_the_modal(
    stack, merchant, axe_page: Page, store: str, create_order  # noqa: F811
) -> None:
    page = axe_page
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.checkout}/checkout?order_id={create_order()}")
    reach_bank_page(page)
    assert_accessible(page, "checkout: the bank's page")
    page.locator(by_id("otp-submit")).click()
    expect(page.locator(by_id("validation-error"))).to_be_visible()
    assert_accessible(page, "checkout: the bank's page with a field error")

    page.goto(store)
    page.evaluate("orderId => { document.body.dataset.orderId = orderId; }", create_order())
    page.locator("#buy").click()
    iframe = page.frame_locator(by_id("payment-iframe"))
    reach_bank_page(iframe)
    assert_accessible(page, "merchant page with the bank's page in the modal")
    frame = page.locator(by_id("payment-iframe")).element_handle().content_frame()
    assert frame is not None
    assert_accessible(frame, "the bank's page inside the modal")
    # Both payments answered, so the shared merchant has none left waiting for later tests.
    frame.locator(by_id("otp-cancel")).click()
    expect(frame.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    cancel_waiting(stack, merchant)


def focused_test_id(scope: Page | FrameLocator) -> Callable[[], str | None]:
    focused = scope.locator(":focus")
    return lambda: focused.get_attribute("data-test-id") if focused.count() else None


def type_card_with_keyboard(page: Page, focused: Callable[[], str | None]) -> None:
    tab_until(page, focused, "method-card")
    page.keyboard.press("Enter")
    page.keyboard.type(THREE_DS)
    for text in ("12/30", "123", "Keyboard Shopper"):
        page.keyboard.press("Tab")
        page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_keyboard_only_in_the_hosted_page(stack, merchant, page: Page, create_order) -> None:  # noqa: F811
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.checkout}/checkout?order_id={create_order()}")
    expect(page.locator(by_id("payment-methods"))).to_be_visible()
    type_card_with_keyboard(page, focused_test_id(page))
    # The bank's page takes focus: type the OTP, Tab to the button, Enter.
    expect(page.locator(by_id("otp-input"))).to_be_focused(timeout=FINAL_TIMEOUT_MS)
    page.keyboard.type("1234")
    page.keyboard.press("Tab")
    expect(page.locator(by_id("otp-submit"))).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    payment_id = page.locator(by_id("payment-id")).inner_text()
    assert api_payment(stack, merchant, payment_id)["status"] == "success"


def test_keyboard_only_cancel_in_the_modal_then_escape(stack, merchant, page: Page, store: str, create_order) -> None:  # noqa: F811
    page.set_viewport_size(PHONE)
    page.goto(store)
    page.evaluate("orderId => { document.body.dataset.orderId = orderId; }", create_order())
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    iframe = page.frame_locator(by_id("payment-iframe"))
    expect(iframe.locator(by_id("payment-methods"))).to_be_visible()
    focused = focused_test_id(iframe)
    type_card_with_keyboard(page, focused)
    expect(iframe.locator(by_id("otp-input"))).to_be_focused(timeout=FINAL_TIMEOUT_MS)
    tab_until(page, focused, "otp-cancel", limit=3)
    page.keyboard.press("Enter")
    expect(iframe.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    page.wait_for_function("window.calls.failure.length > 0")
    [failure] = page.evaluate("window.calls.failure")
    assert api_payment(stack, merchant, failure["paymentId"])["error_code"] == "AUTHENTICATION_CANCELLED"
    page.keyboard.press("Escape")
    expect(page.locator(by_id("payment-modal"))).to_have_count(0)
    assert page.evaluate("window.calls.close") == 1
