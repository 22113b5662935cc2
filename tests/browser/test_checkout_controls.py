"""Test controls from the browser: checkout.js's testOutcome/testDelayMs and the hosted page's test_outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_checkout import FINAL_TIMEOUT_MS, TEST_KEY, _serve, by_id, pay_upi, payment_posts, shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CONTROLLED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Store under test</title></head>
<body>
  <h1>Store under test</h1>
  <script src="{cdn}/checkout.js"></script>
  <script>
    window.calls = {{success: [], failure: []}};
    window.makeCheckout = (orderId, extra) => new PaymentGateway({{
      key: '{key}',
      orderId,
      onSuccess: (result) => window.calls.success.push(result),
      onFailure: (error) => window.calls.failure.push(error),
      ...extra,
    }});
  </script>
</body></html>
"""


@pytest.fixture(scope="module")
def controlled_site(stack) -> Iterator[str]:
    """A merchant's page whose test passes checkout.js options of its own."""
    yield from _serve({"/": CONTROLLED_PAGE.format(cdn=stack.checkout, key=TEST_KEY)})


@pytest.fixture
def create_order(stack, merchant):
    import requests

    def create(amount: int = 50000) -> str:
        response = requests.post(f"{stack.api}/orders", json={"amount": amount}, headers=merchant, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    return create


def test_sdk_option_chooses_the_outcome(page: Page, controlled_site: str, create_order) -> None:
    page.set_viewport_size({"width": 1100, "height": 800})
    page.goto(controlled_site)
    page.wait_for_function("typeof window.PaymentGateway === 'function'")
    posts = payment_posts(page)
    page.evaluate(
        "orderId => window.makeCheckout(orderId, {testOutcome: 'failed:INSUFFICIENT_FUNDS', testDelayMs: 0}).open()",
        create_order(),
    )
    iframe = page.frame_locator(by_id("payment-iframe"))
    pay_upi(iframe, "success@upi")  # would succeed without the control
    expect(iframe.locator(by_id("error-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)
    page.wait_for_function("window.calls.failure.length > 0")
    failure = page.evaluate("window.calls.failure")[0]
    assert failure["errorCode"] == "INSUFFICIENT_FUNDS"
    assert failure["errorDescription"] == "Insufficient funds in the account"
    assert page.evaluate("window.calls.success") == []
    sent = posts[0].headers
    assert (sent["x-test-outcome"], sent["x-test-delay-ms"]) == ("failed:INSUFFICIENT_FUNDS", "0")
    shot(page, "30-sdk-test-outcome")


def test_sdk_refuses_malformed_control_options(page: Page, controlled_site: str) -> None:
    page.goto(controlled_site)
    page.wait_for_function("typeof window.PaymentGateway === 'function'")
    messages = page.evaluate(
        """() => [{testOutcome: 5}, {testOutcome: ''}, {testDelayMs: -1}, {testDelayMs: 1.5}, {testDelayMs: '10'}]
             .map((extra) => { try { window.makeCheckout('order_x', extra); return 'no error'; } catch (e) { return e.message; } })"""
    )
    assert all("testOutcome" in m for m in messages[:2]) and all("testDelayMs" in m for m in messages[2:])


def test_hosted_page_link_may_carry_the_outcome(stack, page: Page, create_order) -> None:
    page.set_viewport_size({"width": 400, "height": 860})
    page.goto(f"{stack.checkout}/checkout?order_id={create_order()}&test_outcome=success&test_delay_ms=0")
    pay_upi(page, "failure@upi")
    expect(page.locator(by_id("success-state"))).to_be_visible(timeout=FINAL_TIMEOUT_MS)


def test_a_malformed_control_shows_the_gateways_reason(stack, page: Page, create_order) -> None:
    page.set_viewport_size({"width": 400, "height": 860})
    page.goto(f"{stack.checkout}/checkout?order_id={create_order()}&test_outcome=maybe")
    pay_upi(page, "success@upi")
    expect(page.locator(by_id("error-state"))).to_be_visible()
    expect(page.locator("#error-detail")).to_contain_text("X-Test-Outcome must be")
