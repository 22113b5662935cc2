"""The simulated bank: deterministic test instruments, delays and outcomes (pure)."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from gateway_common.config import Settings

from payments.models import BankDecision, Method, PaymentStatus

SUCCESS_VPA = "success@upi"
FAILURE_VPA = "failure@upi"
DECLINED_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"

ERROR_DESCRIPTIONS = {
    "CARD_DECLINED": "The card was declined by the bank",
    "INSUFFICIENT_FUNDS": "Insufficient funds in the account",
    "PAYMENT_FAILED": "The bank could not process the payment",
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
        if lowered == SUCCESS_VPA:
            return "success", None
        if lowered == FAILURE_VPA:
            return "failed", "PAYMENT_FAILED"
    if method == Method.CARD and card_number is not None:
        if card_number == DECLINED_CARD:
            return "failed", "CARD_DECLINED"
        if card_number == INSUFFICIENT_FUNDS_CARD:
            return "failed", "INSUFFICIENT_FUNDS"
    return None, None


def _unit(seed: str | None, payment_id: str, purpose: str) -> float:
    """Return a number in [0, 1): reproducible per payment with a seed, random without."""
    if seed is None:
        return secrets.randbelow(1_000_000) / 1_000_000
    digest = hashlib.sha256(f"{seed}:{payment_id}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def delay_ms(config: BankConfig, payment_id: str) -> int:
    """Return how long the bank takes for this payment, in milliseconds."""
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
        code = bank_error_code or "PAYMENT_FAILED"
        return BankDecision(
            PaymentStatus.FAILED, code, ERROR_DESCRIPTIONS.get(code, ERROR_DESCRIPTIONS["PAYMENT_FAILED"])
        )
    if config.test_mode:
        ok = config.test_success
    else:
        ok = _unit(config.seed, payment_id, "outcome") < SUCCESS_RATES[Method(method)]
    if ok:
        return BankDecision(PaymentStatus.SUCCESS)
    code = "CARD_DECLINED" if method == Method.CARD else "PAYMENT_FAILED"
    return BankDecision(PaymentStatus.FAILED, code, ERROR_DESCRIPTIONS[code])
