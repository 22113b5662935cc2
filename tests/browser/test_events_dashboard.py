"""The dashboard's Events pages and webhook endpoints table in Chromium: UI.md's data-test-ids, what
they show against the API, keyboard use, and axe-core (no serious or critical violation).

Each test logs in as a merchant of its own, so its events and endpoints are the only ones there.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, Playwright, expect

from tests.browser.conftest import assert_accessible
from tests.browser.test_dashboard import Receiver, assert_test_ids, login, poll, wait_final

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LAPTOP = {"width": 1300, "height": 900}
PAGE_SIZE = 25  # events per dashboard page


@pytest.fixture(scope="module", autouse=True)
def _test_id_attribute(playwright_instance: Playwright) -> None:
    playwright_instance.selectors.set_test_id_attribute("data-test-id")


@pytest.fixture
def new_merchant(stack: Any) -> Callable[[], dict[str, Any]]:
    """Create a merchant with a dashboard login: its API headers, email and password."""

    def create() -> dict[str, Any]:
        email = f"events-{secrets.token_hex(4)}@example.com"
        password = "pw-" + secrets.token_hex(6)
        created = json.loads(stack.cli("auth.cli", "create-merchant", "--name", "Events Merchant", "--email", email,
                                       "--password", password))
        return {"headers": {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]},
                "email": email, "password": password}

    return create


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.status = 200
    try:
        yield server
    finally:
        server.close()


def refused_url() -> str:
    """A loopback URL nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"


def pay(stack: Any, headers: dict[str, str], vpa: str = "success@upi") -> str:
    """A UPI payment decided at once; return its id once final."""
    payment = requests.post(f"{stack.api}/payments", json={"amount": 1000, "method": "upi", "vpa": vpa},
                            headers={**headers, "X-Test-Delay-Ms": "0"}, timeout=10)
    assert payment.status_code == 201, payment.text
    wait_final(stack.api, headers, payment.json()["id"])
    return payment.json()["id"]


