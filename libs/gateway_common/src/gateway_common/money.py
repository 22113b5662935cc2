"""Money in integer minor units."""

from __future__ import annotations

# ISO 4217 codes the gateway accepts, with their minor-unit exponent.
CURRENCIES: dict[str, int] = {
    "INR": 2, "USD": 2, "EUR": 2, "GBP": 2, "AED": 2, "AUD": 2, "CAD": 2, "SGD": 2,
    "CHF": 2, "CNY": 2, "HKD": 2, "MYR": 2, "NZD": 2, "SAR": 2, "SEK": 2, "ZAR": 2,
    "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "OMR": 3,
}
SYMBOLS = {"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
# Amounts are stored in BIGINT columns; this is that column's range.
MAX_AMOUNT = 2**63 - 1


def is_currency(code: str) -> bool:
    """Tell whether the gateway accepts this ISO 4217 code."""
    return code in CURRENCIES


def format_amount(amount: int, currency: str = "INR") -> str:
    """Format minor units for people, e.g. 50000 INR -> ``₹500.00``."""
    exponent = CURRENCIES.get(currency, 2)
    major = amount / (10**exponent) if exponent else amount
    symbol = SYMBOLS.get(currency, currency + " ")
    return f"{symbol}{major:,.{exponent}f}"
