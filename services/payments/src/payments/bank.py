"""The simulated bank: deterministic test instruments, delays and outcomes (pure)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta

from gateway_common.config import Settings

from payments.models import AuthStatus, BankDecision, Method, PaymentStatus

# Deterministic test instruments (every mode): VPA -> outcome, card number -> the error it fails with.
SUCCESS_VPAS = frozenset({"success@upi", "success@razorpay"})
FAILURE_VPAS = frozenset({"failure@upi", "failure@razorpay"})
DECLINE_CARDS = {
    "4000000000000002": "CARD_DECLINED",
    "4000000000009995": "INSUFFICIENT_FUNDS",
    "4000000000000069": "EXPIRED_CARD",
    "4000000000000127": "INCORRECT_CVC",
    "4000000000000119": "PROCESSING_ERROR",
}
# Cards that need the shopper's authentication (3-D Secure): the payment waits for the mock bank
# page, where this OTP passes (then the bank accepts the card) and anything else fails it.
AUTHENTICATION_CARDS = frozenset({"4000000000003220"})
AUTHENTICATION_OTP = "1234"
# Unanswered for this long, the payment fails with AUTHENTICATION_TIMEOUT.
AUTHENTICATION_WINDOW = timedelta(minutes=15)

ERROR_DESCRIPTIONS = {
    "CARD_DECLINED": "The card was declined by the bank",
    "INSUFFICIENT_FUNDS": "Insufficient funds in the account",
    "EXPIRED_CARD": "The card has expired",
    "INCORRECT_CVC": "The card's security code (CVV) is incorrect",
    "PROCESSING_ERROR": "An error occurred while the bank processed the card; try again",
    "PAYMENT_FAILED": "The bank could not process the payment",
    "AUTHENTICATION_FAILED": "The OTP entered on the bank's page was incorrect",
    "AUTHENTICATION_CANCELLED": "The shopper cancelled the authentication on the bank's page",
    "AUTHENTICATION_TIMEOUT": "The shopper did not complete the bank's authentication within 15 minutes",
}
SUCCESS_RATES = {Method.UPI: 0.90, Method.CARD: 0.95}
MIN_DELAY_MS, MAX_DELAY_MS = 5000, 10000


@dataclass(frozen=True)
class BankConfig:
    """How the bank behaves: test mode (fixed delay and outcome) or 5-10 s with real rates."""

    test_mode: bool = True
    test_delay_ms: int = 1000
    test_success: bool = True
    seed: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BankConfig:
        """Build the bank's configuration from the service settings and ``BANK_SEED``."""
        return cls(
            test_mode=settings.test_mode,
            test_delay_ms=max(0, settings.test_processing_delay_ms),
            test_success=settings.test_payment_success,
            seed=os.environ.get("BANK_SEED") or None,
        )


def preset_outcome(
    method: Method, vpa: str | None = None, card_number: str | None = None
) -> tuple[str | None, str | None]:
    """Return (outcome, error code) fixed by a deterministic test instrument, else (None, None)."""
    if method == Method.UPI and vpa is not None:
        lowered = vpa.lower()
        if lowered in SUCCESS_VPAS:
            return "success", None
        if lowered in FAILURE_VPAS:
            return "failed", "PAYMENT_FAILED"
    if method == Method.CARD and card_number in DECLINE_CARDS:
        return "failed", DECLINE_CARDS[card_number]
    if method == Method.CARD and card_number in AUTHENTICATION_CARDS:
        return "success", None
    return None, None


def failure(code: str) -> BankDecision:
    """Return the failed decision of an error code, with its description."""
    return BankDecision(PaymentStatus.FAILED, code, ERROR_DESCRIPTIONS.get(code, ERROR_DESCRIPTIONS["PAYMENT_FAILED"]))


def judge_authentication(otp: str | None) -> tuple[AuthStatus, BankDecision | None]:
    """Judge the shopper's answer on the bank's page (``None``: cancelled); a pass leaves the decision to the bank."""
    if otp is None:
        return AuthStatus.CANCELLED, failure("AUTHENTICATION_CANCELLED")
    if hmac.compare_digest(otp.encode(), AUTHENTICATION_OTP.encode()):
        return AuthStatus.PASSED, None
    return AuthStatus.FAILED, failure("AUTHENTICATION_FAILED")


def _unit(seed: str | None, payment_id: str, purpose: str) -> float:
    """Return a number in [0, 1): reproducible per payment with a seed, random without."""
    if seed is None:
        return secrets.randbelow(1_000_000) / 1_000_000
    digest = hashlib.sha256(f"{seed}:{payment_id}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def delay_ms(config: BankConfig, payment_id: str, chosen: int | None = None) -> int:
    """Return how long the bank takes for this payment, in milliseconds (``chosen``: a test's X-Test-Delay-Ms)."""
    if chosen is not None:
        return chosen
    if config.test_mode:
        return config.test_delay_ms
    return MIN_DELAY_MS + int(_unit(config.seed, payment_id, "delay") * (MAX_DELAY_MS - MIN_DELAY_MS + 1))


def decide(
    config: BankConfig, payment_id: str, method: str, bank_outcome: str | None, bank_error_code: str | None
) -> BankDecision:
    """Decide whether the bank accepts a payment."""
    if bank_outcome == "success":
        return BankDecision(PaymentStatus.SUCCESS)
    if bank_outcome == "failed":
        return failure(bank_error_code or "PAYMENT_FAILED")
    if config.test_mode:
        ok = config.test_success
    else:
        ok = _unit(config.seed, payment_id, "outcome") < SUCCESS_RATES[Method(method)]
    if ok:
        return BankDecision(PaymentStatus.SUCCESS)
    code = "CARD_DECLINED" if method == Method.CARD else "PAYMENT_FAILED"
    return BankDecision(PaymentStatus.FAILED, code, ERROR_DESCRIPTIONS[code])
