"""Merge every service's OpenAPI document into the gateway's public spec.

    python -m tools.openapi [OUT]     write the merged spec (default gateway-nginx/openapi.json)
    python -m tools.openapi --check   fail if the committed spec is out of date

Each service generates its document from the marshmallow schemas that serve it
(flask-smorest); the gateway serves the merged one at /api/v1/openapi.json.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["auth", "payments", "refunds", "webhooks"]
DEFAULT_OUT = ROOT / "gateway-nginx" / "openapi.json"
# Routes of API.md that need no credentials.
PUBLIC = [
    ("post", re.compile(r"^/api/v1/payments/public$")),
    ("get", re.compile(r"^/api/v1/payments/\{[^}]+\}/public$")),
    ("post", re.compile(r"^/api/v1/payments/\{[^}]+\}/authenticate$")),
    ("get", re.compile(r"^/api/v1/orders/\{[^}]+\}/public$")),
    ("get", re.compile(r"^/api/v1/test/(merchant|jobs/status)$")),
    ("post", re.compile(r"^/api/v1/auth/login$")),
]
ERROR_REF = {"$ref": "#/components/schemas/Error"}
# POSTs that create or change money honour Idempotency-Key (API.md).
MONEY_POSTS = re.compile(
    r"^/api/v1/(orders|payments|payments/public|payments/\{[^}]+\}/(capture|refunds|authenticate))$"
)
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Run this request once: a repeat with the same key and body replays the first answer byte for "
    "byte (with Idempotent-Replayed: true) for 24 h; a different body is 422, a repeat while the first is in flight 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def error_codes() -> list[dict[str, Any]]:
    """List every stable error code the services answer, from the ApiError classes that raise them."""
    from gateway_common import errors

    modules = [errors]
    for name in SERVICES:
        if (ROOT / "services" / name / "src" / name / "errors.py").exists():
            modules.append(importlib.import_module(f"{name}.errors"))
    found: dict[tuple[int, str], list[str]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, errors.ApiError) and value.__module__ == module.__name__:
                descriptions = found.setdefault((value.status, value.code), [])
                if value.description not in descriptions:
                    descriptions.append(value.description)
    return [{"status": status, "code": code, "descriptions": found[status, code]} for status, code in sorted(found)]


def error_schema() -> dict[str, Any]:
    """Return the error envelope's schema, with the codes it can carry."""
    codes = error_codes()
    listing = ", ".join(f"`{c['code']}` ({c['status']})" for c in codes)
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "description"],
                "properties": {
                    "code": {"type": "string", "description": f"A stable code: {listing}."},
                    "description": {"type": "string", "description": "What went wrong, for a human."},
                },
            }
        },
        # Read by tools/api_reference.py for the error table of docs/api-reference.md.
        "x-error-codes": codes,
    }


def service_spec(name: str) -> dict:
    """Return one service's OpenAPI document, built from its app."""
    module = importlib.import_module(name)
    app = module.create_app()
    return app.test_client().get("/openapi.json").get_json()


