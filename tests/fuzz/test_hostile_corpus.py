"""A hand-made corpus of hostile input, sent through nginx to every route of the public spec.

Deep nesting (100,000 levels and, small enough for the POST /payments fast path, 20,000), integers
of 5,000 digits, lone UTF-16 surrogates in values and in keys, and the same as a raw top-level
document; hostile query strings, path segments and Idempotency-Keys. Every answer must be a 4xx in
the API.md envelope (``application/json``), never a 5xx or an HTML page, and a refused request
must store nothing (rows of the merchant counted in PostgreSQL before and after).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import psycopg
import pytest
import requests

from tools import openapi

pytestmark = pytest.mark.e2e

SPEC = openapi.build()
OK_REFUSALS = {400, 401, 404, 405, 413}
URI_REFUSALS = {*OK_REFUSALS, 414}
HOLE = "__HOSTILE__"

DEEP = 100_000
FAST_DEEP = 20_000  # small enough (under 64 KiB) for the payments fast path to read the body itself
BIG_INT = "9" * 5000


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


TOP_LEVEL = {
    "deep array": deep_array(DEEP),
    "deep object": deep_object(DEEP),
    "deep array (fast-path size)": deep_array(FAST_DEEP),
    "deep object (fast-path size)": deep_object(FAST_DEEP // 2),
    "5000-digit int": BIG_INT,
    "huge exponent": "1e999999",
    "lone high surrogate": '"\\ud800"',
    "lone low surrogate": '"\\udc00"',
    "surrogate key": '{"\\ud800": 1}',
}
AS_VALUE = {
    "deep array": deep_array(FAST_DEEP),
    "deep object": deep_object(FAST_DEEP // 4),
    "5000-digit int": BIG_INT,
    "5000-digit negative int": "-" + BIG_INT,
    "lone high surrogate": '"\\ud800"',
    "lone low surrogate": '"\\udc00"',
    "surrogate inside text": '"ok\\udfffok@upi"',
    "reversed pair": '"\\udc00\\ud800"',
}


def bodies(base: dict) -> Iterator[tuple[str, str]]:
    """Yield (name, raw JSON text) of each hostile body built on one route's valid body."""
    yield from TOP_LEVEL.items()
    for field in base:
        for name, fragment in AS_VALUE.items():
            yield f"{name} as {field}", json.dumps({**base, field: HOLE}).replace(f'"{HOLE}"', fragment)
    for name, key in (("high", "\\ud800"), ("low", "\\udc00")):
        yield f"lone {name} surrogate as a key", json.dumps(base)[:-1] + f', "{key}": 1}}'
        nested = json.dumps({**base, "notes": {HOLE: "v"}}).replace(HOLE, key)
        yield f"lone {name} surrogate as a notes key", nested


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def corpus_merchant(stack) -> dict[str, str]:
    """A merchant only this module uses: credentials, id and public key."""
    email = f"hostile-{secrets.token_hex(4)}@example.com"
    created = json.loads(
        stack.cli("auth.cli", "create-merchant", "--name", "Hostile", "--email", email, "--password", "pw-hostile-1")
    )
    return {**created, "email": email, "password": "pw-hostile-1"}


@pytest.fixture(scope="module")
def creds(corpus_merchant) -> dict[str, str]:
    return {"X-Api-Key": corpus_merchant["api_key"], "X-Api-Secret": corpus_merchant["api_secret"]}


