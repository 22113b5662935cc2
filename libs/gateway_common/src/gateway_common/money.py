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


def group_digits(digits: str, currency: str = "INR") -> str:
    """Group an integer's digits the way the currency's people read them.

    INR groups in lakhs and crores (``10,02,81,82,460``); other currencies in thousands.
    """
    if currency != "INR" or len(digits) <= 3:
        return f"{int(digits):,}"
    head, tail = digits[:-3], digits[-3:]
    pairs = [head[max(i - 2, 0):i] for i in range(len(head), 0, -2)]
    return ",".join([*reversed(pairs), tail])


def format_amount(amount: int, currency: str = "INR") -> str:
    """Format minor units for people, exactly: 50000 INR -> ``₹500.00``, 1002818246000 -> ``₹10,02,81,82,460.00``."""
    exponent = CURRENCIES.get(currency, 2)
    symbol = SYMBOLS.get(currency, currency + " ")
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(int(amount)), 10**exponent)
    fraction = f".{minor:0{exponent}d}" if exponent else ""
    return f"{sign}{symbol}{group_digits(str(major), currency)}{fraction}"


# Compact units, largest first: Indian crores and lakhs for INR, thousands elsewhere.
_COMPACT = {"INR": ((10**7, "Cr"), (10**5, "L"))}
_COMPACT_DEFAULT = ((10**12, "T"), (10**9, "B"), (10**6, "M"))


def format_amount_compact(amount: int, currency: str = "INR") -> str:
    """Format a large amount short, one decimal of its unit: ``₹1,002.8 Cr``, ``₹12.5 L``, ``$3.2 M``.

    Amounts below the smallest unit (a lakh of rupees, a million elsewhere) are formatted exactly.
    """
    exponent = CURRENCIES.get(currency, 2)
    major = abs(int(amount)) // 10**exponent
    for unit, suffix in _COMPACT.get(currency, _COMPACT_DEFAULT):
        if major >= unit:
            tenths = (abs(int(amount)) * 10 // (unit * 10**exponent))  # truncated: never more than it is
            whole, decimal = divmod(tenths, 10)
            sign = "-" if amount < 0 else ""
            symbol = SYMBOLS.get(currency, currency + " ")
            return f"{sign}{symbol}{group_digits(str(whole), currency)}.{decimal} {suffix}"
    return format_amount(amount, currency)
