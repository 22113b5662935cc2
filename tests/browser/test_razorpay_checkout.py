"""A merchant page written as Razorpay Checkout's docs show, with only the script URL changed, in Chromium."""

from __future__ import annotations

import contextlib
import json

import pytest
import razorpay
import requests
from playwright.sync_api import Page, expect

from tests.browser.test_checkout import FINAL_TIMEOUT_MS, _serve, by_id, create_order, no_script_errors, pay_upi, shot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TEST_KEY = "key_test_abc123"
TEST_SECRET = "secret_test_xyz789"

# Razorpay's "Integrate with Checkout" sample (https://razorpay.com/docs/payments/payment-gateway/web-integration/standard/),
# with its alert() calls recording into window.rzp instead, so the test can read them.
RAZORPAY_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Acme Corp</title></head>
<body>
<button id="rzp-button1">Pay with Razorpay</button>
<script src="{cdn}/checkout.js"></script>
<script>
window.rzp = {{handler: [], failed: [], dismissed: 0}};
var options = {{
    "key": "{key}",
    "amount": "50000",
    "currency": "INR",
    "name": "Acme Corp",
    "description": "Test Transaction",
    "image": "https://example.com/your_logo",
    "order_id": "{order_id}",
    "handler": function (response){{
        window.rzp.handler.push({{
            razorpay_payment_id: response.razorpay_payment_id,
            razorpay_order_id: response.razorpay_order_id,
            razorpay_signature: response.razorpay_signature
        }});
    }},
    "prefill": {{
        "name": "Gaurav Kumar",
        "email": "gaurav.kumar@example.com",
        "contact": "9000090000"
    }},
    "notes": {{
        "address": "Razorpay Corporate Office"
    }},
    "theme": {{
        "color": "#3399cc"
    }},
    "modal": {{
        "ondismiss": function (){{ window.rzp.dismissed += 1; }}
    }}
}};
var rzp1 = new Razorpay(options);
rzp1.on('payment.failed', function (response){{
    window.rzp.failed.push(response.error);
}});
document.getElementById('rzp-button1').onclick = function(e){{
    rzp1.open();
    e.preventDefault();
}}
</script>
</body></html>
"""


@contextlib.contextmanager
def razorpay_page(page: Page, stack, order_id: str):
    """Serve and open the Razorpay-style page for one order, on its own origin."""
    html = RAZORPAY_PAGE.format(cdn=stack.checkout, key=TEST_KEY, order_id=order_id)
    with contextlib.contextmanager(_serve)({"/": html}) as site:
        page.set_viewport_size({"width": 1100, "height": 800})
        page.goto(site)
        page.wait_for_function("typeof window.Razorpay === 'function'")
        yield page


def test_a_razorpay_checkout_page_pays_and_its_handler_gets_a_signature_that_verifies(page: Page, stack, create_order) -> None:  # noqa: F811
    order_id = create_order()
    with razorpay_page(page, stack, order_id):
        page.locator("#rzp-button1").click()
        iframe = page.frame_locator(by_id("payment-iframe"))
        expect(iframe.locator(by_id("order-amount"))).to_have_text("₹500.00")
        pay_upi(iframe, "success@upi")
        page.wait_for_function("window.rzp.handler.length > 0", timeout=FINAL_TIMEOUT_MS)
        shot(page, "20-razorpay-handler")
        result = page.evaluate("window.rzp")
        # The modal closes on success, as Razorpay Checkout's does; that is not a dismissal.
        expect(page.locator(by_id("payment-modal"))).to_have_count(0)
    assert result["failed"] == [] and result["dismissed"] == 0
    [response] = result["handler"]
    assert set(response) == {"razorpay_payment_id", "razorpay_order_id", "razorpay_signature"}
    assert response["razorpay_order_id"] == order_id and response["razorpay_payment_id"].startswith("pay_")
    client = razorpay.Client(auth=(TEST_KEY, TEST_SECRET), base_url=f"{stack.base}/razorpay")
    assert client.utility.verify_payment_signature(response) is True
    assert client.payment.fetch(response["razorpay_payment_id"])["status"] == "authorized"


def test_a_failed_payment_emits_payment_failed_and_closing_calls_ondismiss(page: Page, stack, create_order) -> None:  # noqa: F811
    order_id = create_order()
    with razorpay_page(page, stack, order_id):
        page.locator("#rzp-button1").click()
        iframe = page.frame_locator(by_id("payment-iframe"))
        pay_upi(iframe, "failure@upi")
        page.wait_for_function("window.rzp.failed.length > 0", timeout=FINAL_TIMEOUT_MS)
        [error] = page.evaluate("window.rzp.failed")
        assert error["code"] == "BAD_REQUEST_ERROR" and error["reason"] == "payment_failed" and error["description"]
        assert error["metadata"]["order_id"] == order_id and error["metadata"]["payment_id"].startswith("pay_")
        assert page.evaluate("window.rzp.dismissed") == 0
        page.locator(by_id("close-modal-button")).click()
        expect(page.locator(by_id("payment-modal"))).to_have_count(0)
        page.wait_for_function("window.rzp.dismissed > 0")
        assert page.evaluate("window.rzp") == {"handler": [], "failed": [error], "dismissed": 1}


def test_the_cdn_tells_checkout_js_where_the_api_is(stack) -> None:
    response = requests.get(f"{stack.checkout}/config.json", headers={"Origin": "http://shop.example"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(response.text) == {"apiBase": f"{stack.env['PUBLIC_API_ORIGIN']}/api/v1"}


def test_razorpay_constructor_explains_missing_options(page: Page, stack, create_order) -> None:  # noqa: F811
    with razorpay_page(page, stack, create_order()):
        messages = page.evaluate(
            """() => [undefined, {key: 'key_test_abc123'}, {order_id: 'order_x'}, {key: 'k', order_id: 'o', handler: 1}]
                 .map((options) => { try { new Razorpay(options); return 'no error'; } catch (e) { return e.message; } })"""
        )
    assert "order_id" in messages[0] and "order_id" in messages[1]
    assert "key" in messages[2] and "handler" in messages[3]
