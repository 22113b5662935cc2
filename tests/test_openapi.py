"""Every route a service serves is in the merged public spec, and the committed spec is current."""

from __future__ import annotations

import importlib
import json
import re

import pytest

from tools import openapi

SPEC = openapi.build()
SKIP = re.compile(r"^(/internal|/health$|/openapi\.json$|/static)")


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
