"""Pure validators for payment instruments (no I/O)."""

from __future__ import annotations

import re
from datetime import date

from payments.errors import ExpiredCardError, InvalidCardError, InvalidVpaError

VPA_PATTERN = re.compile(r"[a-zA-Z0-9._-]+@[a-zA-Z0-9]+")
_DIGITS = re.compile(r"[0-9]+")
_NETWORKS = (
    ("visa", re.compile(r"4")),
    ("mastercard", re.compile(r"5[1-5]")),
    ("amex", re.compile(r"3[47]")),
    ("rupay", re.compile(r"60|65|8[1-9]")),
)


def validate_vpa(vpa: object) -> str:
    """Return the VPA if it matches ``^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$``, else raise INVALID_VPA."""
    # fullmatch, not ^...$: "$" would also accept a trailing newline.
    if not isinstance(vpa, str) or len(vpa) > 255 or not VPA_PATTERN.fullmatch(vpa):
        raise InvalidVpaError("vpa must look like name@bank (letters, digits, '.', '_', '-')")
    return vpa


def luhn_valid(number: str) -> bool:
    """Tell whether a digit string passes the Luhn checksum."""
    if not number or not number.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_network(number: str) -> str:
    """Name the card network from the number's prefix (``unknown`` when none matches)."""
    for name, prefix in _NETWORKS:
        if prefix.match(number):
            return name
    return "unknown"


def card_digits(number: str) -> str:
    """Return the card number without the spaces and dashes a shopper may type."""
    return number.replace(" ", "").replace("-", "")


def normalize_card_number(number: object) -> str:
    """Return the card number's digits (spaces and dashes allowed), else raise INVALID_CARD."""
    if not isinstance(number, str):
        raise InvalidCardError("card.number is required")
    digits = card_digits(number)
    if not _DIGITS.fullmatch(digits) or not 13 <= len(digits) <= 19:
        raise InvalidCardError("card.number must be 13 to 19 digits")
    if not luhn_valid(digits):
        raise InvalidCardError("card.number is not a valid card number")
    return digits


def validate_cvv(cvv: object) -> None:
    """Raise INVALID_CARD unless the CVV is 3 or 4 digits."""
    if not isinstance(cvv, str) or not _DIGITS.fullmatch(cvv) or len(cvv) not in (3, 4):
        raise InvalidCardError("card.cvv must be 3 or 4 digits")


def _as_int(value: object, max_digits: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()) and len(value.strip()) <= max_digits:
        return int(value.strip())
    return None


def validate_expiry(month: object, year: object, today: date) -> tuple[int, int]:
    """Return (month, four-digit year), or raise EXPIRED_CARD if invalid or before this month."""
    month_value = _as_int(month, 2)
    if month_value is None or not 1 <= month_value <= 12:
        raise ExpiredCardError("card.expiry_month must be 1 to 12")
    year_text = str(year).strip() if isinstance(year, (int, str)) and not isinstance(year, bool) else ""
    if not _DIGITS.fullmatch(year_text) or len(year_text) not in (2, 4):
        raise ExpiredCardError("card.expiry_year must have 2 or 4 digits")
    year_value = int(year_text)
    if len(year_text) == 2:
        year_value += 2000
    if (year_value, month_value) < (today.year, today.month):
        raise ExpiredCardError("Card has expired")
    return month_value, year_value
