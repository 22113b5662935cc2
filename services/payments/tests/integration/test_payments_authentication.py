"""3-D Secure: card 4000000000003220 waits for its shopper; the authenticate endpoint and the schedule decide it."""

from __future__ import annotations

import concurrent.futures
import uuid

import pytest
from payments import bank_schedule
from payments.bank import BankConfig

TEST_API_KEY, OTHER_API_KEY = "key_test_abc123", "key_test_other0001"  # seeded by conftest's merchants

THREE_DS = {"number": "4000000000003220", "expiry_month": "12", "expiry_year": "2030", "cvv": "123", "holder_name": "A"}
CONFIG = BankConfig(test_mode=True, test_delay_ms=0, test_success=True)


def new_order(client, headers, amount: int = 5000) -> str:
    return client.post("/api/v1/orders", json={"amount": amount}, headers=headers).get_json()["id"]


def three_ds_payment(client, headers, order_id: str | None = None, extra_headers: dict | None = None) -> dict:
    body = {"order_id": order_id or new_order(client, headers), "method": "card", "card": THREE_DS}
    response = client.post("/api/v1/payments/public", json=body, headers=extra_headers or {})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def authenticate(client, payment_id: str, body: dict, headers: dict | None = None):
    return client.post(f"/api/v1/payments/{payment_id}/authenticate", json=body, headers=headers or {})


def row(admin_conn, payment_id: str) -> dict:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT status, auth_status, error_code, next_run_at, auth_expires_at, bank_due_at, updated_at "
            "FROM payments.payments WHERE id = %s",
            (payment_id,),
        )
        names = [d.name for d in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))


def events(admin_conn, payment_id: str) -> list[str]:
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT event_type FROM payments.outbox WHERE payload->'data'->'payment'->>'id' = %s ORDER BY seq",
            (payment_id,),
        )
        return [r[0] for r in cur.fetchall()]


def sweep(db) -> None:
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)


def expire(admin_conn, payment_id: str) -> None:
    """Let the payment's 15 minutes pass (the per-merchant test clock is not built yet)."""
    with admin_conn.cursor() as cur:
        cur.execute(
            "UPDATE payments.payments SET auth_expires_at = now() - interval '1 second', "
            "next_run_at = now() - interval '1 second' WHERE id = %s",
            (payment_id,),
        )


def test_the_card_waits_for_its_shopper_and_the_bank_never_sees_it(client, headers, db, admin_conn):
    created = three_ds_payment(client, headers)
    assert created["status"] == "pending"
    auth = created["authentication"]
    assert (auth["required"], auth["status"]) == (True, "pending")
    stored = row(admin_conn, created["id"])
    # Due on the bank's schedule only when its 15 minutes are over.
    assert stored["next_run_at"] == stored["auth_expires_at"]
    assert 899 <= (stored["auth_expires_at"] - stored["updated_at"]).total_seconds() <= 901
    sweep(db)
    assert row(admin_conn, created["id"])["status"] == "pending"
    public = client.get(f"/api/v1/payments/{created['id']}/public").get_json()
    assert public["authentication"]["status"] == "pending" and public["status"] == "pending"
    assert events(admin_conn, created["id"]) == ["payment.created", "payment.pending"]
    # Other cards carry no authentication at all.
    plain = client.post(
        "/api/v1/payments/public",
        json={"order_id": new_order(client, headers), "method": "card", "card": {**THREE_DS, "number": "4111111111111111"}},
    ).get_json()
    assert "authentication" not in plain


def test_a_payment_without_an_order_waits_too(client, headers, admin_conn):
    """The short form goes through the group-commit writer (and the WSGI fast path): the same columns."""
    created = client.post("/api/v1/payments", json={"amount": 1500, "method": "card", "card": THREE_DS}, headers=headers)
    assert created.status_code == 201, created.get_json()
    payment = created.get_json()
    assert payment["authentication"]["status"] == "pending" and payment["order_id"] is None
    stored = row(admin_conn, payment["id"])
    assert stored["auth_status"] == "pending" and stored["next_run_at"] == stored["auth_expires_at"]
    assert client.get(f"/api/v1/payments/{payment['id']}", headers=headers).get_json() == payment
    body = authenticate(client, payment["id"], {"otp": "1234"}).get_json()
    assert (body["status"], body["authentication"]["status"]) == ("success", "passed")


