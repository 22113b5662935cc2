"""Presentation helpers: money typed by people, percentages, the chart."""

from __future__ import annotations

import pytest
from dashboard.formatting import chart_svg, format_percent, rupees_to_paise


@pytest.mark.parametrize(
    ("text", "paise"),
    [("500", 50000), ("12.5", 1250), ("0.01", 1), ("1,250.50", 125050), (" 2.00 ", 200)],
)
def test_rupees_to_paise(text: str, paise: int) -> None:
    assert rupees_to_paise(text) == paise


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "1.005", "NaN", "Infinity", "1e400"])
def test_rupees_to_paise_refuses_what_is_not_an_amount(text: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        rupees_to_paise(text)


def test_rupees_to_paise_follows_the_currency_exponent() -> None:
    assert rupees_to_paise("150", "JPY") == 150
    with pytest.raises(ValueError, match="decimal"):
        rupees_to_paise("1.5", "JPY")


@pytest.mark.parametrize(("value", "text"), [(66.67, "66.67%"), (100, "100%"), (95.5, "95.5%"), (0, "0%"), (None, "—")])
def test_format_percent(value: float | None, text: str) -> None:
    assert format_percent(value) == text


def test_chart_has_a_bar_per_day_and_escapes_labels() -> None:
    daily = [
        {"date": "2026-01-01", "count": 2, "success_count": 1, "amount": 50000, "success_rate": 50.0},
        {"date": "2026-01-02", "count": 0, "success_count": 0, "amount": 0, "success_rate": 0},
        {"date": "<script>", "count": 1, "success_count": 1, "amount": 100, "success_rate": 100.0},
    ]
    svg = str(chart_svg(daily))
    assert svg.count('class="bar"') == 3
    assert svg.count('class="dot"') == 2  # days without payments have no success rate
    assert "<script>" not in svg
    assert "₹500.00" in svg


def test_empty_chart_says_so() -> None:
    assert "No payments yet" in str(chart_svg([]))