@pytest.fixture(scope="module")
def targets(stack, creds) -> dict[str, str]:
    """An order, a successful payment and one awaiting 3-D Secure of the corpus merchant, so routes get past their 404."""
    order = requests.post(f"{stack.api}/orders", json={"amount": 50000}, headers=creds, timeout=10).json()
    payment = requests.post(
        f"{stack.api}/payments",
        json={"order_id": order["id"], "method": "upi", "vpa": "success@upi"},
        headers=creds,
        timeout=10,
    ).json()
    deadline = time.monotonic() + 30
    while requests.get(f"{stack.api}/payments/{payment['id']}", headers=creds, timeout=10).json()["status"] != "success":
        assert time.monotonic() < deadline, "the corpus merchant's payment did not succeed in time"
        time.sleep(0.2)
    order2 = requests.post(f"{stack.api}/orders", json={"amount": 50000}, headers=creds, timeout=10).json()
    order3 = requests.post(f"{stack.api}/orders", json={"amount": 50000}, headers=creds, timeout=10).json()
    card = {"number": "4000000000003220", "expiry_month": "12", "expiry_year": "2030", "cvv": "123"}
    waiting = requests.post(
        f"{stack.api}/payments", json={"order_id": order3["id"], "method": "card", "card": card}, headers=creds, timeout=10
    ).json()
    assert waiting["authentication"]["status"] == "pending", waiting
    # Every event the setup causes stored (the order's order.paid and the waiting payment's
    # payment.pending may come last, each by its own task), then an endpoint: nothing is on its way
    # to it while the corpus runs, so a refused request that still made a delivery shows in the snapshot.
    def stored() -> list[dict]:
        return requests.get(f"{stack.api}/events?limit=100", headers=creds, timeout=10).json()["data"]

    def seen(events: list[dict]) -> set[tuple[str, str]]:
        return {(e["type"], (e["data"].get("payment") or {}).get("id", "")) for e in events}

    wanted = {("payment.success", payment["id"]), ("order.paid", payment["id"]), ("payment.pending", waiting["id"])}
    while True:
        all_events = stored()
        if wanted <= seen(all_events):
            time.sleep(1)  # and none still arriving
            if len(stored()) == len(all_events):
                break
        assert time.monotonic() < deadline + 30, f"the corpus merchant's events were not all stored in time: {seen(all_events)}"
        time.sleep(0.5)
    events = [e for e in all_events if e["type"] == "payment.success"]
    endpoint = requests.post(f"{stack.api}/webhook-endpoints", json={"url": "http://127.0.0.1:9/hostile"}, headers=creds,
                             timeout=10).json()
    return {"order_id": order["id"], "payment_id": payment["id"], "fresh_order_id": order2["id"],
            "waiting_payment_id": waiting["id"], "event_id": events[0]["id"], "endpoint_id": endpoint["id"]}


def snapshot(database_url: str, merchant: str) -> dict[str, object]:
    """What a refused request must not change: the merchant's rows, idempotency keys, webhook endpoint, sessions."""
    queries = {
        "orders": ("SELECT count(*), max(updated_at) FROM payments.orders WHERE merchant_id = %s", True),
        "payments": ("SELECT count(*), max(updated_at) FROM payments.payments WHERE merchant_id = %s", True),
        "refunds": ("SELECT count(*), max(created_at) FROM refunds.refunds WHERE merchant_id = %s", True),
        "balances": ("SELECT count(*), max(updated_at) FROM refunds.payment_balances WHERE merchant_id = %s", True),
        "payments idempotency keys": ("SELECT count(*) FROM payments.idempotency_keys", False),
        "refunds idempotency keys": ("SELECT count(*) FROM refunds.idempotency_keys", False),
        "webhook endpoints": ("SELECT id, url, secret, format, enabled_events, status, updated_at FROM webhooks.endpoints "
                              "WHERE merchant_id = %s ORDER BY id", True),
        "events": ("SELECT count(*) FROM webhooks.events WHERE merchant_id = %s", True),
        "deliveries": ("SELECT count(*), max(updated_at) FROM webhooks.deliveries WHERE merchant_id = %s", True),
        "sessions": ("SELECT count(*) FROM auth.sessions WHERE merchant_id = %s", True),
        "test clock": ("SELECT offset_seconds, updated_at FROM auth.test_clocks WHERE merchant_id = %s", True),
        "payments outbox": ("SELECT count(*) FROM payments.outbox WHERE merchant_id = %s", True),
        "refunds outbox": ("SELECT count(*) FROM refunds.outbox WHERE merchant_id = %s", True),
    }
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        found = {}
        for name, (query, by_merchant) in queries.items():
            cur.execute(query, (merchant,) if by_merchant else ())
            found[name] = cur.fetchall()
    conn.close()
    return found