def test_the_right_otp_lets_the_bank_decide_at_once(client, headers, admin_conn):
    order_id = new_order(client, headers)
    created = three_ds_payment(client, headers, order_id)
    response = authenticate(client, created["id"], {"otp": "1234"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "success" and body["authentication"]["status"] == "passed"
    stored = row(admin_conn, created["id"])
    assert (stored["status"], stored["auth_status"], stored["next_run_at"], stored["bank_due_at"]) == (
        "success", "passed", None, None,
    )
    # order.paid names the payment that paid the order (issue 21), written with the change that paid it.
    assert events(admin_conn, created["id"]) == ["payment.created", "payment.pending", "payment.success", "order.paid"]
    assert client.get(f"/api/v1/orders/{order_id}", headers=headers).get_json()["status"] == "paid"


@pytest.mark.parametrize(
    ("answer", "auth_status", "code"),
    [
        ({"otp": "0000"}, "failed", "AUTHENTICATION_FAILED"),
        ({"otp": "12345"}, "failed", "AUTHENTICATION_FAILED"),
        ({"otp": " 1234"}, "failed", "AUTHENTICATION_FAILED"),
        ({"cancel": True}, "cancelled", "AUTHENTICATION_CANCELLED"),
    ],
)
def test_a_wrong_otp_or_cancel_fails_the_payment(client, headers, admin_conn, answer, auth_status, code):
    order_id = new_order(client, headers)
    created = three_ds_payment(client, headers, order_id)
    body = authenticate(client, created["id"], answer).get_json()
    assert (body["status"], body["error_code"], body["authentication"]["status"]) == ("failed", code, auth_status)
    assert body["error_description"]
    assert "razorpay_signature" not in body
    assert row(admin_conn, created["id"])["next_run_at"] is None
    assert events(admin_conn, created["id"])[-1] == "payment.failed"
    assert client.get(f"/api/v1/orders/{order_id}", headers=headers).get_json()["status"] == "attempted"


def test_the_outcome_header_decides_after_authentication(client, headers):
    created = three_ds_payment(client, headers, extra_headers={"X-Test-Outcome": "failed:INSUFFICIENT_FUNDS"})
    assert created["authentication"]["status"] == "pending"
    body = authenticate(client, created["id"], {"otp": "1234"}).get_json()
    assert (body["status"], body["error_code"], body["authentication"]["status"]) == (
        "failed", "INSUFFICIENT_FUNDS", "passed",
    )


def test_a_bank_delay_is_refused_for_the_card_and_creates_nothing(client, headers, admin_conn):
    order_id = new_order(client, headers)
    body = {"order_id": order_id, "method": "card", "card": THREE_DS}
    response = client.post("/api/v1/payments/public", json=body, headers={"X-Test-Delay-Ms": "0"})
    assert response.status_code == 400
    assert "X-Test-Delay-Ms" in response.get_json()["error"]["description"]
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments WHERE order_ref = %s", (order_id,))
        assert cur.fetchone()[0] == 0


def test_an_unanswered_payment_times_out_on_the_banks_schedule(client, headers, db, admin_conn):
    order_id = new_order(client, headers)
    created = three_ds_payment(client, headers, order_id)
    expire(admin_conn, created["id"])
    # Past its window an answer is refused and changes nothing; the schedule fails it.
    late = authenticate(client, created["id"], {"otp": "1234"})
    assert late.status_code == 400
    assert late.get_json()["error"] == {"code": "BAD_REQUEST_ERROR", "description": "Payment authentication has timed out"}
    assert row(admin_conn, created["id"])["status"] == "pending"
    sweep(db)
    stored = row(admin_conn, created["id"])
    assert (stored["status"], stored["auth_status"], stored["error_code"], stored["next_run_at"]) == (
        "failed", "timed_out", "AUTHENTICATION_TIMEOUT", None,
    )
    assert events(admin_conn, created["id"]) == ["payment.created", "payment.pending", "payment.failed"]
    public = client.get(f"/api/v1/payments/{created['id']}/public").get_json()
    assert public["error_description"] == "The shopper did not complete the bank's authentication within 15 minutes"
    # Swept again: nothing more happens.
    sweep(db)
    assert events(admin_conn, created["id"]) == ["payment.created", "payment.pending", "payment.failed"]


def test_a_window_not_yet_closed_is_put_back_on_the_schedule(client, headers, db, admin_conn):
    created = three_ds_payment(client, headers)
    with admin_conn.cursor() as cur:  # due early (a moved schedule): the sweeper must not time it out
        cur.execute("UPDATE payments.payments SET next_run_at = now() - interval '1 second' WHERE id = %s", (created["id"],))
    sweep(db)
    stored = row(admin_conn, created["id"])
    assert (stored["status"], stored["auth_status"]) == ("pending", "pending")
    assert stored["next_run_at"] == stored["auth_expires_at"]


# ---------------------------------------------------------------- hostile answers


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "otp is required"),
        ({"otp": 1234}, "otp"),
        ({"otp": ""}, "otp"),
        ({"otp": "1" * 33}, "otp"),
        ({"otp": "12\x0034"}, "otp"),
        ({"otp": "1234", "cancel": True}, "not both"),
        ({"cancel": False}, "otp is required"),
        ({"cancel": "yes"}, "cancel"),
        ({"otp": "1234", "amount": 1}, "amount"),
        ([], "input type"),
    ],
)
def test_malformed_answers_are_refused_and_change_nothing(client, headers, admin_conn, body, fragment):
    created = three_ds_payment(client, headers)
    response = authenticate(client, created["id"], body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "BAD_REQUEST_ERROR" and fragment.lower() in error["description"].lower(), error
    assert row(admin_conn, created["id"])["auth_status"] == "pending"
    assert events(admin_conn, created["id"]) == ["payment.created", "payment.pending"]


def test_not_json_is_refused(client, headers, admin_conn):
    created = three_ds_payment(client, headers)
    response = client.post(
        f"/api/v1/payments/{created['id']}/authenticate", data="otp=1234", content_type="application/json"
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "BAD_REQUEST_ERROR"
    assert row(admin_conn, created["id"])["auth_status"] == "pending"


@pytest.mark.parametrize("payment_id", ["pay_AAAAAAAAAAAAAAAA", "pay_short", "order_AAAAAAAAAAAAAAAA", "%00"])
def test_an_unknown_payment_is_not_found(client, payment_id):
    response = authenticate(client, payment_id, {"otp": "1234"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND_ERROR"


def test_a_payment_that_needs_no_authentication_is_refused(client, headers, admin_conn):
    plain = client.post(
        "/api/v1/payments/public",
        json={"order_id": new_order(client, headers), "method": "card", "card": {**THREE_DS, "number": "4111111111111111"}},
    ).get_json()
    response = authenticate(client, plain["id"], {"otp": "1234"})
    assert response.status_code == 400
    assert response.get_json()["error"]["description"] == "Payment does not need authentication"
    assert row(admin_conn, plain["id"])["auth_status"] is None


def test_another_merchants_key_sees_no_payment(client, headers, admin_conn):
    created = three_ds_payment(client, headers)
    for sent in ({"X-Api-Key": OTHER_API_KEY}, {}):
        body = {"otp": "1234", **({} if sent else {"key": OTHER_API_KEY})}
        response = authenticate(client, created["id"], body, sent)
        assert response.status_code == 404, response.get_json()
        assert response.get_json()["error"]["code"] == "NOT_FOUND_ERROR"
    bad = authenticate(client, created["id"], {"otp": "1234"}, {"X-Api-Key": "key_nope"})
    assert bad.status_code == 401
    assert row(admin_conn, created["id"])["auth_status"] == "pending"
    # The payment's own merchant's key is fine.
    mine = authenticate(client, created["id"], {"otp": "1234", "key": TEST_API_KEY})
    assert mine.status_code == 200 and mine.get_json()["status"] == "success"


def test_only_the_first_answer_counts(client, headers, admin_conn):
    created = three_ds_payment(client, headers)
    first = authenticate(client, created["id"], {"otp": "9999"})
    assert first.get_json()["status"] == "failed"
    for again in ({"otp": "1234"}, {"otp": "9999"}, {"cancel": True}):
        response = authenticate(client, created["id"], again)
        assert response.status_code == 400
        assert response.get_json()["error"]["description"] == (
            "Payment is not awaiting authentication: it was already answered"
        )
    stored = row(admin_conn, created["id"])
    assert (stored["status"], stored["auth_status"], stored["error_code"]) == ("failed", "failed", "AUTHENTICATION_FAILED")
    assert events(admin_conn, created["id"]).count("payment.failed") == 1


def test_a_replayed_answer_with_its_idempotency_key_is_the_first_answer(client, headers, admin_conn):
    created = three_ds_payment(client, headers)
    key = {"Idempotency-Key": f"otp-{uuid.uuid4()}"}
    first = authenticate(client, created["id"], {"otp": "1234"}, key)
    replay = authenticate(client, created["id"], {"otp": "1234"}, key)
    assert first.status_code == replay.status_code == 200
    assert replay.data == first.data and replay.headers["Idempotent-Replayed"] == "true"
    other = authenticate(client, created["id"], {"otp": "0000"}, key)
    assert other.status_code == 422
    assert events(admin_conn, created["id"]).count("payment.success") == 1


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_answers_give_exactly_one_outcome(client, headers, admin_conn, round_):
    """A double-click, a replay and a cancel at the same moment: one answer decides, the rest change nothing."""
    order_id = new_order(client, headers)
    created = three_ds_payment(client, headers, order_id)
    answers = [{"otp": "1234"}] * 6 + [{"otp": "0000"}] * 5 + [{"cancel": True}] * 5

    def answer(body: dict):
        return authenticate(client, created["id"], body)

    with concurrent.futures.ThreadPoolExecutor(len(answers)) as pool:
        responses = list(pool.map(answer, answers))
    decided = [r for r in responses if r.status_code == 200]
    assert len(decided) == 1, [r.get_json() for r in responses]
    refused = [r for r in responses if r.status_code != 200]
    assert {r.status_code for r in refused} == {400}
    assert {r.get_json()["error"]["description"] for r in refused} == {
        "Payment is not awaiting authentication: it was already answered"
    }
    outcome = decided[0].get_json()
    stored = row(admin_conn, created["id"])
    assert stored["status"] == outcome["status"] and stored["auth_status"] == outcome["authentication"]["status"]
    finals = [e for e in events(admin_conn, created["id"]) if e in ("payment.success", "payment.failed")]
    assert len(finals) == 1
    order = client.get(f"/api/v1/orders/{order_id}", headers=headers).get_json()
    assert order["status"] == ("paid" if outcome["status"] == "success" else "attempted")


def test_an_answer_racing_the_timeout_gives_one_outcome(client, headers, db, admin_conn):
    created = three_ds_payment(client, headers)
    with admin_conn.cursor() as cur:  # due now, its window closing now
        cur.execute(
            "UPDATE payments.payments SET auth_expires_at = now() + interval '50 milliseconds', "
            "next_run_at = now() + interval '50 milliseconds' WHERE id = %s",
            (created["id"],),
        )

    def sweep_until_final() -> None:
        for _ in range(200):
            sweep(db)
            if row(admin_conn, created["id"])["status"] != "pending":
                return

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        swept = pool.submit(sweep_until_final)
        answered = pool.submit(authenticate, client, created["id"], {"otp": "1234"})
        swept.result()
        response = answered.result()
    stored = row(admin_conn, created["id"])
    if response.status_code == 200:
        assert (stored["status"], stored["auth_status"]) == ("success", "passed")
    else:
        assert response.status_code == 400
        assert (stored["status"], stored["auth_status"]) == ("failed", "timed_out")
    finals = [e for e in events(admin_conn, created["id"]) if e in ("payment.success", "payment.failed")]
    assert len(finals) == 1


def test_one_success_per_order_holds_against_an_authenticated_payment(client, headers, db, admin_conn):
    order_id = new_order(client, headers)
    created = three_ds_payment(client, headers, order_id)
    other = client.post(
        "/api/v1/payments/public", json={"order_id": order_id, "method": "upi", "vpa": "success@upi"}
    ).get_json()
    bank_schedule.sweep_due(db, CONFIG, lambda ids, countdown: None)
    assert bank_schedule.process_payments(db, CONFIG, [other["id"]]) == 1
    body = authenticate(client, created["id"], {"otp": "1234"}).get_json()
    assert (body["status"], body["error_code"]) == ("failed", "ORDER_ALREADY_PAID")
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments WHERE order_ref = %s AND status = 'success'", (order_id,))
        assert cur.fetchone()[0] == 1
