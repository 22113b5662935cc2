"""The integration guide, with the merchant's own key in its snippets."""

from __future__ import annotations

from flask import current_app, render_template

from dashboard import snippets
from dashboard.security import login_required
from dashboard.views.common import TEST_API_KEY, TEST_API_SECRET, TEST_MERCHANT_ID, api_or_none, bp


@bp.get("/dashboard/docs")
@login_required
def docs() -> str:
    """Show how to integrate: create an order, open checkout.js, verify webhooks."""
    merchant, _ = api_or_none("GET", "/merchant")
    merchant = merchant or {}
    is_test = merchant.get("id") == TEST_MERCHANT_ID and merchant.get("api_key") == TEST_API_KEY
    code = snippets.render(
        api=current_app.config["PUBLIC_API_URL"],
        checkout=current_app.config["PUBLIC_CHECKOUT_URL"].rstrip("/"),
        api_key=merchant.get("api_key") or "YOUR_API_KEY",
        api_secret=TEST_API_SECRET if is_test else "YOUR_API_SECRET",
    )
    return render_template(
        "docs.html",
        code=code,
        api_url=current_app.config["PUBLIC_API_URL"],
        test_instruments=snippets.TEST_INSTRUMENTS,
        test_controls=snippets.TEST_CONTROLS,
    )
