"""The API explorer at /api/v1/docs in a real browser: packaged Swagger UI, "Try it out" against this gateway."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Page, Request, expect

from tests.conftest import TEST_KEY, TEST_SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def authorize(page: Page, scheme: str, value: str) -> None:
    """Fill one API-key scheme in Swagger UI's Authorize dialog and confirm it."""
    container = page.locator(".auth-container").filter(has=page.locator("h4", has_text=scheme)).first
    container.locator("input").fill(value)
    container.locator("button.authorize").click()
    expect(container.locator("h6", has_text="Authorized")).to_be_visible()


def test_try_it_out_lists_orders_through_this_gateway_and_nothing_leaves_the_machine(stack, page: Page) -> None:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))
    page.goto(f"{stack.base}/api/v1/docs")

    operation = page.locator(".opblock-get").filter(has=page.locator('.opblock-summary-path[data-path="/api/v1/orders"]'))
    expect(operation).to_be_visible()
    page.locator("button.btn.authorize").first.click()
    authorize(page, "ApiKey", TEST_KEY)
    authorize(page, "ApiSecret", TEST_SECRET)
    page.locator(".modal-ux button.btn-done").first.click()

    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/orders") as answered:
        operation.locator("button.execute").click()
    response = answered.value
    assert response.status == 200, response.text()
    assert response.request.headers.get("x-api-key") == TEST_KEY
    assert urlsplit(response.url).netloc == urlsplit(stack.base).netloc
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")

    origin = urlsplit(stack.base)
    for request in seen:
        url = urlsplit(request.url)
        if url.scheme in ("data", "blob"):
            continue
        assert (url.scheme, url.hostname) == ("http", "127.0.0.1"), f"request left the machine: {request.url}"
    assert any(urlsplit(r.url).path == "/api/v1/docs/swagger-ui-bundle.js" for r in seen)
    assert any(urlsplit(r.url).netloc == origin.netloc and urlsplit(r.url).path == "/api/v1/openapi.json" for r in seen)


def test_only_the_explorer_files_are_served(stack) -> None:
    script = requests.get(f"{stack.base}/api/v1/docs/swagger-ui-bundle.js", timeout=10)
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    assert "SwaggerUIBundle" in script.text
    # The package's demo page (which loads the Petstore spec from the internet) is not served.
    demo = requests.get(f"{stack.base}/api/v1/docs/index.html", timeout=10)
    assert demo.status_code == 404
    assert demo.json()["error"]["code"] == "NOT_FOUND_ERROR"
