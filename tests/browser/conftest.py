"""Browser fixtures shared by the checkout and dashboard tests: one headless Chromium per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Frame, Page, Playwright, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    """Start Playwright once per session (it drives the system Chromium, never a downloaded one)."""
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Launch one headless Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; install it or set CHROMIUM_PATH", pytrace=False)
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Give each test a fresh page in its own context (no shared cookies or storage)."""
    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


# ---------------------------------------------------------------- accessibility (axe-core)

AXE_SCRIPT = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
# What axe reports at these impacts is a barrier for someone; minor and moderate findings are not gated.
BLOCKING_IMPACTS = ("serious", "critical")


@pytest.fixture
def axe_page(browser: Browser) -> Iterator[Page]:
    """A fresh page with axe-core in every document and frame it loads (injected before the page's scripts).

    An init script is not subject to the page's Content-Security-Policy, so the checkout's
    ``script-src 'self'`` stays as it is in production.
    """
    if not AXE_SCRIPT.exists():
        pytest.fail(f"axe-core is missing ({AXE_SCRIPT}); `make test` installs it with npm ci", pytrace=False)
    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.add_init_script(path=str(AXE_SCRIPT))
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def axe_violations(target: Page | Frame) -> list[dict]:
    """Run axe-core on the document of ``target`` (a page or a frame); return its serious and critical violations."""
    return target.evaluate(
        """async (impacts) => {
             const results = await window.axe.run(document, {resultTypes: ['violations'], iframes: false});
             return results.violations
               .filter((v) => impacts.includes(v.impact))
               .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary || ''}`)}));
           }""",
        list(BLOCKING_IMPACTS),
    )


def assert_accessible(target: Page | Frame, where: str) -> None:
    """Fail with axe-core's findings when ``target`` has a serious or critical accessibility violation."""
    found = axe_violations(target)
    report = "\n".join(f"  {v['impact']} {v['id']} ({v['help']}): " + "; ".join(v["nodes"][:6]) for v in found)
    assert not found, f"axe-core on {where}:\n{report}"