def _rename_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        return {k: (f"#/components/schemas/{prefix}{v.rsplit('/', 1)[1]}" if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/") else _rename_refs(v, prefix)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rename_refs(v, prefix) for v in node]
    return node


def is_public(method: str, path: str) -> bool:
    """Tell whether API.md lets this route be called without credentials."""
    return any(method == m and rx.search(path) for m, rx in PUBLIC)


def build() -> dict:
    """Build the merged public spec."""
    os.environ.setdefault("GATEWAY_SECRET", "openapi-build")
    merged: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "Payment gateway API",
            "version": "1.0.0",
            "description": "Orders, payments, refunds and webhooks. Authenticate with X-Api-Key and X-Api-Secret "
            "(or a dashboard Bearer token). Errors: {\"error\": {\"code\", \"description\"}}.",
        },
        # Relative, so the explorer at /api/v1/docs calls the gateway that served it, whatever its
        # host and port (the paths already start with /api/v1).
        "servers": [{"url": "/", "description": "the gateway that serves this document"}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Report the database, Redis and workers",
                    "security": [],
                    "responses": {"200": {"description": "healthy"}, "503": {"description": "a dependency is down"}},
                }
            }
        },
        "components": {
            "schemas": {
                "Error": error_schema(),
            },
            # flask-smorest's shared responses, answered by every service in the gateway's envelope.
            "responses": {
                "DEFAULT_ERROR": {"description": "Error", "content": {"application/json": {"schema": ERROR_REF}}},
                "UNPROCESSABLE_ENTITY": {"description": "Invalid request", "content": {"application/json": {"schema": ERROR_REF}}},
            },
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "The merchant's API key (test merchant: key_test_abc123)."},
                "ApiSecret": {"type": "apiKey", "in": "header", "name": "X-Api-Secret", "description": "The merchant's API secret (test merchant: secret_test_xyz789); sent with X-Api-Key."},
                "DashboardToken": {"type": "http", "scheme": "bearer", "description": "A dashboard session token from POST /api/v1/auth/login, instead of the key and secret."},
            },
        },
        "security": [{"ApiKey": [], "ApiSecret": []}, {"DashboardToken": []}],
    }
    for name in SERVICES:
        if not (ROOT / "services" / name / "src" / name / "__init__.py").exists():
            continue
        prefix = name.capitalize()
        spec = _rename_refs(service_spec(name), prefix)
        for schema_name, schema in spec.get("components", {}).get("schemas", {}).items():
            merged["components"]["schemas"][prefix + schema_name] = schema
        for path, operations in spec.get("paths", {}).items():
            if path.startswith("/internal") or path in ("/health", "/openapi.json"):
                continue
            target = merged["paths"].setdefault(path, {})
            for method, operation in operations.items():
                if method == "parameters":
                    target["parameters"] = operation
                    continue
                operation.setdefault("tags", [name])
                responses = operation.setdefault("responses", {})
                if is_public(method, path):
                    operation["security"] = []
                else:
                    responses.setdefault("401", {"description": "Missing or invalid credentials", "content": {"application/json": {"schema": ERROR_REF}}})
                # Validation errors are 400 here (webargs' 422 is remapped by the error handler);
                # 422 and 409 belong to Idempotency-Key reuse on money POSTs.
                if responses.get("422", {}).get("$ref", "").endswith("/UNPROCESSABLE_ENTITY"):
                    invalid = responses.pop("422")
                    responses.setdefault("400", invalid)
                if method == "post" and MONEY_POSTS.search(path):
                    params = operation.setdefault("parameters", [])
                    if not any(p.get("name", "").lower() == "idempotency-key" for p in params):
                        params.append(IDEMPOTENCY_HEADER)
                    responses.setdefault("409", {"description": "A request with this Idempotency-Key is in flight", "content": {"application/json": {"schema": ERROR_REF}}})
                    responses.setdefault("422", {"description": "Idempotency-Key reused with a different request", "content": {"application/json": {"schema": ERROR_REF}}})
                for code, response in list(responses.items()):
                    if code.startswith(("4", "5")) and "content" not in response and "$ref" not in response:
                        response["content"] = {"application/json": {"schema": ERROR_REF}}
                target[method] = operation
    return merged


def write_or_check(argv: list[str], text: str, default_out: Path, command: str) -> int:
    """Write a generated file (to argv[0] or default_out), or with --check fail if it is stale."""
    if argv and argv[0] == "--check":
        if not default_out.exists() or default_out.read_text() != text:
            print(f"{default_out} is out of date: run `{command}`", file=sys.stderr)
            return 1
        return 0
    out = Path(argv[0]) if argv else default_out
    out.write_text(text)
    print(f"wrote {out}")
    return 0


def main(argv: list[str]) -> int:
    """Write or check the merged spec."""
    return write_or_check(argv, json.dumps(build(), indent=2, sort_keys=True) + "\n", DEFAULT_OUT, "python -m tools.openapi")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
