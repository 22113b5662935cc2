"""Every route a service serves is in the merged public spec, and the committed spec and reference are current."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from tools import api_reference, openapi

SPEC = openapi.build()
# /razorpay/v1 is Razorpay's contract (its shapes, HTTP Basic), described in docs/razorpay.md and
# covered by its own end-to-end tests and cross-merchant matrix, not by this document.
SKIP = re.compile(r"^(/internal|/health$|/openapi\.json$|/static|/razorpay/)")


def flask_to_openapi(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


@pytest.mark.parametrize("service", [s for s in openapi.SERVICES if (openapi.ROOT / "services" / s / "src" / s / "__init__.py").exists()])
def test_every_route_is_in_the_merged_spec(service):
    app = importlib.import_module(service).create_app()
    missing = []
    for rule in app.url_map.iter_rules():
        if SKIP.search(rule.rule):
            continue
        path = flask_to_openapi(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method.lower() not in SPEC["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing, f"routes missing from the OpenAPI spec: {missing}"


def test_public_routes_need_no_credentials_and_the_rest_do():
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            if openapi.is_public(method, path) or path == "/health":
                assert operation.get("security") == [], f"{method} {path}"
            else:
                assert "security" not in operation, f"{method} {path}"
                assert "401" in operation["responses"]


def test_committed_spec_is_up_to_date():
    committed = json.loads((openapi.ROOT / "gateway-nginx" / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(SPEC)), "run `python -m tools.openapi` and commit gateway-nginx/openapi.json"


def test_committed_api_reference_is_up_to_date():
    committed = (openapi.ROOT / "docs" / "api-reference.md").read_text()
    assert committed == api_reference.render(SPEC), "run `python -m tools.api_reference` and commit docs/api-reference.md"


def test_api_reference_lists_every_route_and_error_code():
    reference = api_reference.render(SPEC)
    for path, operations in SPEC["paths"].items():
        for method in operations.keys() - {"parameters"}:
            assert f"\n### {method.upper()} {path}\n" in reference
    for code in ("INVALID_VPA", "IDEMPOTENCY_KEY_MISMATCH", "CONFLICT_ERROR", "SERVICE_UNAVAILABLE"):
        assert f"`{code}`" in reference


def test_explorer_calls_the_gateway_that_served_it():
    # A relative server: "Try it out" in /api/v1/docs stays on the page's own origin and port.
    assert SPEC["servers"] == [{"url": "/", "description": "the gateway that serves this document"}]
    assert all(path == "/health" or path.startswith("/api/v1/") for path in SPEC["paths"])
    schemes = SPEC["components"]["securitySchemes"]
    assert {(s["in"], s["name"]) for s in schemes.values() if s["type"] == "apiKey"} == {("header", "X-Api-Key"), ("header", "X-Api-Secret")}


def anchors(markdown: Path) -> set[str]:
    return {api_reference.slug(m.group(1).strip()) for m in re.finditer(r"^#{1,6} (.+)$", markdown.read_text(), re.M)}


@pytest.mark.parametrize("page", sorted((openapi.ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_links_between_docs_resolve(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"
