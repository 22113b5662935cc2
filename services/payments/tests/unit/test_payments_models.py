"""State transitions and the simulated bank's pure decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from payments import bank
from payments.models import Method, OrderStatus, Payment, PaymentStatus, can_capture, can_transition, order_status_after

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("pending", "processing", True),
        ("processing", "success", True),
        ("processing", "failed", True),
        ("pending", "success", True),  # authenticated (3-D Secure), the bank decides at once
        ("pending", "failed", True),  # authentication failed, cancelled or timed out
        ("success", "failed", False),
        ("failed", "success", False),
        ("success", "processing", False),
        ("processing", "pending", False),
    ],
)
def test_payment_transitions(current, target, allowed):
    assert can_transition(current, target) is allowed


@pytest.mark.parametrize(
    ("order", "payment", "expected"),
    [
        ("created", "pending", OrderStatus.ATTEMPTED),
        ("created", "failed", OrderStatus.ATTEMPTED),
        ("attempted", "success", OrderStatus.PAID),
        ("created", "success", OrderStatus.PAID),
        ("paid", "pending", OrderStatus.PAID),
        ("paid", "failed", OrderStatus.PAID),
        ("attempted", "failed", OrderStatus.ATTEMPTED),
    ],
)
def test_order_status_only_moves_forward(order, payment, expected):
    assert order_status_after(order, payment) == expected


def _payment(**changes: object) -> Payment:
    base = Payment(
        id="pay_AAAAAAAAAAAAAAAA",
        merchant_id="m",
        order_id=None,
        amount=100,
        currency="INR",
        method="upi",
        status="success",
        vpa="a@b",
        card_network=None,
        card_last4=None,
        error_code=None,
        error_description=None,
        captured=False,
        captured_at=None,
        amount_refunded=0,
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(base, **changes)


def test_only_uncaptured_successful_payments_are_capturable():
    assert can_capture(_payment())
    assert not can_capture(_payment(captured=True))
    for status in ("pending", "processing", "failed"):
        assert not can_capture(_payment(status=status))


@pytest.mark.parametrize(
    ("method", "vpa", "number", "expected"),
    [
        (Method.UPI, "success@upi", None, ("success", None)),
        (Method.UPI, "failure@upi", None, ("failed", "PAYMENT_FAILED")),
        (Method.UPI, "someone@upi", None, (None, None)),
        (Method.CARD, None, "4000000000000002", ("failed", "CARD_DECLINED")),
        (Method.CARD, None, "4000000000009995", ("failed", "INSUFFICIENT_FUNDS")),
        (Method.CARD, None, "4111111111111111", (None, None)),
        (Method.UPI, "success@razorpay", None, ("success", None)),
        (Method.UPI, "Failure@Razorpay", None, ("failed", "PAYMENT_FAILED")),
        (Method.UPI, "success@razorpay2", None, (None, None)),
        (Method.CARD, None, "4000000000000069", ("failed", "EXPIRED_CARD")),
        (Method.CARD, None, "4000000000000127", ("failed", "INCORRECT_CVC")),
        (Method.CARD, None, "4000000000000119", ("failed", "PROCESSING_ERROR")),
        (Method.CARD, None, "4000000000003220", ("success", None)),  # once its shopper has authenticated
    ],
)
def test_deterministic_instruments(method, vpa, number, expected):
    assert bank.preset_outcome(method, vpa=vpa, card_number=number) == expected


@pytest.mark.parametrize("code", ["CARD_DECLINED", "INSUFFICIENT_FUNDS", "EXPIRED_CARD", "INCORRECT_CVC", "PROCESSING_ERROR"])
def test_every_decline_card_fails_with_its_own_description(code):
    decision = bank.decide(bank.BankConfig(test_mode=True), "pay_1", "card", "failed", code)
    assert (decision.error_code, decision.error_description) == (code, bank.ERROR_DESCRIPTIONS[code])
    assert code in bank.DECLINE_CARDS.values()


def test_a_code_chosen_by_a_test_gets_the_general_description():
    decision = bank.decide(bank.BankConfig(test_mode=True), "pay_1", "upi", "failed", "DO_NOT_HONOUR")
    assert (decision.error_code, decision.error_description) == ("DO_NOT_HONOUR", bank.ERROR_DESCRIPTIONS["PAYMENT_FAILED"])


def test_instruments_win_over_test_mode_outcome():
    failing = bank.BankConfig(test_mode=True, test_success=False)
    passing = bank.BankConfig(test_mode=True, test_success=True)
    assert bank.decide(failing, "pay_1", "upi", "success", None).status == PaymentStatus.SUCCESS
    declined = bank.decide(passing, "pay_1", "card", "failed", "CARD_DECLINED")
    assert declined.status == PaymentStatus.FAILED
    assert declined.error_code == "CARD_DECLINED"
    assert declined.error_description


def test_test_mode_uses_configured_delay_and_outcome():
    config = bank.BankConfig(test_mode=True, test_delay_ms=250, test_success=False)
    assert bank.delay_ms(config, "pay_x") == 250
    decision = bank.decide(config, "pay_x", "upi", None, None)
    assert decision.status == PaymentStatus.FAILED
    assert decision.error_code and decision.error_description


def test_live_mode_delays_are_5_to_10_seconds_and_seeded_runs_repeat():
    config = bank.BankConfig(test_mode=False, seed="42")
    ids = [f"pay_{i:016d}" for i in range(2000)]
    delays = [bank.delay_ms(config, pid) for pid in ids]
    assert all(5000 <= d <= 10000 for d in delays)
    assert delays == [bank.delay_ms(config, pid) for pid in ids]
    outcomes = [bank.decide(config, pid, "upi", None, None).status for pid in ids]
    assert outcomes == [bank.decide(config, pid, "upi", None, None).status for pid in ids]
    upi_rate = outcomes.count(PaymentStatus.SUCCESS) / len(ids)
    card_rate = [bank.decide(config, pid, "card", None, None).status for pid in ids].count(PaymentStatus.SUCCESS) / len(
        ids
    )
    assert 0.87 <= upi_rate <= 0.93
    assert 0.93 <= card_rate <= 0.97
    other_seed = bank.BankConfig(test_mode=False, seed="43")
    assert outcomes != [bank.decide(other_seed, pid, "upi", None, None).status for pid in ids]


def test_one_success_per_order_keeps_the_first_success_of_an_unpaid_order():
    from payments.models import ORDER_ALREADY_PAID, BankDecision, one_success_per_order

    ok, declined = BankDecision(PaymentStatus.SUCCESS), BankDecision(PaymentStatus.FAILED, "CARD_DECLINED", "no")
    settled = one_success_per_order(
        ["order_a", "order_a", None, None, "order_b", "order_c", "order_a"],
        [ok, ok, ok, ok, declined, ok, declined],
        {"order_c"},
    )
    # order_a: the first success stands, the second fails; payments without an order are untouched;
    # order_c was already paid; bank declines stay what the bank said.
    assert settled == [ok, ORDER_ALREADY_PAID, ok, ok, declined, ORDER_ALREADY_PAID, declined]
    assert ORDER_ALREADY_PAID.status == PaymentStatus.FAILED and ORDER_ALREADY_PAID.error_code == "ORDER_ALREADY_PAID"


# ---------------------------------------------------------------- 3-D Secure


@pytest.mark.parametrize(
    ("otp", "status", "code"),
    [
        ("1234", "passed", None),
        ("0000", "failed", "AUTHENTICATION_FAILED"),
        ("12345", "failed", "AUTHENTICATION_FAILED"),
        ("1234 ", "failed", "AUTHENTICATION_FAILED"),
        ("١٢٣٤", "failed", "AUTHENTICATION_FAILED"),  # Arabic-Indic digits are not the OTP
        (None, "cancelled", "AUTHENTICATION_CANCELLED"),
    ],
)
def test_the_mock_bank_judges_the_shoppers_answer(otp, status, code):
    judged, decision = bank.judge_authentication(otp)
    assert judged == status
    if code is None:
        assert decision is None  # the bank decides a passed payment as any other
    else:
        assert (decision.status, decision.error_code, decision.error_description) == (
            PaymentStatus.FAILED, code, bank.ERROR_DESCRIPTIONS[code],
        )


def test_only_the_authentication_card_needs_authentication():
    assert bank.AUTHENTICATION_CARDS == {"4000000000003220"}
    assert not bank.AUTHENTICATION_CARDS & set(bank.DECLINE_CARDS)
    assert bank.AUTHENTICATION_WINDOW.total_seconds() == 15 * 60


def test_a_payment_shows_authentication_only_when_it_needed_it():
    from payments.schemas import payment_body, public_payment_body

    plain = _payment()
    assert plain.authentication is None and not plain.authentication_required
    assert "authentication" not in payment_body(plain) and "authentication" not in public_payment_body(plain)
    waiting = _payment(status="pending", auth_status="pending", auth_expires_at=datetime(2026, 1, 1, 0, 15, tzinfo=UTC))
    expected = {"required": True, "status": "pending", "expires_at": "2026-01-01T00:15:00Z"}
    assert payment_body(waiting)["authentication"] == expected
    assert public_payment_body(waiting)["authentication"] == expected
