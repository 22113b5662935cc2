"""OpenAPI-driven fuzzing of the running gateway (schemathesis): no 5xx, answers as the spec documents.

Every operation of the merged spec (``tools.openapi.build()``, the document nginx serves at
``/api/v1/openapi.json``) is called through nginx with generated valid and invalid input, authenticated
as a merchant of its own. Checks: ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance`` and ``ignored_auth`` (a protected route
that answers 2xx is called again without and with wrong credentials, which must be refused).

The short run (``make test``) generates at most ``SHORT_EXAMPLES`` cases per operation on top of the
coverage cases; the long run (``@pytest.mark.slow``, ``make test-long``) generates ``LONG_EXAMPLES``.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections import Counter, defaultdict
from urllib.parse import urlsplit

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from tools import openapi

pytestmark = pytest.mark.e2e

SHORT_EXAMPLES = 10
LONG_EXAMPLES = 300
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, ignored_auth]
ERROR_REF = {"$ref": "#/components/schemas/Error"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def fuzz_spec() -> dict:
    """The merged spec, with the shared error responses flask-smorest refers to filled in when missing.

    The per-service documents say ``"$ref": "#/components/responses/DEFAULT_ERROR"`` (and
    ``UNPROCESSABLE_ENTITY``); if the merge does not carry ``components.responses`` those references
    do not resolve, so they are defined here as the gateway's error envelope (what every service answers).
    """
    spec = copy.deepcopy(openapi.build())
    responses = spec["components"].setdefault("responses", {})
    for name, description in (("DEFAULT_ERROR", "Default error response"), ("UNPROCESSABLE_ENTITY", "Unprocessable Entity")):
        responses.setdefault(name, {"description": description, "content": {"application/json": {"schema": ERROR_REF}}})
    return spec


SPEC = fuzz_spec()
schema = schemathesis.openapi.from_dict(SPEC)
schema = schema.exclude(method="POST", path="/api/v1/merchant/rotate-keys")
# The live stream answers every valid request with a stream that never ends (until the client goes):
# a generated call could only time out. Its input is covered by tests/fuzz/test_hostile_corpus.py and
# its behaviour by tests/e2e/test_stream_and_paygate.py.
schema = schema.exclude(method="GET", path="/api/v1/events/stream")


@pytest.fixture(scope="module")
def fuzz_merchant(stack) -> dict[str, str]:
    """A merchant only this module uses, so fuzzed writes (webhook config, secrets) touch no other test."""
    email = f"fuzz-{secrets.token_hex(4)}@example.com"
    created = json.loads(
        stack.cli("auth.cli", "create-merchant", "--name", "Fuzz Merchant", "--email", email, "--password", "pw-" + secrets.token_hex(8))
    )
    return {"X-Api-Key": created["api_key"], "X-Api-Secret": created["api_secret"]}


@pytest.fixture(scope="module")
def session() -> requests.Session:
    with requests.Session() as http:
        yield http


# The body field that names a webhook URL, by route.
URL_FIELDS = {
    "/api/v1/webhooks/config": "webhook_url",
    "/api/v1/webhook-endpoints": "url",
    "/api/v1/webhook-endpoints/{endpoint_id}": "url",
}


def keep_traffic_local(case) -> None:
    """A generated webhook URL that names another host is replaced, so no delivery leaves the machine."""
    field = URL_FIELDS.get(case.operation.path)
    if field is None or not isinstance(case.body, dict):
        return
    url = case.body.get(field)
    if not isinstance(url, str):
        return
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return
    if host and host not in LOOPBACK_HOSTS:
        case.body[field] = "http://127.0.0.1:9/fuzz"


# Status codes seen per operation by the short run, to prove the cases reached the services.
SEEN: dict[str, Counter] = defaultdict(Counter)


def run_case(case, stack, fuzz_merchant, session) -> None:
    keep_traffic_local(case)
    transport = {"base_url": stack.base, "headers": dict(fuzz_merchant), "session": session, "timeout": 15}
    response = case.call(**transport)
    SEEN[case.operation.label][response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=dict(fuzz_merchant), transport_kwargs=transport)


SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None, print_blob=True)


@schema.parametrize()
@hypothesis.settings(max_examples=SHORT_EXAMPLES, **SETTINGS)
def test_fuzz_short(case, stack, fuzz_merchant, session):
    run_case(case, stack, fuzz_merchant, session)


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(max_examples=LONG_EXAMPLES, **SETTINGS)
def test_fuzz_long(case, stack, fuzz_merchant, session):
    run_case(case, stack, fuzz_merchant, session)


def protected_operations() -> list[tuple[str, str]]:
    found = []
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            if method != "parameters" and operation.get("security") != []:
                found.append((method.upper(), path))
    return found


@pytest.mark.parametrize(("method", "path"), protected_operations())
def test_protected_routes_refuse_missing_and_wrong_credentials(stack, method, path):
    url = stack.base + path.replace("{payment_id}", "pay_" + "A" * 16).replace("{order_id}", "order_" + "A" * 16)
    url = url.replace("{refund_id}", "rfnd_" + "A" * 16).replace("{delivery_id}", "whlog_x")
    for headers in ({}, {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "wrong"}, {"Authorization": "Bearer nope"}):
        response = requests.request(method, url, headers=headers, json={} if method in ("POST", "PUT") else None, timeout=10)
        assert response.status_code == 401, (method, path, headers, response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "AUTHENTICATION_ERROR"


def test_zz_the_short_run_reached_the_services():
    """Most operations answered 2xx to some generated case: the fuzzer was authenticated and got past validation."""
    if not SEEN:
        pytest.skip("the short fuzzing run did not run in this session")
    succeeded = sorted(label for label, codes in SEEN.items() if any(200 <= code < 300 for code in codes))
    assert len(SEEN) >= 25, sorted(SEEN)
    assert len(succeeded) >= len(SEEN) // 2, {label: dict(codes) for label, codes in SEEN.items()}
