"""Cursor pagination and capped totals of the orders and payments lists, on the real database."""

from __future__ import annotations

import uuid

import pytest
from gateway_common.pagination import TOTAL_CAP

SECRET = "test-gateway-secret"


def merchant() -> dict[str, str]:
    return {"X-Gateway-Secret": SECRET, "X-Merchant-Id": str(uuid.uuid4())}


def insert_payments(admin_conn, merchant_id: str, n: int, *, status: str = "success") -> list[str]:
    """n payments of one merchant, one second apart, newest last; returns their ids newest first."""
    rows = admin_conn.execute(
        "INSERT INTO payments.payments (id, merchant_id, amount, currency, method, status, vpa, card_last4, "
        "created_at, updated_at) "
        "SELECT 'pay_' || lpad(to_hex(hashint8extended(i, %s)), 16, '0'), %s, 100 + i, 'INR', "
        "CASE WHEN i %% 2 = 0 THEN 'upi' ELSE 'card' END, %s, "
        "CASE WHEN i %% 2 = 0 THEN 'a@b' END, CASE WHEN i %% 2 = 1 THEN '4242' END, "
        "now() - (%s - i) * interval '1 second', now() FROM generate_series(1, %s) AS i "
        "RETURNING id, created_at",
        (uuid.uuid4().int % 2**40, merchant_id, status, n, n),
    ).fetchall()
    return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)]


def get(client, headers, path: str):
    response = client.get(path, headers=headers)
    return response.status_code, response.get_json()


def walk(client, headers, path: str, limit: int) -> list[str]:
    """Every id of a list, following starting_after until has_more is false."""
    seen: list[str] = []
    query = f"limit={limit}"
    while True:
        status, body = get(client, headers, f"{path}?{query}")
        assert status == 200, body
        seen += [item["id"] for item in body["data"]]
        if not body["has_more"]:
            return seen
        query = f"limit={limit}&starting_after={seen[-1]}"


def test_starting_after_and_ending_before_walk_the_payments_both_ways(client, admin_conn):
    headers = merchant()
    ids = insert_payments(admin_conn, headers["X-Merchant-Id"], 23)
    assert walk(client, headers, "/api/v1/payments", 5) == ids
    assert walk(client, headers, "/api/v1/payments/list", 7) == ids

    status, page = get(client, headers, f"/api/v1/payments?limit=5&starting_after={ids[9]}")
    assert status == 200
    assert [p["id"] for p in page["data"]] == ids[10:15]
    assert (page["has_more"], page["total"], page["total_is_estimate"], page["offset"]) == (True, 23, False, 0)

    # ending_before: the items just newer than the cursor, still newest first.
    status, page = get(client, headers, f"/api/v1/payments?limit=5&ending_before={ids[10]}")
    assert [p["id"] for p in page["data"]] == ids[5:10]
    assert page["has_more"] is True
    status, page = get(client, headers, f"/api/v1/payments?limit=5&ending_before={ids[3]}")
    assert [p["id"] for p in page["data"]] == ids[0:3]
    assert page["has_more"] is False
    status, page = get(client, headers, f"/api/v1/payments?limit=5&starting_after={ids[-1]}")
    assert (page["data"], page["has_more"]) == ([], False)


def test_offset_keeps_working_and_says_has_more(client, admin_conn):
    headers = merchant()
    ids = insert_payments(admin_conn, headers["X-Merchant-Id"], 12)
    status, page = get(client, headers, "/api/v1/payments?limit=5&offset=5")
    assert status == 200
    assert [p["id"] for p in page["data"]] == ids[5:10]
    assert (page["total"], page["has_more"], page["offset"], page["limit"]) == (12, True, 5, 5)
    status, page = get(client, headers, "/api/v1/payments?limit=5&offset=10")
    assert (len(page["data"]), page["total"], page["has_more"]) == (2, 12, False)
    status, page = get(client, headers, "/api/v1/payments?limit=5&offset=50")
    assert (page["data"], page["total"], page["has_more"]) == ([], 12, False)


