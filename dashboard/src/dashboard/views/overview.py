"""The overview: credentials and key rotation, headline stats, the volume chart, the latest payments."""

from __future__ import annotations

from typing import Any

from flask import render_template

from dashboard import formatting
from dashboard.security import login_required
from dashboard.views.common import TEST_API_KEY, TEST_API_SECRET, TEST_MERCHANT_ID, api, api_or_none, bp

STATS_DAYS = 14


def _stats() -> tuple[dict[str, Any] | None, str | None]:
    return api_or_none("GET", "/payments/stats", params={"days": STATS_DAYS})


def _credentials(merchant: dict[str, Any]) -> dict[str, Any]:
    is_test = merchant.get("id") == TEST_MERCHANT_ID and merchant.get("api_key") == TEST_API_KEY
    return {
        "api_key": merchant.get("api_key") or "—",
        "hint": merchant.get("api_secret_hint") or "••••••••",
        "revealable": TEST_API_SECRET if is_test else None,
    }


@bp.route("/dashboard", methods=["GET"])
@login_required
def overview() -> str:
    """Show API credentials, headline stats, the volume chart and the latest payments."""
    return _render_overview(new_keys=None)


@bp.post("/dashboard/rotate-keys")
@login_required
def rotate_keys() -> str:
    """Rotate the API key and secret and show the new secret once (no redirect, so it is never stored)."""
    keys = api("POST", "/merchant/rotate-keys")
    return _render_overview(new_keys=keys)


def _render_overview(new_keys: dict[str, Any] | None) -> str:
    merchant = api("GET", "/merchant")
    stats, stats_error = _stats()
    recent, recent_error = api_or_none("GET", "/payments", params={"limit": 8, "offset": 0})
    return render_template(
        "overview.html",
        merchant=merchant,
        credentials=_credentials(merchant),
        new_keys=new_keys,
        stats=stats,
        stats_error=stats_error,
        chart=formatting.chart_svg((stats or {}).get("daily") or [], (stats or {}).get("currency", "INR")),
        recent=(recent or {}).get("data", []),
        recent_error=recent_error,
    )


@bp.get("/dashboard/api/overview")
@login_required
def overview_json() -> dict[str, Any]:
    """Return fresh stats, chart and latest payments for the overview's live update."""
    stats = api("GET", "/payments/stats", params={"days": STATS_DAYS})
    recent = api("GET", "/payments", params={"limit": 8, "offset": 0})
    currency = stats.get("currency", "INR")
    return {
        "total_transactions": f"{int(stats.get('total_transactions') or 0):,}",
        "total_amount": formatting.format_amount_compact(int(stats.get("total_amount") or 0), currency),
        "total_amount_title": formatting.format_amount(int(stats.get("total_amount") or 0), currency),
        "success_rate": formatting.format_percent(stats.get("success_rate")),
        "successful_transactions": f"{int(stats.get('successful_transactions') or 0):,}",
        "failed_transactions": f"{int(stats.get('failed_transactions') or 0):,}",
        "chart": str(formatting.chart_svg(stats.get("daily") or [], currency)),
        "rows": render_template("_payment_rows.html", payments=recent.get("data", []), compact=True),
    }
