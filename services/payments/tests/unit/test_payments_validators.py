"""Validators of payment instruments: VPA, Luhn, networks, CVV, expiry."""

from __future__ import annotations

from datetime import date

import pytest
from payments.errors import ExpiredCardError, InvalidCardError, InvalidVpaError
from payments.validators import (
    card_network,
    luhn_valid,
    normalize_card_number,
    validate_cvv,
    validate_expiry,
    validate_vpa,
)

TODAY = date(2026, 11, 26)


@pytest.mark.parametrize("vpa", ["user@paytm", "a.b_c-d@okhdfc", "success@upi", "U1@B2"])
def test_valid_vpas(vpa):
    assert validate_vpa(vpa) == vpa


@pytest.mark.parametrize(
    "vpa", ["", "user", "@paytm", "user@", "user@pay-tm", "user@pay.tm", "us er@upi", "a@b@c", "user@upi\n", None, 5]
)
def test_invalid_vpas(vpa):
    with pytest.raises(InvalidVpaError) as info:
        validate_vpa(vpa)
    assert info.value.code == "INVALID_VPA"
    assert info.value.status == 400


@pytest.mark.parametrize(
    "number", ["4111111111111111", "5555555555554444", "378282246310005", "4000000000000002", "79927398713"]
)
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "", "abcd"])
def test_luhn_rejects_invalid_numbers(number):
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    ("number", "network"),
    [
        ("4111111111111111", "visa"),
        ("5105105105105100", "mastercard"),
        ("5555555555554444", "mastercard"),
        ("5011111111111111", "unknown"),
        ("5611111111111111", "unknown"),
        ("378282246310005", "amex"),
        ("341111111111111", "amex"),
        ("351111111111111", "unknown"),
        ("6011111111111111", "rupay"),
        ("6511111111111111", "rupay"),
        ("8111111111111111", "rupay"),
        ("8911111111111111", "rupay"),
        ("8011111111111111", "unknown"),
        ("6111111111111111", "unknown"),
        ("2222222222222222", "unknown"),
    ],
)
def test_card_networks(number, network):
    assert card_network(number) == network


def test_card_number_spaces_are_ignored():
    assert normalize_card_number("4111 1111 1111 1111") == "4111111111111111"


@pytest.mark.parametrize(
    "number",
    ["411111111111", "41111111111111111111", "4111111111111112", "4111x11111111111", "", None, "٤١١١١١١١١١١١١١١١"],
)
def test_invalid_card_numbers(number):
    with pytest.raises(InvalidCardError) as info:
        normalize_card_number(number)
    assert info.value.code == "INVALID_CARD"


@pytest.mark.parametrize("cvv", ["123", "1234", "000"])
def test_valid_cvv(cvv):
    validate_cvv(cvv)


@pytest.mark.parametrize("cvv", ["12", "12345", "12a", "", None, 123])
def test_invalid_cvv(cvv):
    with pytest.raises(InvalidCardError):
        validate_cvv(cvv)


@pytest.mark.parametrize(
    ("month", "year", "expected"),
    [
        ("12", "2030", (12, 2030)),
        ("1", "30", (1, 2030)),
        ("01", "2027", (1, 2027)),
        (11, 2026, (11, 2026)),
        ("11", "26", (11, 2026)),
    ],
)
def test_valid_expiry(month, year, expected):
    assert validate_expiry(month, year, TODAY) == expected


@pytest.mark.parametrize(
    ("month", "year"),
    [
        ("10", "2026"),
        ("12", "2025"),
        ("12", "25"),
        ("0", "2030"),
        ("13", "2030"),
        ("ab", "2030"),
        ("12", "203"),
        ("12", "20301"),
        (None, "2030"),
        ("12", None),
        (True, "2030"),
        ("12", True),
    ],
)
def test_invalid_or_past_expiry(month, year):
    with pytest.raises(ExpiredCardError) as info:
        validate_expiry(month, year, TODAY)
    assert info.value.code == "EXPIRED_CARD"
