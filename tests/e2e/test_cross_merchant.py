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
BODIES = {"capture": {}, "refunds": {"amount": 100, "reason": "matrix"}, "retry": {}, "resend": {}, "rotate-secret": {},
          "replay": {}}


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
    endpoint = requests.post(f"{stack.api}/webhook-endpoints", json={"url": "http://127.0.0.1:9/matrix-endpoint"},
                             headers=merchant, timeout=10).json()
    deadline = time.time() + 30
    while time.time() < deadline:
        events = requests.get(f"{stack.api}/events?type=payment.success&limit=100", headers=merchant, timeout=10).json()["data"]
        event = next((e for e in events if e["data"]["payment"]["id"] == payment["id"]), None)
        if event is not None:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the payment's payment.success event was not stored")
    yield {"orders": order["id"], "payments": payment["id"], "refunds": refund["id"], "webhooks": test_event["id"],
           "events": event["id"], "webhook-endpoints": endpoint["id"]}
    # The test merchant is shared: later tests must not find a dead endpoint of ours.
    requests.delete(f"{stack.api}/webhook-endpoints/{endpoint['id']}", headers=merchant, timeout=10)


UNKNOWN = {"orders": "order_AAAAAAAAAAAAAAAA", "payments": "pay_AAAAAAAAAAAAAAAA", "refunds": "rfnd_AAAAAAAAAAAAAAAA",
           "webhooks": "whlog_AAAAAAAAAAAAAAAA", "events": "evt_AAAAAAAAAAAAAAAA", "webhook-endpoints": "we_AAAAAAAAAAAAAAAA"}


def _call(stack, method, path, resource_id, headers):
    url = stack.base + re.sub(r"\{[^}]+\}", resource_id, path, count=1)
    body = BODIES.get(path.rsplit("/", 1)[-1]) if method in ("post", "put", "patch") else None
    return requests.request(method.upper(), url, json=body, headers=headers, timeout=10)


def test_the_matrix_covers_the_id_routes():
    kinds = {kind_of(p) for _, p in ID_ROUTES}
    assert {"orders", "payments", "refunds", "webhooks", "events", "webhook-endpoints"} <= kinds, ID_ROUTES


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
def test_other_merchants_ids_look_unknown(stack, merchant, other_merchant, owned, method, path):
    kind = kind_of(path)
    own_id = owned[kind]
    if method == "delete":
        # A fresh one to delete, so the other routes still find theirs.
        own_id = requests.post(f"{stack.api}/{kind}", json={"url": "http://127.0.0.1:9/to-delete"}, headers=merchant,
                               timeout=10).json()["id"]
    # The other merchant goes first: the owner's call after it proves it changed nothing (a DELETE).
    theirs = _call(stack, method, path, own_id, other_merchant)
    unknown = _call(stack, method, path, UNKNOWN[kind], other_merchant)
    mine = _call(stack, method, path, own_id, merchant)
    assert mine.status_code != 404, f"own {kind} should be visible: {mine.text}"
    for response in (theirs, unknown):
        assert response.status_code == 404, f"{method.upper()} {path}: {response.status_code} {response.text}"
        assert response.json()["error"]["code"] == "NOT_FOUND_ERROR"
    assert own_id not in theirs.text


# ---------------------------------------------------------------- /razorpay/v1
# Razorpay's routes are not in the OpenAPI document; they are read from the blueprints that serve
# them, so a new one is covered automatically too. Razorpay answers another merchant's id exactly
# as an unknown one: 400 BAD_REQUEST_ERROR "The id provided does not exist".


