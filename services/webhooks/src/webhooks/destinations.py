"""Which webhook URLs and network destinations are allowed (SSRF policy; pure functions)."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from webhooks.errors import InvalidWebhookUrlError

MAX_URL_LENGTH = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"^[0-9a-fA-FxX.]+$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Return why a destination address is refused (``None`` when it is a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return refusal_reason(embedded)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


def literal_ip(host: str) -> IPAddress | None:
    """Parse a host that is an IP literal, including legacy IPv4 forms (``2130706433``, ``0x7f.1``)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """Validate a webhook URL for storage; raise InvalidWebhookUrlError with the reason."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrlError(f"webhook_url must be at most {MAX_URL_LENGTH} characters")
    if _CONTROL.search(url):
        raise InvalidWebhookUrlError("webhook_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrlError("webhook_url is not a valid URL") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidWebhookUrlError("webhook_url must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrlError("webhook_url must include a host")
    if not allow_private:
        if host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
            raise InvalidWebhookUrlError("webhook_url must not point to a private or reserved address")
        ip = literal_ip(host)
        if ip is not None and refusal_reason(ip) is not None:
            raise InvalidWebhookUrlError("webhook_url must not point to a private or reserved address")
    return url