def route_url(stack, path: str, targets: dict[str, str]) -> str:
    # A payment that an accepted answer would change: a refused one must leave it waiting.
    if path.endswith("/authenticate"):
        path = path.replace("{payment_id}", targets["waiting_payment_id"])
    for name in ("payment_id", "event_id", "endpoint_id"):
        path = path.replace("{" + name + "}", targets[name])
    return stack.base + path


def base_body(method: str, path: str, corpus_merchant: dict, targets: dict[str, str]) -> dict:
    """A valid body of each route with a body: the hostile values replace its fields one by one."""
    known = {
        ("POST", "/api/v1/auth/login"): {"email": corpus_merchant["email"], "password": corpus_merchant["password"]},
        ("POST", "/api/v1/orders"): {"amount": 50000, "currency": "INR", "receipt": "r1"},
        # A plain UPI payment: what the fast path answers itself.
        ("POST", "/api/v1/payments"): {"amount": 1000, "method": "upi", "vpa": "success@upi", "order_id": "ref_1"},
        ("POST", "/api/v1/payments/{payment_id}/capture"): {"amount": 50000},
        ("POST", "/api/v1/payments/public"): {
            "order_id": targets["fresh_order_id"],
            "method": "upi",
            "vpa": "success@upi",
            "key": corpus_merchant["api_key"],
        },
        ("POST", "/api/v1/payments/{payment_id}/refunds"): {"amount": 100, "reason": "r"},
        ("POST", "/api/v1/payments/{payment_id}/authenticate"): {"otp": "1234", "key": corpus_merchant["api_key"]},
        ("PUT", "/api/v1/webhooks/config"): {"webhook_url": "http://127.0.0.1:9/hostile", "format": "gateway"},
        ("POST", "/api/v1/webhook-endpoints"): {
            "url": "http://127.0.0.1:9/hostile", "enabled_events": ["payment.success"], "description": "d", "format": "gateway",
        },
        ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}"): {
            "url": "http://127.0.0.1:9/hostile", "enabled_events": ["refund.*"], "description": "d", "status": "enabled",
        },
        ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): {"expire_previous_in_seconds": 60},
        ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/replay"): {
            "created_gte": "2026-01-01T00:00:00Z", "created_lte": "2026-01-02T00:00:00Z", "types": ["payment.*"],
            "only_failed": True,
        },
        ("POST", "/api/v1/events/{event_id}/resend"): {"endpoint_id": targets["endpoint_id"]},
        ("POST", "/api/v1/test/clock/advance"): {"seconds": 60},
    }
    assert (method, path) in known, f"give {method} {path} a valid body in this corpus test"
    return known[(method, path)]


def body_operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
        if method != "parameters" and "requestBody" in operation
    ]


def check_refusal(response: requests.Response, allowed: set[int] = OK_REFUSALS) -> str | None:
    """Return what is wrong with an answer to hostile input, or None."""
    content_type = response.headers.get("Content-Type", "")
    if response.status_code not in allowed:
        return f"{response.status_code} {content_type} {response.text[:120]!r}"
    if not content_type.startswith("application/json"):
        return f"{response.status_code} with Content-Type {content_type!r}"
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} not in the error envelope: {response.text[:120]!r}"
    if not (isinstance(error.get("code"), str) and isinstance(error.get("description"), str)):
        return f"{response.status_code} envelope without code/description: {error!r}"
    return None


