"""How nginx serves the checkout CDN: types, compression, caching, CORS and security headers."""

from __future__ import annotations

import re

import pytest
import requests

pytestmark = pytest.mark.e2e

ASSET = re.compile(r'(?:href|src)="(/assets/[^"]+)"')


@pytest.fixture(scope="module")
def assets(stack) -> dict[str, str]:
    """Return the fingerprinted assets the checkout page references, by extension."""
    html = requests.get(f"{stack.checkout}/checkout", timeout=10).text
    found = {path.rsplit(".", 1)[1]: path for path in ASSET.findall(html)}
    assert set(found) >= {"js", "css", "svg"}, found
    return found


def get(url: str, **headers: str) -> requests.Response:
    """GET without following redirects or letting requests decompress behind our back."""
    return requests.get(url, headers={"Accept-Encoding": "identity", **headers}, timeout=10, allow_redirects=False)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/checkout", "text/html"),
        ("/success", "text/html"),
        ("/failure", "text/html"),
        ("/checkout.js", "application/javascript"),
        ("/config.js", "application/javascript"),
    ],
)
def test_pages_and_scripts_have_their_content_type(stack, path: str, content_type: str) -> None:
    response = get(f"{stack.checkout}{path}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == f"{content_type}; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_assets_have_their_content_type_and_are_immutable(stack, assets: dict[str, str]) -> None:
    types = {"js": "application/javascript", "css": "text/css", "svg": "image/svg+xml"}
    for ext, path in assets.items():
        response = get(f"{stack.checkout}{path}")
        assert response.status_code == 200
        assert response.headers["Content-Type"].split(";")[0] == types[ext]
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_sdk_and_pages_are_revalidated_not_cached_for_long(stack) -> None:
    sdk = get(f"{stack.checkout}/checkout.js")
    assert sdk.headers["Cache-Control"] == "public, max-age=60, must-revalidate"
    assert sdk.headers["Access-Control-Allow-Origin"] == "*"
    assert sdk.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    for path in ("/checkout", "/success", "/failure", "/config.js"):
        assert get(f"{stack.checkout}{path}").headers["Cache-Control"] == "no-cache"


def test_etags_answer_conditional_requests_with_304(stack, assets: dict[str, str]) -> None:
    for path in ("/checkout", "/checkout.js", assets["css"]):
        first = get(f"{stack.checkout}{path}")
        etag = first.headers["ETag"]
        again = get(f"{stack.checkout}{path}", **{"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""


def test_text_is_gzipped(stack, assets: dict[str, str]) -> None:
    for path in ("/checkout", "/checkout.js", assets["js"], assets["css"], assets["svg"]):
        plain = get(f"{stack.checkout}{path}")
        zipped = get(f"{stack.checkout}{path}", **{"Accept-Encoding": "gzip"})
        assert zipped.headers.get("Content-Encoding") == "gzip", path
        assert "Accept-Encoding" in zipped.headers["Vary"]
        assert zipped.content == plain.content  # requests decodes it; same bytes as served plain


def test_pages_may_be_framed_by_merchants_and_load_only_our_code(stack) -> None:
    csp = get(f"{stack.checkout}/checkout").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["frame-ancestors"] == "*"
    assert directives["script-src"] == "'self'"
    assert stack.base in directives["connect-src"]
    assert "X-Frame-Options" not in get(f"{stack.checkout}/checkout").headers


def test_config_points_the_pages_at_the_gateway_api(stack) -> None:
    body = get(f"{stack.checkout}/config.js").text
    assert f'apiBase: "{stack.api}"' in body


def test_server_hides_its_version_and_refuses_other_methods(stack) -> None:
    response = get(f"{stack.checkout}/checkout.js")
    assert response.headers.get("Server") == "nginx"
    assert requests.post(f"{stack.checkout}/checkout", data="x", timeout=10).status_code == 405
    missing = get(f"{stack.checkout}/nope.html")
    assert missing.status_code == 404
    assert "Page not found" in missing.text
    assert "nginx/" not in missing.text
    assert get(f"{stack.checkout}/").headers["Location"].endswith("/checkout")


def test_assets_directory_is_not_listed(stack) -> None:
    assert get(f"{stack.checkout}/assets/").status_code in (403, 404)
