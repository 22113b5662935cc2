"""No full card number or CVV reaches the database, Redis or a log.

Runs last (testpaths order), after the end-to-end and browser suites on the same system, pays with
test cards itself so there is something to leak, then scans every table of every
service schema, every Redis key and every log line for a 13-19 digit Luhn-valid number
and for CVV fields.
"""

from __future__ import annotations

import re
import time

import psycopg2
import pytest
import redis
import requests

pytestmark = pytest.mark.e2e

CARDS = ["4111111111111111", "5555555555554444", "4000000000000002", "4000000000009995", "378282246310005", "6071000000000001"]
CVV = "987"
# A digit run standing alone (not part of a hex digest or an id, where runs occur by chance).
DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])")


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_like(text: str) -> list[str]:
    # Issuer prefixes of the card networks (2-6, 8); millisecond timestamps (1...) are not cards
    # and one in ten of them passes Luhn by chance.
    return [m for m in DIGITS.findall(text) if m[0] in "234568" and luhn_ok(m)]


def _pay_with_cards(stack, merchant) -> list[str]:
    ids = []
    for number in CARDS:
        order = requests.post(f"{stack.api}/orders", json={"amount": 12345, "currency": "INR", "receipt": "scan"}, headers=merchant, timeout=10)
        assert order.status_code == 201, order.text
        card = {"number": number, "expiry_month": "12", "expiry_year": "2031", "cvv": CVV if not number.startswith("37") else "9876", "holder_name": "Scan Test"}
        paid = requests.post(f"{stack.api}/payments", json={"order_id": order.json()["id"], "method": "card", "card": card}, headers=merchant, timeout=10)
        assert paid.status_code == 201, paid.text
        assert number not in paid.text and "cvv" not in paid.json()
        ids.append(paid.json()["id"])
    order = requests.post(f"{stack.api}/orders", json={"amount": 20000}, headers=merchant, timeout=10).json()
    public = requests.post(
        f"{stack.api}/payments/public",
        json={"key": merchant["X-Api-Key"], "order_id": order["id"], "method": "card",
              "card": {"number": CARDS[0], "expiry_month": "11", "expiry_year": "2032", "cvv": CVV, "holder_name": "Shopper"}},
        timeout=10,
    )
    assert public.status_code == 201, public.text
    ids.append(public.json()["id"])
    # A rejected card must not leak either (validation errors echo nothing back).
    bad = requests.post(f"{stack.api}/payments", json={"amount": 500, "currency": "INR", "method": "card", "order_id": "scan_bad",
                                                       "card": {"number": "4111111111111112", "expiry_month": "12", "expiry_year": "2031", "cvv": CVV, "holder_name": "X"}},
                        headers=merchant, timeout=10)
    assert bad.status_code == 400 and "4111111111111112" not in bad.text
    return ids


def test_no_card_number_or_cvv_is_stored_queued_or_logged(stack, merchant):
    ids = _pay_with_cards(stack, merchant)
    deadline = time.time() + 60
    while time.time() < deadline:
        statuses = {requests.get(f"{stack.api}/payments/{pid}", headers=merchant, timeout=10).json()["status"] for pid in ids}
        if statuses <= {"success", "failed"}:
            break
        time.sleep(0.5)
    assert statuses <= {"success", "failed"}, statuses
    time.sleep(1)  # let relays and webhook attempts write what they write

    hits: list[str] = []
    conn = psycopg2.connect(stack.database_url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('auth', 'payments', 'refunds', 'webhooks') ORDER BY 1, 2"
        )
        columns = cur.fetchall()
        tables: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, column, dtype in columns:
            tables.setdefault((schema, table), []).append((column, dtype))
            if "cvv" in column.lower() or column.lower() in ("card_number", "number", "pan"):
                hits.append(f"column {schema}.{table}.{column}")
        for (schema, table), cols in tables.items():
            exprs = [f"convert_from({c}, 'UTF8')" if d == "bytea" else f"{c}::text" for c, d in cols]
            cur.execute(f'SELECT concat_ws(\' \', {", ".join(exprs)}) FROM "{schema}"."{table}"')
            for (text,) in cur.fetchall():
                for found in card_like(text or ""):
                    hits.append(f"{schema}.{table}: {found}")
                if text and re.search(r'"cvv"\s*:', text):
                    hits.append(f"{schema}.{table}: cvv field")
    conn.close()

    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = list(client.hgetall(key).values())
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        for value in values:
            text = value.decode(errors="replace")
            hits.extend(f"redis {key!r}: {found}" for found in card_like(text))
            if '"cvv"' in text:
                hits.append(f"redis {key!r}: cvv field")

    for log in [stack.run_dir / "stack.log", *stack.run_dir.glob("*.log")]:
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                hits.extend(f"{log.name}: {found}" for found in card_like(line))
                if CVV in line and "cvv" in line.lower():
                    hits.append(f"{log.name}: cvv")
    assert not hits, hits[:20]