def send(session: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
    """Send one request; on the login route's per-IP limit wait and try again (429 means it never arrived)."""
    for _ in range(5):
        response = session.request(method, url, timeout=30, **kwargs)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return response


# ------------------------------------------------------------------------------------------ bodies


@pytest.mark.parametrize(("method", "path"), body_operations())
def test_hostile_bodies_are_refused_in_the_envelope_and_store_nothing(
    stack, creds, corpus_merchant, targets, method, path
):
    base = base_body(method, path, corpus_merchant, targets)
    url = route_url(stack, path, targets)
    before = snapshot(stack.database_url, corpus_merchant["id"])
    wrong: dict[str, str] = {}
    seen: dict[int, int] = {}
    with requests.Session() as session:
        for name, raw in bodies(base):
            for variant, extra in (("", {}), (" with Idempotency-Key", {"Idempotency-Key": secrets.token_hex(8)})):
                headers = {**creds, "Content-Type": "application/json", **extra}
                response = send(session, method, url, data=raw.encode(), headers=headers)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                problem = check_refusal(response)
                if problem:
                    wrong[name + variant] = problem
    after = snapshot(stack.database_url, corpus_merchant["id"])
    assert not wrong, f"{method} {path}: statuses seen {seen}; wrong answers:\n" + "\n".join(
        f"  {name}: {problem}" for name, problem in wrong.items()
    )
    assert after == before, f"{method} {path}: a refused request stored something"


def test_the_corpus_covers_the_fast_path_and_every_body_route():
    """The POST /payments corpus has bodies the fast path reads itself (JSON, under 64 KiB, no key)."""
    operations = body_operations()
    assert ("POST", "/api/v1/payments") in operations
    assert len(operations) >= 7, operations
    small = [raw for name, raw in bodies({"amount": 1000, "method": "upi", "vpa": "a@b"}) if len(raw) < 64 * 1024]
    assert any(raw.startswith("[[[") for raw in small)
    assert any("\\ud800" in raw and '"vpa": "\\ud800"' in raw for raw in small)


# ------------------------------------------------------------------------------------------ queries, paths, headers


def get_operations() -> list[tuple[str, list[str]]]:
    found = []
    for path, operations in SPEC["paths"].items():
        operation = operations.get("get")
        if operation is not None:
            names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            found.append((path, names))
    return found


HOSTILE_QUERY_VALUES = {
    "5000 digits": BIG_INT,
    "invalid UTF-8": "%ff%fe",
    "encoded surrogate": "%ed%a0%80",
    "NUL": "%00",
    "huge exponent": "1e999999",
}


# The live stream answers a query it accepts with a stream that never ends: only its headers are read.
STREAM = "/api/v1/events/stream"


@pytest.mark.parametrize(("path", "names"), get_operations())
def test_hostile_query_strings_are_never_a_server_error(stack, creds, targets, path, names):
    url = route_url(stack, path, targets).replace("{order_id}", targets["order_id"])
    url = url.replace("{refund_id}", "rfnd_" + "A" * 16).replace("{delivery_id}", "whlog_" + "A" * 16)
    wrong = {}
    with requests.Session() as session:
        for param in [*names, "limit"]:
            for name, value in HOSTILE_QUERY_VALUES.items():
                response = send(session, "GET", f"{url}?{param}={value}", headers=creds, stream=path == STREAM)
                if path == STREAM and response.status_code == 200:
                    response.close()
                    continue  # an ignored parameter: the stream opened (its answer is tested in tests/e2e)
                # Routes that take no such parameter may ignore it (200); a 2xx must still be JSON.
                if response.status_code >= 500 or not response.headers.get("Content-Type", "").startswith(
                    ("application/json", "text/html")  # GET /api/v1/docs is a page
                ):
                    wrong[f"{param}={name}"] = f"{response.status_code} {response.text[:120]!r}"
                elif response.status_code >= 400 and (problem := check_refusal(response, URI_REFUSALS)):
                    wrong[f"{param}={name}"] = problem
    assert not wrong, f"GET {path}: {wrong}"


HOSTILE_SEGMENTS = ["%ff%fe", "%ed%a0%80", "%00", "a%00b", "%c0%af", BIG_INT, "pay_%ed%b0%80AAAAAAAAAAAAA", "..%2f..%2f"]


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/api/v1/orders/{}"),
        ("GET", "/api/v1/orders/{}/public"),
        ("GET", "/api/v1/payments/{}"),
        ("GET", "/api/v1/payments/{}/public"),
        ("POST", "/api/v1/payments/{}/capture"),
        ("POST", "/api/v1/payments/{}/authenticate"),
        ("GET", "/api/v1/payments/{}/refunds"),
        ("POST", "/api/v1/payments/{}/refunds"),
        ("GET", "/api/v1/refunds/{}"),
        ("GET", "/api/v1/webhooks/{}"),
        ("POST", "/api/v1/webhooks/{}/retry"),
        ("GET", "/api/v1/events/{}"),
        ("POST", "/api/v1/events/{}/resend"),
        ("GET", "/api/v1/webhook-endpoints/{}"),
        ("PATCH", "/api/v1/webhook-endpoints/{}"),
        ("DELETE", "/api/v1/webhook-endpoints/{}"),
        ("POST", "/api/v1/webhook-endpoints/{}/rotate-secret"),
        ("POST", "/api/v1/webhook-endpoints/{}/replay"),
    ],
)
def test_hostile_path_segments_are_refused_in_the_envelope(stack, creds, corpus_merchant, method, template):
    before = snapshot(stack.database_url, corpus_merchant["id"])
    wrong = {}
    with requests.Session() as session:
        for segment in HOSTILE_SEGMENTS:
            body = {"amount": 100} if method == "POST" else {"description": "d"} if method == "PATCH" else None
            response = send(session, method, stack.base + template.format(segment), json=body, headers=creds)
            if problem := check_refusal(response, URI_REFUSALS):
                wrong[segment[:40]] = problem
    assert not wrong, f"{method} {template}: {wrong}"
    assert snapshot(stack.database_url, corpus_merchant["id"]) == before