def test_cursors_combine_with_filters(client, admin_conn):
    headers = merchant()
    ids = insert_payments(admin_conn, headers["X-Merchant-Id"], 20)
    cards = [p["id"] for p in get(client, headers, "/api/v1/payments?method=card&limit=100")[1]["data"]]
    assert len(cards) == 10
    # Any of the merchant's payments is a position, whether or not it passes the filter.
    status, page = get(client, headers, f"/api/v1/payments?method=card&limit=3&starting_after={ids[0]}")
    assert status == 200
    assert [p["id"] for p in page["data"]] == [i for i in cards if ids.index(i) > 0][:3]
    assert page["total"] == 10


@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/payments/list", "/api/v1/orders"])
def test_hostile_cursors_are_400_and_reveal_nothing(client, admin_conn, path):
    mine, theirs = merchant(), merchant()
    insert_payments(admin_conn, mine["X-Merchant-Id"], 3)
    their_ids = insert_payments(admin_conn, theirs["X-Merchant-Id"], 3)
    their_order = client.post("/api/v1/orders", json={"amount": 500}, headers=theirs).get_json()["id"]
    noun = "order" if path.endswith("orders") else "payment"
    foreign = their_order if noun == "order" else their_ids[1]
    unknown = "order_AAAAAAAAAAAAAAAA" if noun == "order" else "pay_AAAAAAAAAAAAAAAA"
    for name in ("starting_after", "ending_before"):
        answers = []
        for cursor in (foreign, unknown, "x" * 64, "' OR 1=1 --", "%00"):
            status, body = get(client, mine, f"{path}?{name}={cursor}")
            assert status == 400, (cursor, body)
            assert body["error"]["code"] == "BAD_REQUEST_ERROR"
            assert foreign not in str(body)
            answers.append(body)
        # Another merchant's id answers exactly like an id that does not exist.
        assert answers[0] == answers[1] == {
            "error": {"code": "BAD_REQUEST_ERROR", "description": f"{name}: no such {noun} in this list"}
        }
    for query in (f"starting_after={unknown}&ending_before={unknown}", f"starting_after={unknown}&offset=1",
                  "starting_after=", "starting_after=" + "x" * 65):
        status, body = get(client, mine, f"{path}?{query}")
        assert status == 400, (query, body)
        assert body["error"]["code"] == "BAD_REQUEST_ERROR"


def test_both_cursors_are_refused_before_any_lookup(client):
    status, body = get(client, merchant(), "/api/v1/payments?starting_after=pay_AAAAAAAAAAAAAAAA&ending_before=pay_BBBBBBBBBBBBBBBB")
    assert status == 400
    assert "cannot be used together" in body["error"]["description"]


def test_orders_page_by_cursor(client):
    headers = merchant()
    created = [client.post("/api/v1/orders", json={"amount": 100 + i}, headers=headers).get_json()["id"] for i in range(6)]
    assert walk(client, headers, "/api/v1/orders", 4) == list(reversed(created))
    _, page = get(client, headers, f"/api/v1/orders?limit=2&ending_before={created[0]}")
    assert [o["id"] for o in page["data"]] == list(reversed(created))[3:5]
    assert page["has_more"] is True


def test_total_is_counted_up_to_the_cap_then_estimated(client, admin_conn):
    headers = merchant()
    insert_payments(admin_conn, headers["X-Merchant-Id"], TOTAL_CAP + 50)
    admin_conn.execute("ANALYZE payments.payments")
    status, page = get(client, headers, "/api/v1/payments?limit=3")
    assert status == 200
    assert len(page["data"]) == 3 and page["has_more"] is True
    assert page["total_is_estimate"] is True
    assert page["total"] > TOTAL_CAP
    # A filter that keeps fewer than the cap is exact again.
    status, page = get(client, headers, f"/api/v1/payments?limit=3&q={page['data'][0]['id']}")
    assert (page["total"], page["total_is_estimate"], page["has_more"]) == (1, False, False)
    status, page = get(client, headers, "/api/v1/payments?limit=3&method=card")
    assert (page["total"], page["total_is_estimate"]) == ((TOTAL_CAP + 50) // 2, False)
