"""SSRF policy: which addresses and URLs are refused."""

from __future__ import annotations

import ipaddress

import pytest
from webhooks.destinations import check_webhook_url, literal_ip, refusal_reason
from webhooks.errors import InvalidWebhookUrlError


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "::127.0.0.1",
    ],
)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_reasons_name_the_class() -> None:
    assert refusal_reason(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert refusal_reason(ipaddress.ip_address("::ffff:127.0.0.1")) == "loopback"
    assert refusal_reason(ipaddress.ip_address("169.254.169.254")) == "link-local"
    assert refusal_reason(ipaddress.ip_address("0.0.0.0")) == "unspecified"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("10.0.0.1", "10.0.0.1"),
        ("example.com", None),
        ("cafe.de", None),
    ],
)
def test_literal_ip_understands_legacy_ipv4_forms(host: str, expected: str | None) -> None:
    parsed = literal_ip(host)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4000/webhook",
        "http://localhost/webhook",
        "http://app.localhost/webhook",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://[::1]:4000/",
        "http://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/hook",
        "http://0.0.0.0:80/",
    ],
)
def test_private_literal_urls_are_refused_outside_test_mode(url: str) -> None:
    with pytest.raises(InvalidWebhookUrlError):
        check_webhook_url(url, allow_private=False)
    assert check_webhook_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "example.com/hook",
        "http://",
        "http:///path",
        "https://exa mple.com/",
        "http://example.com:99999/",
        "http://example.com/\n",
        "https://example.com/" + "a" * 2030,
    ],
)
def test_malformed_urls_are_refused_even_in_test_mode(url: str) -> None:
    with pytest.raises(InvalidWebhookUrlError):
        check_webhook_url(url, allow_private=True)


def test_public_urls_are_accepted() -> None:
    assert check_webhook_url("https://merchant.example.com/webhooks?x=1", allow_private=False)
    assert check_webhook_url("http://93.184.216.34:8080/h", allow_private=False)
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert check_webhook_url(url, allow_private=False) == url
