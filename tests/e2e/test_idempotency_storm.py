"""1,000 requests over 50 Idempotency-Keys, 20 at a time: exactly 50 payments, every replay byte-identical."""

from __future__ import annotations

import concurrent.futures
import random
import secrets

import psycopg
import pytest
import requests

pytestmark = pytest.mark.e2e


def test_a_storm_of_duplicates_creates_one_payment_per_key(stack, merchant):
    tag = f"storm_{secrets.token_hex(4)}"
    keys = [f"{tag}-{i}" for i in range(50)]
    work = [k for k in keys for _ in range(20)]
    random.Random(7).shuffle(work)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=20))

    def post(key: str) -> tuple[str, int, bytes, str | None]:
        index = keys.index(key)
        body = {"amount": 1000 + index, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": tag}
        r = session.post(f"{stack.api}/payments", json=body, headers={**merchant, "Idempotency-Key": key}, timeout=30)
        return key, r.status_code, r.content, r.headers.get("Idempotent-Replayed")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(post, work))

    by_key: dict[str, set[bytes]] = {}
    for key, status, body, _ in results:
        assert status == 201, body
        by_key.setdefault(key, set()).add(body)
    assert all(len(bodies) == 1 for bodies in by_key.values()), "a replay differed from the first answer"
    assert sum(1 for *_, replayed in results if replayed == "true") == 1000 - 50

    conn = psycopg.connect(stack.database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT amount) FROM payments.payments WHERE order_id = %s", (tag,))
        count, distinct_amounts = cur.fetchone()
    conn.close()
    assert (count, distinct_amounts) == (50, 50)
