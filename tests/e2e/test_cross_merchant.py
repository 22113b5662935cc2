"""Cross-merchant matrix: every id-bearing route × own / other merchant's / unknown id.

The routes come from the merged OpenAPI spec, so a new route is covered automatically.
Another merchant's id must look exactly like an unknown one: 404 NOT_FOUND_ERROR.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from tools import openapi

pytestmark = pytest.mark.e2e

SPEC = openapi.build()
ID_ROUTES = sorted(
    (method, path)
    for path, ops in SPEC["paths"].items()
    for method in ops
    if method != "parameters" and "{" in path and not openapi.is_public(method, path)
)
BODIES = {"capture": {}, "refunds": {"amount": 100, "reason": "matrix"}, "retry": {}}


def kind_of(path: str) -> str:
    return path.split("/")[3]  # /api/v1/<kind>/{id}...


def _wait_status(stack, headers, payment_id, want):
    deadline = time.time() + 30
    while time.time() < deadline:
        body = requests.get(f"{stack.api}/payments/{payment_id}", headers=headers, timeout=10).json()
        if body["status"] in want:
            return body
        time.sleep(0.3)
    raise AssertionError(f"payment {payment_id} not in {want}")


@pytest.fixture(scope="module")
def owned(stack, merchant):
    """Resources of the test merchant: an order, a successful payment, a refund, a webhook log."""
    order = requests.post(f"{stack.api}/orders", json={"amount": 50000}, headers=merchant, timeout=10).json()
    payment = requests.post(f"{stack.api}/payments", json={"order_id": order["id"], "method": "upi", "vpa": "success@upi"}, headers=merchant, timeout=10).json()
    _wait_status(stack, merchant, payment["id"], {"success"})
    refund = requests.post(f"{stack.api}/payments/{payment['id']}/refunds", json={"amount": 100}, headers=merchant, timeout=10).json()
    requests.put(f"{stack.api}/webhooks/config", json={"webhook_url": "http://127.0.0.1:9/matrix"}, headers=merchant, timeout=10)
    test_event = requests.post(f"{stack.api}/webhooks/test", headers=merchant, timeout=10).json()
    return {"orders": order["id"], "payments": payment["id"], "refunds": refund["id"], "webhooks": test_event["id"]}


UNKNOWN = {"orders": "order_AAAAAAAAAAAAAAAA", "payments": "pay_AAAAAAAAAAAAAAAA", "refunds": "rfnd_AAAAAAAAAAAAAAAA", "webhooks": "whlog_AAAAAAAAAAAAAAAA"}


def _call(stack, method, path, resource_id, headers):
    url = stack.base + re.sub(r"\{[^}]+\}", resource_id, path, count=1)
    body = BODIES.get(path.rsplit("/", 1)[-1]) if method in ("post", "put") else None
    return requests.request(method.upper(), url, json=body, headers=headers, timeout=10)


def test_the_matrix_covers_the_id_routes():
    kinds = {kind_of(p) for _, p in ID_ROUTES}
    assert {"orders", "payments", "refunds", "webhooks"} <= kinds, ID_ROUTES


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
def test_other_merchants_ids_look_unknown(stack, merchant, other_merchant, owned, method, path):
    kind = kind_of(path)
    own_id = owned[kind]
    mine = _call(stack, method, path, own_id, merchant)
    assert mine.status_code != 404, f"own {kind} should be visible: {mine.text}"
    theirs = _call(stack, method, path, own_id, other_merchant)
    unknown = _call(stack, method, path, UNKNOWN[kind], other_merchant)
    for response in (theirs, unknown):
        assert response.status_code == 404, f"{method.upper()} {path}: {response.status_code} {response.text}"
        assert response.json()["error"]["code"] == "NOT_FOUND_ERROR"
    assert own_id not in theirs.text