ODD_KEYS = {
    "latin-1 bytes": "\xff\xfe\xe9",
    "5000 characters": "k" * 5000,
    "control character": "a\x7fb",
    "tab inside": "a\tb",
    "percent NUL": "%00",
    "quotes and semicolons": "\"';--",
}


def test_a_5000_digit_limit_reaches_the_service_and_is_a_400(stack, creds):
    """nginx and the services accept the same request-line length, so the app's validation answers."""
    for path in ("/api/v1/orders", "/api/v1/payments", "/api/v1/refunds", "/api/v1/webhooks", "/api/v1/events"):
        response = requests.get(f"{stack.base}{path}?limit={BIG_INT}", headers=creds, timeout=10)
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
        assert check_refusal(response) is None


@pytest.mark.parametrize("length", [8100, 8189, 8190, 8191, 8192, 8200, 9000, 20000])
def test_request_lines_near_and_over_the_limit_are_answered_in_the_envelope(stack, creds, length):
    """Over nginx's buffers nginx answers 414 itself; just under, the service answers; never HTML."""
    prefix = "/api/v1/orders?limit=1&pad="
    url = prefix + "x" * (length - len("GET  HTTP/1.1") - len(prefix))
    response = requests.get(stack.base + url, headers=creds, timeout=10)
    assert response.status_code in (200, 414), (response.status_code, response.text[:200])
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:200]
    if response.status_code == 414:
        assert check_refusal(response, URI_REFUSALS) is None


def test_a_header_over_the_buffers_is_a_400_in_the_envelope(stack, creds):
    response = requests.get(f"{stack.api}/orders", headers={**creds, "Idempotency-Key": "k" * 20000}, timeout=10)
    assert check_refusal(response) is None, response.text[:200]


@pytest.mark.parametrize("name", list(ODD_KEYS))
def test_odd_idempotency_keys_are_never_a_server_error(stack, creds, corpus_merchant, name):
    """A key the service will not keep is refused with 400 and nothing stored; one it keeps works."""
    before = snapshot(stack.database_url, corpus_merchant["id"])
    response = requests.post(
        f"{stack.api}/orders",
        data=b'{"amount": 50000}',
        headers={**creds, "Content-Type": "application/json", "Idempotency-Key": ODD_KEYS[name].encode("latin-1")},
        timeout=10,
    )
    assert response.status_code in (201, *OK_REFUSALS, 431), response.text[:200]
    assert response.headers["Content-Type"].startswith("application/json")
    if response.status_code >= 400:
        assert check_refusal(response, {*OK_REFUSALS, 431}) is None
        assert snapshot(stack.database_url, corpus_merchant["id"]) == before
