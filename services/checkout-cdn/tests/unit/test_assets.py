"""The static files: fingerprints, references, CSP-safe markup and the nginx server block."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CDN = Path(__file__).resolve().parents[2]
PUBLIC = CDN / "public"
TEMPLATE = CDN / "nginx-server.conf.template"
PLACEHOLDERS = {"CHECKOUT_LISTEN", "CHECKOUT_PORT", "CHECKOUT_ROOT", "API_ORIGIN", "CHECKOUT_ORIGIN"}
CONTRACT_IDS = {
    "checkout-container",
    "order-summary",
    "order-amount",
    "order-id",
    "payment-methods",
    "method-upi",
    "method-card",
    "upi-form",
    "vpa-input",
    "pay-button",
    "card-form",
    "card-number-input",
    "expiry-input",
    "cvv-input",
    "cardholder-name-input",
    "processing-state",
    "processing-message",
    "success-state",
    "payment-id",
    "success-message",
    "error-state",
    "error-message",
    "retry-button",
}


def load_fingerprint():
    """Import fingerprint.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("checkout_fingerprint", CDN / "fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_text_files() -> list[Path]:
    """Return the files under public/ that may reference assets."""
    return [p for p in PUBLIC.rglob("*") if p.is_file() and p.suffix in {".html", ".css", ".js", ".svg"}]


def test_every_asset_name_carries_its_content_hash() -> None:
    fingerprint = load_fingerprint()
    for path in (PUBLIC / "assets").iterdir():
        assert path.name == fingerprint.expected_name(path), "run: python services/checkout-cdn/fingerprint.py"


def test_every_referenced_asset_exists() -> None:
    for path in public_text_files():
        for ref in re.findall(r"/assets/[A-Za-z0-9._-]+", path.read_text()):
            assert (PUBLIC / ref.lstrip("/")).is_file(), f"{path.name} references missing {ref}"


def test_pages_need_no_inline_code_so_the_csp_can_forbid_it() -> None:
    for path in PUBLIC.glob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path.name
        assert "<style" not in html
        assert not re.search(r"\sstyle=", html)
        assert not re.search(r"\son[a-z]+=", html)


def test_checkout_page_carries_every_contract_test_id() -> None:
    ids = set(re.findall(r'data-test-id="([a-z-]+)"', (PUBLIC / "checkout.html").read_text()))
    assert ids >= CONTRACT_IDS


def test_sdk_builds_the_contract_modal() -> None:
    sdk = (PUBLIC / "checkout.js").read_text()
    for needle in (
        "payment-gateway-modal",
        "'payment-modal'",
        "'payment-iframe'",
        "'close-modal-button'",
        "modal-overlay",
        "modal-content",
        "close-button",
    ):
        assert needle in sdk
    assert "postMessage(" in sdk
    assert not re.search(r"postMessage\([^)]*'\*'\)", sdk), "never post to any origin"


def test_server_block_uses_only_the_placeholders_the_renderer_fills() -> None:
    assert set(re.findall(r"\$\{([A-Z0-9_]+)\}", TEMPLATE.read_text())) <= PLACEHOLDERS


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_server_block_is_valid_nginx(tmp_path: Path) -> None:
    values = {
        "CHECKOUT_LISTEN": "127.0.0.1:3999",
        "CHECKOUT_PORT": "3999",
        "CHECKOUT_ROOT": str(PUBLIC),
        "API_ORIGIN": "http://127.0.0.1:8000",
        "CHECKOUT_ORIGIN": "http://127.0.0.1:3999",
    }
    block = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: values[m.group(1)], TEMPLATE.read_text())
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {tmp_path};\nproxy_temp_path {tmp_path};\n"
        f"fastcgi_temp_path {tmp_path};\nuwsgi_temp_path {tmp_path};\nscgi_temp_path {tmp_path};\n{block}\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-q", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