def api_events(stack: Any, headers: dict[str, str], **params: Any) -> list[dict]:
    response = requests.get(f"{stack.api}/events", params={"limit": 100, **params}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def stored(stack: Any, headers: dict[str, str], count: int) -> list[dict]:
    """Wait until the merchant has ``count`` stored events; return them, newest first."""

    def enough() -> list[dict] | None:
        found = api_events(stack, headers)
        return found if len(found) >= count else None

    return poll(enough, 30, f"{count} stored events")


def row_ids(page: Page) -> list[str]:
    return [row.get_attribute("data-event-id") for row in page.get_by_test_id("event-row").all()]


def focused_test_id(page: Page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.dataset.testId || null")


def tab_to(page: Page, wanted: str, limit: int = 60) -> None:
    """Press Tab until the element with data-test-id ``wanted`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_test_id(page) == wanted:
            return
    pytest.fail(f"Tab never reached {wanted}")


# --- the Events pages ------------------------------------------------------------------------------


def test_events_list_filter_pages_and_detail_match_the_api(stack: Any, new_merchant, axe_page: Page) -> None:
    merchant = new_merchant()
    headers = merchant["headers"]
    failed = pay(stack, headers, "failure@upi")
    for _ in range(9):
        pay(stack, headers)
    events = stored(stack, headers, 30)  # created, pending and success or failed, for each payment
    page = axe_page
    page.set_viewport_size(LAPTOP)
    login(page, stack.dashboard, merchant["email"], merchant["password"])
    page.goto(f"{stack.dashboard}/dashboard/events")
    assert_test_ids(page, ["events-table", "event-row", "event-type", "event-created-at", "event-type-filter"])
    # Newest first, as the API lists them; each row's cells say the type and the time.
    assert row_ids(page) == [e["id"] for e in events[:PAGE_SIZE]]
    first = page.get_by_test_id("event-row").first
    expect(first.get_by_test_id("event-type")).to_have_text(events[0]["type"])
    assert first.get_by_test_id("event-created-at").locator("time").get_attribute("datetime") == events[0]["created_at"]
    assert_accessible(page, "dashboard: events")

    # Older, then Newer, by the cursor.
    page.get_by_test_id("events-older").click()
    assert row_ids(page) == [e["id"] for e in events[PAGE_SIZE:]]
    page.get_by_test_id("events-newer").click()
    assert row_ids(page) == [e["id"] for e in events[:PAGE_SIZE]]

    # The type filter narrows to one type.
    page.get_by_test_id("event-type-filter").select_option("payment.failed")
    page.get_by_test_id("apply-event-filter").click()
    page.wait_for_url(re.compile(r"/dashboard/events\?type=payment\.failed$"))
    (failed_event,) = api_events(stack, headers, type="payment.failed")
    assert row_ids(page) == [failed_event["id"]]
    expect(page.get_by_test_id("event-type")).to_have_text("payment.failed")
    expect(page.get_by_test_id("event-type-filter")).to_have_value("payment.failed")
    # ... or a category, chosen with the keyboard alone.
    page.get_by_test_id("event-type-filter").focus()
    page.keyboard.press("Home")  # "All types"
    page.keyboard.press("ArrowDown")  # "order.paid"
    page.keyboard.press("ArrowDown")  # "payment.*"
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("apply-event-filter")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard/events\?type=payment\.(\*|%2A)$"))
    assert len(row_ids(page)) == PAGE_SIZE and {t.inner_text() for t in page.get_by_test_id("event-type").all()} <= {
        "payment.created", "payment.pending", "payment.success", "payment.failed"}

    # The detail: the payload is the event's data, and no endpoint means no delivery.
    page.goto(f"{stack.dashboard}/dashboard/events?type=payment.failed")
    page.get_by_role("link", name=failed_event["id"]).click()
    page.wait_for_url(re.compile(f"/dashboard/events/{failed_event['id']}$"))
    payload = json.loads(page.get_by_test_id("event-payload").inner_text())
    assert payload == failed_event["data"] and payload["payment"]["id"] == failed
    expect(page.get_by_test_id("event-deliveries")).to_contain_text("no webhook endpoint")
    expect(page.get_by_test_id("resend-event-button")).to_be_visible()
    assert_accessible(page, "dashboard: an event without deliveries")
    # Resend with no endpoint says why nothing was sent.
    page.get_by_test_id("resend-event-button").click()
    expect(page.get_by_test_id("flash-error")).to_contain_text("No enabled webhook endpoint")
    assert_accessible(page, "dashboard: an event with an error message")

    # Another merchant's event is not found from this session.
    other = new_merchant()
    pay(stack, other["headers"])
    theirs = stored(stack, other["headers"], 3)[0]["id"]
    response = page.goto(f"{stack.dashboard}/dashboard/events/{theirs}")
    assert response is not None and response.status == 404
    assert theirs not in page.content()


def test_an_events_deliveries_show_each_endpoints_answer_and_resend_arrives(
    stack: Any, new_merchant, receiver: Receiver, axe_page: Page
) -> None:
    merchant = new_merchant()
    headers = merchant["headers"]
    good = requests.post(f"{stack.api}/webhook-endpoints", json={"url": receiver.url, "enabled_events": ["payment.success"]},
                         headers=headers, timeout=10).json()
    dead = requests.post(f"{stack.api}/webhook-endpoints", json={"url": refused_url(), "enabled_events": ["payment.*"]},
                         headers=headers, timeout=10).json()
    payment_id = pay(stack, headers)
    (event,) = poll(lambda: api_events(stack, headers, type="payment.success"), 30, "payment.success stored")

    def attempted() -> dict | None:
        detail = requests.get(f"{stack.api}/events/{event['id']}", headers=headers, timeout=10).json()
        by_endpoint = {d["endpoint_id"]: d for d in detail["deliveries"]}
        done = len(by_endpoint) == 2 and all(d["attempts"] >= 1 for d in by_endpoint.values())
        return by_endpoint if done else None

    poll(attempted, 30, "both endpoints attempted")
    page = axe_page
    page.set_viewport_size(LAPTOP)
    login(page, stack.dashboard, merchant["email"], merchant["password"])
    page.goto(f"{stack.dashboard}/dashboard/events/{event['id']}")
    deliveries = page.get_by_test_id("event-deliveries")
    ok = deliveries.locator(f'[data-endpoint-id="{good["id"]}"]')
    refused = deliveries.locator(f'[data-endpoint-id="{dead["id"]}"]')
    expect(ok).to_contain_text("success")
    expect(ok).to_contain_text("200")
    # No response at all: the row says why (the connection was refused), not just a dash.
    expect(refused).to_contain_text("Connection refused")
    assert json.loads(page.get_by_test_id("event-payload").inner_text())["payment"]["id"] == payment_id
    assert_accessible(page, "dashboard: an event with deliveries")

    # Resend, with the keyboard: to every enabled endpoint subscribed to it; it arrives again.
    seen = len(receiver.requests)
    tab_to(page, "resend-event-button")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("flash-success")).to_contain_text("resent")
    poll(lambda: len(receiver.requests) > seen, 30, "the resent event at the receiver")
    assert json.loads(receiver.requests[-1][1])["id"] == event["id"]


# --- the endpoints table on the Webhooks page ---------------------------------------------------


def endpoint_row(page: Page, endpoint_id: str):
    return page.locator(f'[data-test-id="endpoint-row"][data-endpoint-id="{endpoint_id}"]')


def api_endpoint(stack: Any, headers: dict[str, str], endpoint_id: str) -> dict:
    return requests.get(f"{stack.api}/webhook-endpoints/{endpoint_id}", headers=headers, timeout=10).json()


def test_endpoints_table_add_edit_disable_enable_and_rotate(
    stack: Any, new_merchant, receiver: Receiver, axe_page: Page
) -> None:
    merchant = new_merchant()
    headers = merchant["headers"]
    page = axe_page
    page.set_viewport_size(LAPTOP)
    login(page, stack.dashboard, merchant["email"], merchant["password"])
    page.goto(f"{stack.dashboard}/dashboard/webhooks")
    assert_test_ids(page, ["endpoints-table", "add-endpoint-button"])
    expect(page.get_by_test_id("endpoint-row")).to_have_count(0)
    expect(page.get_by_test_id("endpoint-disabled-banner")).to_have_count(0)
    assert_accessible(page, "dashboard: webhooks without endpoints")

    # Add one with the keyboard alone: URL, events, then Enter on the button.
    page.get_by_test_id("endpoint-url-input").focus()
    page.keyboard.type(receiver.url)
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("endpoint-events-input")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("payment.success")
    tab_to(page, "add-endpoint-button", limit=5)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("flash-success")).to_contain_text("whsec_")
    (created,) = requests.get(f"{stack.api}/webhook-endpoints", headers=headers, timeout=10).json()["data"]
    assert (created["url"], created["enabled_events"], created["status"]) == (receiver.url, ["payment.success"], "enabled")
    secret = api_endpoint(stack, headers, created["id"])["secret"]
    expect(page.get_by_test_id("flash-success")).to_contain_text(secret)  # shown once, in the message
    row = endpoint_row(page, created["id"])
    expect(row.get_by_test_id("endpoint-url")).to_have_text(receiver.url)
    expect(row.get_by_test_id("endpoint-events").locator("input[name=enabled_events]")).to_have_value("payment.success")
    expect(row.get_by_test_id("endpoint-status")).to_have_text("enabled")
    assert_accessible(page, "dashboard: webhooks with an endpoint")

    # Edit its events.
    row.get_by_test_id("endpoint-events").locator("input[name=enabled_events]").fill("payment.*, refund.*")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("flash-success")).to_contain_text("Events saved")
    assert api_endpoint(stack, headers, created["id"])["enabled_events"] == ["payment.*", "refund.*"]
    expect(endpoint_row(page, created["id"]).get_by_test_id("endpoint-events").locator("input[name=enabled_events]")).to_have_value(
        "payment.*,refund.*")

    # Events that are not event types are refused with the API's reason, and nothing changes.
    endpoint_row(page, created["id"]).get_by_test_id("endpoint-events").locator("input[name=enabled_events]").fill("Payments!")
    endpoint_row(page, created["id"]).get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("flash-error")).to_contain_text("not changed")
    assert api_endpoint(stack, headers, created["id"])["enabled_events"] == ["payment.*", "refund.*"]

    # Disable: the status says so and the banner offers Enable.
    endpoint_row(page, created["id"]).get_by_role("button", name="Disable").click()
    expect(endpoint_row(page, created["id"]).get_by_test_id("endpoint-status")).to_have_text("disabled")
    banner = page.locator(f'[data-test-id="endpoint-disabled-banner"][data-endpoint-id="{created["id"]}"]')
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(receiver.url)
    assert api_endpoint(stack, headers, created["id"])["status"] == "disabled"
    assert_accessible(page, "dashboard: webhooks with a disabled endpoint")
    # A payment meanwhile is recorded for it, not sent.
    pay(stack, headers)
    assert receiver.requests == []
    # Enable from the banner, with the keyboard.
    tab_to(page, "enable-endpoint-button")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("endpoint-disabled-banner")).to_have_count(0)
    expect(endpoint_row(page, created["id"]).get_by_test_id("endpoint-status")).to_have_text("enabled")
    assert api_endpoint(stack, headers, created["id"])["status"] == "enabled"

    # Rotate: a new secret, shown once; the API signs with it from now on.
    endpoint_row(page, created["id"]).get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_test_id("flash-success")).to_contain_text("New secret")
    rotated = api_endpoint(stack, headers, created["id"])["secret"]
    assert rotated != secret
    expect(page.get_by_test_id("flash-success")).to_contain_text(rotated)


def test_an_endpoint_disabled_for_failing_shows_the_banner_with_its_reason(
    stack: Any, new_merchant, axe_page: Page
) -> None:
    merchant = new_merchant()
    headers = merchant["headers"]
    endpoint = requests.post(f"{stack.api}/webhook-endpoints", json={"url": refused_url(), "enabled_events": ["payment.*"]},
                             headers=headers, timeout=10).json()
    for _ in range(3):
        pay(stack, headers)  # 9 deliveries to a refused port: disabled within about a minute (test intervals)
    poll(lambda: api_endpoint(stack, headers, endpoint["id"])["status"] == "disabled", 100, "the endpoint disabled")
    page = axe_page
    page.set_viewport_size(LAPTOP)
    login(page, stack.dashboard, merchant["email"], merchant["password"])
    page.goto(f"{stack.dashboard}/dashboard/webhooks")
    banner = page.locator(f'[data-test-id="endpoint-disabled-banner"][data-endpoint-id="{endpoint["id"]}"]')
    expect(banner).to_contain_text("failing")
    expect(banner.get_by_test_id("enable-endpoint-button")).to_be_visible()
    # The delivery log says why its attempts failed (what was still pending when it was disabled
    # is recorded "endpoint disabled", without an attempt).
    expect(page.get_by_test_id("webhook-error").filter(has_text="Connection refused").first).to_be_visible()
    assert_accessible(page, "dashboard: webhooks with an endpoint disabled for failing")
    # Its webhook_endpoint.disabled event is on the Events page.
    page.goto(f"{stack.dashboard}/dashboard/events?type=webhook_endpoint.disabled")
    expect(page.get_by_test_id("event-row")).to_have_count(1)
    banner_event = api_events(stack, headers, type="webhook_endpoint.disabled")[0]
    assert row_ids(page) == [banner_event["id"]]


def test_an_endpoint_added_with_the_razorpay_format_and_the_default_endpoint_regenerated_not_rotated(
    stack: Any, new_merchant, receiver: Receiver, axe_page: Page
) -> None:
    merchant = new_merchant()
    headers = merchant["headers"]
    page = axe_page
    page.set_viewport_size(LAPTOP)
    login(page, stack.dashboard, merchant["email"], merchant["password"])
    # The default endpoint (the URL of the form above) is listed too.
    page.goto(f"{stack.dashboard}/dashboard/webhooks")
    page.get_by_test_id("webhook-url-input").fill(receiver.url + "/default")
    page.get_by_test_id("save-webhook-button").click()
    expect(page.get_by_test_id("endpoint-row")).to_have_count(1)
    (default,) = requests.get(f"{stack.api}/webhook-endpoints", headers=headers, timeout=10).json()["data"]
    default_row = endpoint_row(page, default["id"])
    expect(default_row.get_by_test_id("endpoint-format")).to_have_text("gateway")
    # Its secret is the one above (regenerated there): no rotate button that would only answer an error.
    expect(default_row.get_by_role("button", name="Rotate secret")).to_have_count(0)
    expect(default_row.get_by_test_id("endpoint-default-note")).to_be_visible()

    # An endpoint in Razorpay's format.
    page.get_by_test_id("endpoint-url-input").fill(receiver.url)
    page.get_by_test_id("endpoint-format-input").select_option("razorpay")
    page.get_by_test_id("add-endpoint-button").click()
    expect(page.get_by_test_id("flash-success")).to_contain_text("whsec_")
    added = [e for e in requests.get(f"{stack.api}/webhook-endpoints", headers=headers, timeout=10).json()["data"]
             if e["id"] != default["id"]]
    assert [(e["url"], e["format"]) for e in added] == [(receiver.url, "razorpay")]
    row = endpoint_row(page, added[0]["id"])
    expect(row.get_by_test_id("endpoint-format")).to_have_text("razorpay")
    expect(row.get_by_role("button", name="Rotate secret")).to_have_count(1)
    assert_accessible(page, "dashboard: webhooks with the default and a Razorpay endpoint")

    # A format the API does not know is refused with its reason, and nothing is added.
    page.get_by_test_id("endpoint-format-input").evaluate("s => { s.options[1].value = 'stripe'; s.value = 'stripe'; }")
    page.get_by_test_id("endpoint-url-input").fill(receiver.url + "/other")
    page.get_by_test_id("add-endpoint-button").click()
    expect(page.get_by_test_id("flash-error")).to_contain_text("format must be one of")
    assert len(requests.get(f"{stack.api}/webhook-endpoints", headers=headers, timeout=10).json()["data"]) == 2