def _razorpay_id_routes() -> list[tuple[str, str]]:
    from flask import Flask
    from payments import razorpay as payments_razorpay
    from refunds import razorpay as refunds_razorpay

    app = Flask("matrix")
    app.register_blueprint(payments_razorpay.blp, name="rzp_payments")
    app.register_blueprint(refunds_razorpay.blp, name="rzp_refunds")
    return sorted(
        (method.lower(), re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if "<" in rule.rule and rule.rule.startswith("/razorpay/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


RAZORPAY_ID_ROUTES = _razorpay_id_routes()
RAZORPAY_BODIES = {"capture": {"amount": 50000, "currency": "INR"}, "refund": {"amount": 100}}
RAZORPAY_UNKNOWN = {
    "{order_id}": "order_AAAAAAAAAAAAAAAA", "{payment_id}": "pay_AAAAAAAAAAAAAAAA", "{refund_id}": "rfnd_AAAAAAAAAAAAAAAA",
}


@pytest.fixture(scope="module")
def rzp_owned(stack, owned):
    """The test merchant's order, successful payment and refund, by Razorpay's path parameter names."""
    return {"{order_id}": owned["orders"], "{payment_id}": owned["payments"], "{refund_id}": owned["refunds"]}


def _rzp_call(stack, method, path, ids, auth):
    url = stack.base + path
    for name, value in ids.items():
        url = url.replace(name, value)
    body = RAZORPAY_BODIES.get(path.rsplit("/", 1)[-1]) if method == "post" else None
    return requests.request(method.upper(), url, json=body, auth=auth, timeout=10)


def test_the_razorpay_matrix_covers_its_id_routes():
    paths = {p for _, p in RAZORPAY_ID_ROUTES}
    assert {"/razorpay/v1/orders/{order_id}", "/razorpay/v1/payments/{payment_id}", "/razorpay/v1/refunds/{refund_id}",
            "/razorpay/v1/payments/{payment_id}/refunds/{refund_id}"} <= paths, RAZORPAY_ID_ROUTES


@pytest.mark.parametrize(("method", "path"), RAZORPAY_ID_ROUTES)
def test_razorpay_other_merchants_ids_look_unknown(stack, merchant, other_merchant, rzp_owned, method, path):
    mine_auth = (merchant["X-Api-Key"], merchant["X-Api-Secret"])
    theirs_auth = (other_merchant["X-Api-Key"], other_merchant["X-Api-Secret"])
    names = re.findall(r"\{[a-z_]+\}", path)
    mine = _rzp_call(stack, method, path, {n: rzp_owned[n] for n in names}, mine_auth)
    assert mine.status_code != 400 or "does not exist" not in mine.text, f"own ids should be visible: {mine.text}"
    theirs = _rzp_call(stack, method, path, {n: rzp_owned[n] for n in names}, theirs_auth)
    unknown = _rzp_call(stack, method, path, {n: RAZORPAY_UNKNOWN[n] for n in names}, theirs_auth)
    for response in (theirs, unknown):
        assert response.status_code == 400, f"{method.upper()} {path}: {response.status_code} {response.text}"
        error = response.json()["error"]
        assert (error["code"], error["description"]) == ("BAD_REQUEST_ERROR", "The id provided does not exist")
    assert theirs.json() == unknown.json()
    for value in rzp_owned.values():
        assert value not in theirs.text


# Lists paged by cursor: another merchant's id as starting_after / ending_before must answer exactly
# like an id that does not exist (400), never a page that starts from it.
LIST_ROUTES = sorted(
    path
    for path, ops in SPEC["paths"].items()
    if "get" in ops and any(p.get("name") == "starting_after" for p in ops["get"].get("parameters", []))
)
LIST_KIND = {"/api/v1/orders": "orders", "/api/v1/payments": "payments", "/api/v1/payments/list": "payments",
             "/api/v1/refunds": "refunds", "/api/v1/webhooks": "webhooks", "/api/v1/payments/{payment_id}/refunds": "refunds",
             "/api/v1/events": "events"}


def test_every_list_takes_cursors():
    assert set(LIST_ROUTES) == set(LIST_KIND), LIST_ROUTES


@pytest.mark.parametrize("path", LIST_ROUTES)
@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
def test_another_merchants_id_as_a_cursor_looks_unknown(stack, merchant, other_merchant, owned, path, cursor):
    kind = LIST_KIND[path]
    url = stack.base + path.replace("{payment_id}", owned["payments"])
    mine = requests.get(url, params={cursor: owned[kind]}, headers=merchant, timeout=10)
    assert mine.status_code == 200, mine.text
    theirs = requests.get(url, params={cursor: owned[kind]}, headers=other_merchant, timeout=10)
    unknown = requests.get(url, params={cursor: UNKNOWN[kind]}, headers=other_merchant, timeout=10)
    # The payment's own refunds list is 404 for the other merchant before any cursor is read.
    expected = 404 if "{payment_id}" in path else 400
    assert theirs.status_code == unknown.status_code == expected, theirs.text
    assert theirs.json() == unknown.json()
    assert owned[kind] not in theirs.text


# The live stream has no id in its path: its ids are Last-Event-ID. Another merchant resuming from our
# event gets nothing of ours, while we resuming from it get what came after.


def _stream_for(stack, headers: dict, last_event_id: str, seconds: float) -> list[str]:
    """Read a stream from ``last_event_id`` for ``seconds``; return its ``id:`` lines."""
    ids = []
    deadline = time.monotonic() + seconds
    with requests.get(f"{stack.api}/events/stream", headers={**headers, "Last-Event-ID": last_event_id}, stream=True,
                      timeout=(5, 2)) as response:
        assert response.status_code == 200, response.text
        try:
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("id: "):
                    ids.append(line[4:])
                if time.monotonic() > deadline:
                    break
        except requests.exceptions.ConnectionError:
            pass  # the read timeout of a quiet stream
    return ids


def test_another_merchants_stream_carries_nothing_of_ours(stack, merchant, other_merchant, owned):
    assert requests.post(f"{stack.api}/webhooks/test", headers=merchant, timeout=10).status_code in (200, 202)
    ours = [e["id"] for e in requests.get(f"{stack.api}/events?type=webhook.test&limit=1", headers=merchant,
                                          timeout=10).json()["data"]]
    mine = _stream_for(stack, merchant, owned["events"], 3)
    assert ours[0] in mine  # what came after our payment.success, our own test event included
    theirs = _stream_for(stack, other_merchant, owned["events"], 3)
    assert not set(theirs) & set(mine), theirs
