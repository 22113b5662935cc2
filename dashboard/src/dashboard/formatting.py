"""Presentation helpers: money, percentages and the inline SVG volume chart."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway_common.money import CURRENCIES, MAX_AMOUNT, format_amount, format_amount_compact
from markupsafe import Markup, escape

__all__ = ["chart_svg", "format_amount", "format_amount_compact", "format_percent", "rupees_to_paise"]


def format_percent(value: float | int | None) -> str:
    """Format a success rate given in percent, as precise as the API (``66.67`` -> ``66.67%``, ``100`` -> ``100%``)."""
    if value is None:
        return "—"
    return f"{float(value):.2f}".rstrip("0").rstrip(".") + "%"


def rupees_to_paise(text: str, currency: str = "INR") -> int:
    """Convert a major-unit amount typed by a person (``"12.50"``) to minor units, or raise ``ValueError``."""
    exponent = CURRENCIES.get(currency, 2)
    try:
        value = Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, AttributeError) as exc:
        raise ValueError("Enter the amount as a number, e.g. 125.50") from exc
    if not value.is_finite() or value <= 0:
        raise ValueError("Enter an amount greater than zero")
    minor = value.scaleb(exponent)
    if minor > MAX_AMOUNT:
        raise ValueError("That amount is too large")
    if minor != minor.to_integral_value():
        raise ValueError(f"Use at most {exponent} decimal places")
    return int(minor)


def _axis(max_value: float) -> tuple[float, int]:
    """Return a readable tick step (1, 2, 2.5 or 5 times a power of ten) and how many ticks reach ``max_value``."""
    if max_value <= 0:
        return 10000.0, 4  # an empty chart still shows a sensible ₹0-₹400 scale
    raw = max_value / 4 / 1.25
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return float(step), max(math.ceil(max_value / step), 1)


def _short_money(minor: float, currency: str) -> str:
    exponent = CURRENCIES.get(currency, 2)
    major = minor / 10**exponent
    symbol = "₹" if currency == "INR" else currency + " "
    for limit, suffix in (
        ((1e7, "Cr"), (1e5, "L"), (1e3, "K")) if currency == "INR" else ((1e9, "B"), (1e6, "M"), (1e3, "K"))
    ):
        if major >= limit:
            return f"{symbol}{major / limit:g}{suffix}"
    return f"{symbol}{major:g}"


def chart_svg(daily: list[dict[str, Any]], currency: str = "INR") -> Markup:
    """Draw daily volume (bars) and success rate (line) as an accessible inline SVG."""
    width, height = 1040, 280
    left, right, top, bottom = 64, 48, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    days = daily or []
    n = max(len(days), 1)
    step, ticks = _axis(max((float(d.get("amount") or 0) for d in days), default=0))
    max_amount = step * ticks
    slot = plot_w / n
    bar_w = max(min(slot * 0.62, 36), 2)
    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" preserveAspectRatio="xMidYMid meet" '
        f'aria-label="Payment volume and success rate, last {len(days)} days" data-test-id="volume-chart">',
    ]
    for i in range(ticks + 1):
        y = top + plot_h * i / ticks
        label = escape(_short_money(max_amount - step * i, currency))
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for rate in (0, 50, 100):
        y = top + plot_h * (1 - rate / 100)
        parts.append(f'<text class="axis rate" x="{left + plot_w + 8}" y="{y + 4:.1f}">{rate}%</text>')
    points: list[str] = []
    dots: list[str] = []
    label_every = 1 if n <= 8 else 2 if n <= 16 else max(n // 7, 1)
    for i, day in enumerate(days):
        amount = float(day.get("amount") or 0)
        count = int(day.get("count") or 0)
        success_count = int(day.get("success_count") or 0)
        rate = day.get("success_rate")
        cx = left + slot * i + slot / 2
        bar_h = plot_h * amount / max_amount if max_amount else 0
        label = _day_label(str(day.get("date", "")))
        title = (
            f"{label}: {format_amount(int(amount), currency)} · {count} payments · "
            f"{success_count} successful · {format_percent(rate) if count else 'no payments'}"
        )
        parts.append(
            f'<rect class="bar" x="{cx - bar_w / 2:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w:.1f}" '
            f'height="{max(bar_h, 0):.1f}" rx="3"><title>{escape(title)}</title></rect>'
        )
        if count and rate is not None:
            ry = top + plot_h * (1 - min(max(float(rate), 0), 100) / 100)
            points.append(f"{cx:.1f},{ry:.1f}")
            dots.append(
                f'<circle class="dot" cx="{cx:.1f}" cy="{ry:.1f}" r="3.5"><title>{escape(title)}</title></circle>'
            )
        if i % label_every == 0 or i == n - 1:
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{height - 12}" text-anchor="middle">{escape(label)}</text>'
            )
    if len(points) > 1:
        parts.append(f'<polyline class="line" points="{" ".join(points)}"/>')
    parts.extend(dots)
    if not days:
        parts.append(
            f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">No payments yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def _day_label(iso_day: str) -> str:
    try:
        return date.fromisoformat(iso_day[:10]).strftime("%d %b")
    except ValueError:
        return iso_day
