"""Idempotency-Key on the POSTs that create or change money."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import uuid
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def test_same_key_replays_the_first_answer(client, headers, admin_conn):
    key = f"k-{uuid.uuid4()}"
    body = {"amount": 1000, "method": "upi", "vpa": "a@b", "order_id": "ref-1"}
    first = client.post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
    second = client.post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.get_data() == second.get_data()
    assert second.headers.get("Idempotent-Replayed") == "true"
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM payments.payments WHERE order_id = 'ref-1' AND merchant_id = %s",
            (headers["X-Merchant-Id"],),
        )
        assert cur.fetchone()[0] == 1
    changed = client.post(
        "/api/v1/payments", json={**body, "amount": 2000}, headers={**headers, "Idempotency-Key": key}
    )
    assert changed.status_code == 422
    assert changed.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_MISMATCH"


def test_keys_are_scoped_by_merchant(client, headers, other_headers):
    key = f"k-{uuid.uuid4()}"
    mine = client.post("/api/v1/orders", json={"amount": 100}, headers={**headers, "Idempotency-Key": key})
    theirs = client.post("/api/v1/orders", json={"amount": 100}, headers={**other_headers, "Idempotency-Key": key})
    assert mine.status_code == theirs.status_code == 201
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert theirs.headers.get("Idempotent-Replayed") is None


def test_concurrent_duplicates_create_one_payment(app, headers, admin_conn):
    key = f"k-{uuid.uuid4()}"
    reference = f"ref-{uuid.uuid4().hex[:8]}"
    body = {"amount": 1000, "method": "upi", "vpa": "a@b", "order_id": reference}

    def send(_):
        response = app.test_client().post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
        return response.status_code, response.get_data()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(16)))
    assert {status for status, _ in results} == {201}
    assert len({data for _, data in results}) == 1
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments WHERE order_id = %s", (reference,))
        assert cur.fetchone()[0] == 1


def test_public_payment_and_capture_honour_keys(client, headers, drive_bank):
    order = client.post("/api/v1/orders", json={"amount": 2500}, headers=headers).get_json()
    key = f"k-{uuid.uuid4()}"
    body = {"order_id": order["id"], "method": "upi", "vpa": "success@upi", "key": "key_test_abc123"}
    first = client.post("/api/v1/payments/public", json=body, headers={"Idempotency-Key": key})
    again = client.post("/api/v1/payments/public", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and again.get_data() == first.get_data()
    payment_id = first.get_json()["id"]
    drive_bank([payment_id])
    capture_key = f"k-{uuid.uuid4()}"
    c1 = client.post(
        f"/api/v1/payments/{payment_id}/capture",
        json={"amount": 2500},
        headers={**headers, "Idempotency-Key": capture_key},
    )
    c2 = client.post(
        f"/api/v1/payments/{payment_id}/capture",
        json={"amount": 2500},
        headers={**headers, "Idempotency-Key": capture_key},
    )
    assert c1.status_code == c2.status_code == 200
    assert c1.get_data() == c2.get_data() and c2.headers.get("Idempotent-Replayed") == "true"


def test_invalid_key_is_400(client, headers):
    response = client.post("/api/v1/orders", json={"amount": 100}, headers={**headers, "Idempotency-Key": "x" * 256})
    assert response.status_code == 400


def test_expired_keys_are_pruned_by_the_workers_loop(admin_conn, service_env):
    from payments import worker

    with admin_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO payments.idempotency_keys (scope, key, fingerprint, expires_at) "
            "VALUES ('m', 'old', 'f', now() - interval '1 minute'), ('m', 'fresh', 'f', now() + interval '1 hour')"
        )
    (pruner,) = [loop for loop in worker.make_loops() if loop.name == "payments-idempotency-pruner"]
    while pruner.step():
        pass
    with admin_conn.cursor() as cur:
        cur.execute("SELECT key FROM payments.idempotency_keys WHERE scope = 'm'")
        assert [row[0] for row in cur.fetchall()] == ["fresh"]


# ---------------------------------------------------------------- card data in fingerprints

PAN = "4111111111111111"
CVV = "123"


def _card_body(reference: str, number: str = PAN, cvv: str = CVV) -> dict:
    card = {"number": number, "expiry_month": "12", "expiry_year": "2031", "cvv": cvv, "holder_name": "Asha Rao"}
    return {"amount": 5000, "method": "card", "order_id": reference, "card": card}


def _stored_fingerprint(admin_conn, merchant: str, key: str) -> str | None:
    with admin_conn.cursor() as cur:
        cur.execute("SELECT fingerprint FROM payments.idempotency_keys WHERE scope = %s AND key = %s", (merchant, key))
        return cur.fetchone()[0]


def _unkeyed_digests(*values: bytes) -> set[str]:
    """Hex and base64 sha256/sha1/md5 digests of each value, as an attacker would try them."""
    found = set()
    for value in values:
        for name in ("sha256", "sha1", "md5"):
            raw = hashlib.new(name, value).digest()
            found |= {raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    return found


def test_card_request_replays_whatever_the_cvv_and_refuses_another_card(client, headers, admin_conn):
    key = f"k-{uuid.uuid4()}"
    reference = f"ref-{uuid.uuid4().hex[:8]}"
    first = client.post("/api/v1/payments", json=_card_body(reference), headers={**headers, "Idempotency-Key": key})
    assert first.status_code == 201, first.get_data()
    # The CVV is kept in no form, so it cannot tell two requests apart: a retry with another one replays.
    other_cvv = client.post(
        "/api/v1/payments", json=_card_body(reference, cvv="999"), headers={**headers, "Idempotency-Key": key}
    )
    spaced = client.post(
        "/api/v1/payments",
        json=_card_body(reference, number="4111 1111-1111 1111"),
        headers={**headers, "Idempotency-Key": key},
    )
    for again in (other_cvv, spaced):
        assert again.status_code == 201 and again.get_data() == first.get_data()
        assert again.headers.get("Idempotent-Replayed") == "true"
    other_card = client.post(
        "/api/v1/payments", json=_card_body(reference, number="5555555555554444"), headers={**headers, "Idempotency-Key": key}
    )
    assert other_card.status_code == 422
    assert other_card.get_json()["error"]["code"] == "IDEMPOTENCY_KEY_MISMATCH"
    other_expiry = _card_body(reference)
    other_expiry["card"]["expiry_year"] = "2032"
    changed = client.post("/api/v1/payments", json=other_expiry, headers={**headers, "Idempotency-Key": key})
    assert changed.status_code == 422
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments WHERE order_id = %s", (reference,))
        assert cur.fetchone()[0] == 1


def test_stored_fingerprint_holds_no_unkeyed_hash_of_the_card_or_the_body(client, headers, admin_conn):
    key = f"k-{uuid.uuid4()}"
    body = _card_body(f"ref-{uuid.uuid4().hex[:8]}")
    assert client.post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key}).status_code == 201
    public_key = f"k-{uuid.uuid4()}"
    order = client.post("/api/v1/orders", json={"amount": 5000}, headers=headers).get_json()
    public_body = {**_card_body(order["id"]), "key": "key_test_abc123"}
    del public_body["amount"]
    public = client.post("/api/v1/payments/public", json=public_body, headers={"Idempotency-Key": public_key})
    assert public.status_code == 201, public.get_data()

    for path, sent, idem_key in (("/api/v1/payments", body, key), ("/api/v1/payments/public", public_body, public_key)):
        stored = _stored_fingerprint(admin_conn, headers["X-Merchant-Id"], idem_key)
        assert stored
        canonical = json.dumps(sent, sort_keys=True, separators=(",", ":")).encode()
        guesses = _unkeyed_digests(
            PAN.encode(), CVV.encode(), (PAN + CVV).encode(), canonical, f"POST {path}\n".encode() + canonical
        )
        assert not any(guess in stored for guess in guesses)
        assert PAN not in stored and PAN[-4:] + CVV not in stored


def test_another_fingerprint_key_gives_another_fingerprint(app, client, headers, admin_conn):
    from dataclasses import replace

    from payments import create_app

    body = _card_body(f"ref-{uuid.uuid4().hex[:8]}")
    keys = [f"k-{uuid.uuid4()}" for _ in range(3)]
    other = create_app(replace(app.extensions["gateway_settings"], fingerprint_key="another-fingerprint-key"))
    try:
        for sender, key in ((client, keys[0]), (client, keys[1]), (other.test_client(), keys[2])):
            response = sender.post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
            assert response.status_code == 201
    finally:
        other.extensions["db"].close()
    mine, mine_again, theirs = (_stored_fingerprint(admin_conn, headers["X-Merchant-Id"], k) for k in keys)
    assert mine == mine_again
    assert theirs != mine


def test_legacy_fingerprints_are_dropped_and_their_keys_replay_unchecked(client, headers, admin_conn):
    key = f"k-{uuid.uuid4()}"
    body = _card_body(f"ref-{uuid.uuid4().hex[:8]}")
    first = client.post("/api/v1/payments", json=body, headers={**headers, "Idempotency-Key": key})
    assert first.status_code == 201
    legacy = hashlib.sha256(b"POST /api/v1/payments\n" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    with admin_conn.cursor() as cur:
        cur.execute(
            "UPDATE payments.idempotency_keys SET fingerprint = %s WHERE scope = %s AND key = %s",
            (legacy.hexdigest(), headers["X-Merchant-Id"], key),
        )
        # The forward migration, once more (it only ever sets NULL, so running it again is harmless).
        cur.execute(MIGRATIONS.joinpath("0006_null_legacy_fingerprints.sql").read_text())
    assert _stored_fingerprint(admin_conn, headers["X-Merchant-Id"], key) is None
    # No fingerprint to compare: the stored answer is replayed, even for a changed request.
    again = client.post(
        "/api/v1/payments", json=_card_body(body["order_id"], number="5555555555554444"), headers={**headers, "Idempotency-Key": key}
    )
    assert again.status_code == 201 and again.get_data() == first.get_data()
    assert again.headers.get("Idempotent-Replayed") == "true"
