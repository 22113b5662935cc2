"""No full card number or CVV reaches the database, Redis or a log.

Runs last (testpaths order), after the end-to-end and browser suites on the same system, pays with
test cards itself (with Idempotency-Keys, so there are request fingerprints) so there is something to
leak, then scans every table of every service schema, every Redis key and every log line for a 13-19
digit Luhn-valid number, for CVV fields, and for unkeyed digests (sha256/sha1/md5, hex and base64) of
each card number, the CVVs, number+CVV combinations and the exact request bodies sent (as the old
fingerprint formula hashed them): any of those gives the card number or CVV away in a few guesses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid

import psycopg
import pytest
import redis
import requests

pytestmark = pytest.mark.e2e

CARDS = ["4111111111111111", "5555555555554444", "4000000000000002", "4000000000009995", "378282246310005", "6071000000000001"]
CVV = "987"
AMEX_CVV = "9876"
# A digit run standing alone (not part of a hex digest or an id, where runs occur by chance).
DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])")
HEX = re.compile(r"[0-9a-f]+")


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


def _pay_with_cards(stack, merchant) -> tuple[list[str], list[tuple[str, dict]], list[str]]:
    """Pay with every test card; return the payment ids, the (path, body) sent and the Idempotency-Keys."""
    ids, sent, keys = [], [], []

    def post_card(path: str, body: dict, headers: dict) -> requests.Response:
        key = f"scan-{uuid.uuid4()}"
        keys.append(key)
        sent.append((path, body))
        return requests.post(f"{stack.api}{path.removeprefix('/api/v1')}", json=body, headers={**headers, "Idempotency-Key": key}, timeout=10)

    for number in CARDS:
        order = requests.post(f"{stack.api}/orders", json={"amount": 12345, "currency": "INR", "receipt": "scan"}, headers=merchant, timeout=10)
        assert order.status_code == 201, order.text
        card = {"number": number, "expiry_month": "12", "expiry_year": "2031", "cvv": CVV if not number.startswith("37") else AMEX_CVV, "holder_name": "Scan Test"}
        paid = post_card("/api/v1/payments", {"order_id": order.json()["id"], "method": "card", "card": card}, merchant)
        assert paid.status_code == 201, paid.text
        assert number not in paid.text and "cvv" not in paid.json()
        ids.append(paid.json()["id"])
    order = requests.post(f"{stack.api}/orders", json={"amount": 20000}, headers=merchant, timeout=10).json()
    public = post_card(
        "/api/v1/payments/public",
        {"key": merchant["X-Api-Key"], "order_id": order["id"], "method": "card",
         "card": {"number": CARDS[0], "expiry_month": "11", "expiry_year": "2032", "cvv": CVV, "holder_name": "Shopper"}},
        {},
    )
    assert public.status_code == 201, public.text
    ids.append(public.json()["id"])
    # A rejected card must not leak either (validation errors echo nothing back; the 400 is kept under its key).
    bad = post_card("/api/v1/payments", {"amount": 500, "currency": "INR", "method": "card", "order_id": "scan_bad",
                                         "card": {"number": "4111111111111112", "expiry_month": "12", "expiry_year": "2031", "cvv": CVV, "holder_name": "X"}},
                    merchant)
    assert bad.status_code == 400 and "4111111111111112" not in bad.text
    return ids, sent, keys


def _encodings(raw: bytes) -> list[str]:
    b64 = base64.b64encode(raw).decode()
    return [raw.hex(), b64, b64.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")]


def unkeyed_digests(sent: list[tuple[str, dict]]) -> dict[str, str]:
    """Map each unkeyed digest of the card data and bodies sent to what it is a digest of."""
    cvvs = [CVV, AMEX_CVV]
    values = {f"pan {n}": n for n in [*CARDS, "4111111111111112"]}
    values |= {f"cvv {c}": c for c in cvvs}
    for number in CARDS:
        for cvv in cvvs:
            for sep in ("", " ", ":", "|", ",", "\n"):
                values[f"pan+cvv {number}{sep!r}{cvv}"] = f"{number}{sep}{cvv}"
                values[f"cvv+pan {cvv}{sep!r}{number}"] = f"{cvv}{sep}{number}"
    for index, (path, body) in enumerate(sent):
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        values[f"body #{index} to {path}"] = canonical
        values[f"old fingerprint of body #{index} to {path}"] = f"POST {path}\n{canonical}"
    needles = {}
    for label, value in values.items():
        for name in ("sha256", "sha1", "md5"):
            for text in _encodings(hashlib.new(name, value.encode()).digest()):
                needles[text] = f"{name} of {label}"
    return needles


def digest_hits(where: str, text: str, needles: dict[str, str]) -> list[str]:
    """Name every unkeyed digest found in ``text`` (hex compared case-insensitively)."""
    lowered = text.lower()
    return [f"{where}: {label}" for needle, label in needles.items() if needle in (lowered if HEX.fullmatch(needle) else text)]


def test_no_card_number_or_cvv_is_stored_queued_or_logged(stack, merchant):
    ids, sent, keys = _pay_with_cards(stack, merchant)
    needles = unkeyed_digests(sent)
    deadline = time.time() + 60
    while time.time() < deadline:
        statuses = {requests.get(f"{stack.api}/payments/{pid}", headers=merchant, timeout=10).json()["status"] for pid in ids}
        if statuses <= {"success", "failed"}:
            break
        time.sleep(0.5)
    assert statuses <= {"success", "failed"}, statuses
    time.sleep(1)  # let relays and webhook attempts write what they write

    hits: list[str] = []
    conn = psycopg.connect(stack.database_url)
    with conn.cursor() as cur:
        # The payments were sent with keys, so there must be fingerprints to scan.
        cur.execute("SELECT count(*) FROM payments.idempotency_keys WHERE key = ANY(%s) AND fingerprint IS NOT NULL", (keys,))
        assert cur.fetchone()[0] == len(keys)
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
            rows = [text or "" for (text,) in cur.fetchall()]
            for text in rows:
                for found in card_like(text):
                    hits.append(f"{schema}.{table}: {found}")
                if re.search(r'"cvv"\s*:', text):
                    hits.append(f"{schema}.{table}: cvv field")
            hits.extend(digest_hits(f"{schema}.{table}", "\n".join(rows), needles))
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
            hits.extend(digest_hits(f"redis {key!r}", text, needles))
            if '"cvv"' in text:
                hits.append(f"redis {key!r}: cvv field")

    for log in [stack.run_dir / "stack.log", *stack.run_dir.glob("*.log")]:
        if log.exists():
            text = log.read_text(errors="replace")
            hits.extend(digest_hits(log.name, text, needles))
            for line in text.splitlines():
                hits.extend(f"{log.name}: {found}" for found in card_like(line))
                if CVV in line and "cvv" in line.lower():
                    hits.append(f"{log.name}: cvv")
    assert not hits, hits[:20]
