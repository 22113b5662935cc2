"""Payments use cases and their transaction boundaries."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway_common import signing
from gateway_common.db import Database
from gateway_common.errors import AuthenticationError, BadRequestError
from gateway_common.events import make_event
from gateway_common.ids import is_id, new_id
from gateway_common.pagination import Page
from gateway_common.secretbox import SecretBox

from payments import bank, bank_schedule, repository
from payments.errors import (
    AuthenticationAnsweredError,
    AuthenticationDelayError,
    AuthenticationNotRequiredError,
    AuthenticationTimedOutError,
    InvalidCardError,
    NotCapturableError,
    OrderNotFoundError,
    PaymentNotFoundError,
)
from payments.models import AuthStatus, Instrument, Method, Order, Payment, PaymentStatus, PublicOrder, can_capture
from payments.schemas import payment_body
from payments.validators import (
    card_digits,
    card_network,
    normalize_card_number,
    validate_cvv,
    validate_expiry,
    validate_vpa,
)
from payments.writer import writer_for

if TYPE_CHECKING:
    from gateway_common.http.controls import RequestControls

log = logging.getLogger(__name__)

DEFAULT_CURRENCY = "INR"


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- orders


def create_order(db: Database, merchant_id: str, data: dict) -> Order:
    """Create an order for a merchant."""
    with db.transaction() as tx:
        return repository.insert_order(
            tx,
            new_id("order_"),
            merchant_id,
            data["amount"],
            data.get("currency") or DEFAULT_CURRENCY,
            data.get("receipt"),
            data.get("notes") or {},
        )


def get_order(db: Database, merchant_id: str, order_id: str) -> Order:
    """Return one of the merchant's orders or raise 404."""
    if not is_id(order_id, "order_"):
        raise OrderNotFoundError()
    with db.autocommit() as tx:
        order = repository.get_order(tx, merchant_id, order_id)
    if order is None:
        raise OrderNotFoundError()
    return order


def list_orders(db: Database, merchant_id: str, query: dict) -> Page:
    """Return a page of the merchant's orders, newest first (offset or a cursor)."""
    with db.transaction() as tx:
        return repository.list_orders(tx, merchant_id, query)


def count_order_payments(db: Database, merchant_id: str, order_ids: list[str]) -> dict[str, int]:
    """Return how many payments (attempts) each of the merchant's orders has."""
    with db.autocommit() as tx:
        return repository.count_order_payments(tx, merchant_id, order_ids)


def _by_order_id(db: Database, order_id: Any, find: Callable[[Any, str], Any]) -> Any:
    """Return ``find(tx, order_id)`` for a well-formed order id, else raise 404."""
    if not isinstance(order_id, str) or not is_id(order_id, "order_"):
        raise OrderNotFoundError()
    with db.autocommit() as tx:
        found = find(tx, order_id)
    if found is None:
        raise OrderNotFoundError()
    return found


def get_public_order(db: Database, order_id: str) -> PublicOrder:
    """Return what the checkout page may see of an order."""
    return _by_order_id(db, order_id, repository.get_public_order)


# ---------------------------------------------------------------- payments


def build_instrument(data: dict) -> Instrument:
    """Validate the payment method's details and keep only what may be stored."""
    method = Method(data["method"])
    if method == Method.UPI:
        vpa = validate_vpa(data.get("vpa"))
        outcome, code = bank.preset_outcome(method, vpa=vpa)
        return Instrument(method=method, vpa=vpa, bank_outcome=outcome, bank_error_code=code)
    card = data.get("card")
    if not isinstance(card, dict):
        raise InvalidCardError("card is required for method card")
    number = normalize_card_number(card.get("number"))
    validate_cvv(card.get("cvv"))
    month, year = validate_expiry(card.get("expiry_month"), card.get("expiry_year"), _now().date())
    outcome, code = bank.preset_outcome(method, card_number=number)
    holder = card.get("holder_name")
    return Instrument(
        method=method,
        card_network=card_network(number),
        card_last4=number[-4:],
        card_expiry_month=month,
        card_expiry_year=year,
        card_holder_name=holder.strip() if isinstance(holder, str) and holder.strip() else None,
        bank_outcome=outcome,
        bank_error_code=code,
        authentication_required=number in bank.AUTHENTICATION_CARDS,
    )


# The card fields an Idempotency-Key fingerprint may see as they are; the number only through a keyed
# digest, the CVV (sensitive authentication data, kept in no form after authorisation) and anything
# else never.
_FINGERPRINT_CARD_FIELDS = ("expiry_month", "expiry_year", "holder_name")


def idempotency_form(body: Any, keyed: Callable[[str], str]) -> Any:
    """Return what identifies a payment request for Idempotency-Key: no card number, no CVV."""
    if not isinstance(body, dict) or not isinstance(body.get("card"), dict):
        return body
    card = body["card"]
    form = {name: card[name] for name in _FINGERPRINT_CARD_FIELDS if name in card}
    number = card.get("number")
    if isinstance(number, str):
        digits = card_digits(number)
        form.update(number_hmac=keyed(digits), last4=digits[-4:], network=card_network(digits))
    elif number is not None:
        form["number_hmac"] = keyed(json.dumps(number))
    return {**body, "card": form}


def with_test_controls(instrument: Instrument, controls: RequestControls | None) -> Instrument:
    """Return the instrument with the bank answer and delay a test chose (X-Test-Outcome wins over the instrument)."""
    if controls is None:
        return instrument
    if controls.outcome is not None:
        instrument = replace(
            instrument, bank_outcome=controls.outcome.status, bank_error_code=controls.outcome.error_code
        )
    if controls.delay_ms is not None:
        instrument = replace(instrument, bank_delay_ms=controls.delay_ms)
    return instrument


def create_payment(
    db: Database,
    merchant_id: str,
    data: dict,
    *,
    require_order: bool = False,
    controls: RequestControls | None = None,
) -> Payment:
    """Create a pending payment; the bank sweeper picks it up within ~100 ms.

    A card that needs the shopper's authentication (3-D Secure) waits instead: see ``authenticate_payment``.
    """
    instrument = with_test_controls(build_instrument(data), controls)
    if instrument.authentication_required and instrument.bank_delay_ms is not None:
        raise AuthenticationDelayError()
    order_id = data.get("order_id")
    # Only a well-formed order id can name an order; anything else is the merchant's reference.
    order = None
    if order_id and is_id(order_id, "order_"):
        with db.autocommit() as tx:
            order = repository.get_order(tx, merchant_id, order_id)
    if order is not None:
        if "amount" in data and data["amount"] != order.amount:
            raise BadRequestError("amount must equal the order amount")
        if "currency" in data and data["currency"] != order.currency:
            raise BadRequestError("currency must equal the order currency")
        if order.status == "paid":
            raise BadRequestError("Order has already been paid")
        amount, currency = order.amount, order.currency
    elif require_order or "amount" not in data:
        raise OrderNotFoundError()
    else:
        amount, currency = data["amount"], data.get("currency") or DEFAULT_CURRENCY
    now = _now()
    auth_expires_at = None
    if instrument.authentication_required:
        # The window closes on the merchant's clock, the one its schedule is judged by.
        with db.autocommit() as tx:
            offset = repository.clock_offset(tx, merchant_id)
        auth_expires_at = now + timedelta(seconds=offset) + bank.AUTHENTICATION_WINDOW
    payment = Payment(
        id=new_id("pay_"),
        merchant_id=merchant_id,
        order_id=order_id,
        amount=amount,
        currency=currency,
        method=str(instrument.method),
        status=str(PaymentStatus.PENDING),
        vpa=instrument.vpa,
        card_network=instrument.card_network,
        card_last4=instrument.card_last4,
        error_code=None,
        error_description=None,
        captured=False,
        captured_at=None,
        amount_refunded=0,
        created_at=now,
        updated_at=now,
        auth_status=str(AuthStatus.PENDING) if instrument.authentication_required else None,
        auth_expires_at=auth_expires_at,
    )
    event_data = {"payment": payment_body(payment)}
    # The same envelopes Outbox.add writes, sent with the payment in one round trip.
    events = [
        make_event("payment.created", merchant_id, event_data),
        make_event("payment.pending", merchant_id, event_data),
    ]
    if order is None and db.current() is None:
        writer_for(db).write(payment, instrument, events)
        return payment
    with db.transaction() as tx:
        repository.insert_payments(tx, [repository.NewPayment(payment, instrument, events, order.id if order else None)])
        if order is not None and order.status == "created":
            repository.mark_order_attempted(tx, order.id)
    return payment


def authenticate_payment(
    db: Database, config: bank.BankConfig, payment_id: str, otp: str | None, *, merchant_id: str | None = None
) -> Payment:
    """Answer a payment's 3-D Secure authentication, once: the right OTP lets the bank decide it now, anything else fails it.

    ``otp`` None is the shopper cancelling. ``merchant_id``, when known (a key was given, or the
    merchant's API), must own the payment, else 404. The row lock makes concurrent answers queue:
    the first decides, the others find it answered (400) and change nothing.
    """
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with db.transaction() as tx:
        row = repository.lock_for_authentication(tx, payment_id, merchant_id)
        if row is None:
            raise PaymentNotFoundError()
        if row["auth_status"] is None:
            log.info("authentication refused for %s: the payment does not need it", payment_id)
            raise AuthenticationNotRequiredError()
        if row["auth_status"] != AuthStatus.PENDING:
            log.info("authentication refused for %s: already answered (%s)", payment_id, row["auth_status"])
            raise AuthenticationAnsweredError()
        if not row["open"]:
            # The sweeper fails it with AUTHENTICATION_TIMEOUT (the schedule is the one place that does).
            log.info("authentication refused for %s: its window has closed", payment_id)
            raise AuthenticationTimedOutError()
        auth_status, decision = bank.judge_authentication(otp)
        if decision is None:
            decision = bank.decide(config, row["id"], row["method"], row["bank_outcome"], row["bank_error_code"])
        else:
            log.info("payment %s failed: %s (%s)", payment_id, decision.error_code, decision.error_description)
        (payment,) = bank_schedule.settle(
            tx, [row], [decision], from_status=PaymentStatus.PENDING, auth_statuses=[str(auth_status)]
        )
    return payment


def merchant_for_checkout(db: Database, api_key: str | None, order_id: Any) -> str:
    """Return the merchant a checkout payment is for: its key's (401 if invalid), else its order's (404)."""
    if api_key:
        # The order must then be this merchant's: create_payment answers 404 for anyone else's.
        return merchant_for_public_key(db, api_key)
    return _by_order_id(db, order_id, repository.order_merchant)


def merchant_for_public_key(db: Database, api_key: str) -> str:
    """Return the merchant of a public API key (checkout), or raise 401."""
    if len(api_key) > 128 or "\x00" in api_key:
        raise AuthenticationError("Invalid API key")
    with db.autocommit() as tx:
        merchant = repository.merchant_for_key(tx, api_key)
    if merchant is None:
        raise AuthenticationError("Invalid API key")
    return merchant


def get_payment(db: Database, merchant_id: str, payment_id: str) -> Payment:
    """Return one of the merchant's payments or raise 404."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    row = db.fetch_one(repository.GET_PAYMENT_SQL, (payment_id, merchant_id))
    if row is None:
        raise PaymentNotFoundError()
    return Payment(*row)


def get_public_payment(db: Database, payment_id: str) -> Payment:
    """Return a payment by id for the checkout page."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with db.autocommit() as tx:
        payment = repository.get_payment_by_id(tx, payment_id)
    if payment is None:
        raise PaymentNotFoundError()
    return payment


def payment_signature(db: Database, box: SecretBox, payment: Payment) -> str | None:
    """Return ``razorpay_signature`` of a successful payment of an order, or None.

    None also when the merchant's API secret is not kept recoverable (a key from before secrets
    were encrypted, until the merchant rotates it).
    """
    if payment.status != PaymentStatus.SUCCESS or not payment.order_id:
        return None
    with db.autocommit() as tx:
        secret = box.decrypt(repository.encrypted_api_secret(tx, payment.merchant_id))
    if secret is None:
        log.warning("payment %s has no razorpay_signature: the merchant's API secret is not kept encrypted", payment.id)
        return None
    return signing.payment_signature(secret, payment.order_id, payment.id)


def list_payments(db: Database, merchant_id: str, query: dict) -> Page:
    """Return a filtered page of the merchant's payments, newest first (offset or a cursor)."""
    with db.transaction() as tx:
        return repository.list_payments(tx, merchant_id, query)


def capture_payment(db: Database, merchant_id: str, payment_id: str, data: dict) -> Payment:
    """Capture a successful payment, once (the row lock serialises concurrent captures)."""
    if not is_id(payment_id, "pay_"):
        raise PaymentNotFoundError()
    with db.transaction() as tx:
        payment = repository.get_payment(tx, merchant_id, payment_id, for_update=True)
        if payment is None:
            raise PaymentNotFoundError()
        if not can_capture(payment):
            raise NotCapturableError()
        if "amount" in data and data["amount"] != payment.amount:
            raise BadRequestError("Capture amount must equal the payment amount")
        if "currency" in data and data["currency"] != payment.currency:
            raise BadRequestError("Capture currency must equal the payment currency")
        captured = repository.mark_captured(tx, payment.id)
        repository.OUTBOX.add(tx, "payment.captured", merchant_id, {"payment": payment_body(captured)})
    return captured


def payment_stats(db: Database, merchant_id: str, days: int) -> dict:
    """Summarise the merchant's payments: all-time totals and the last ``days`` UTC days."""
    today = _now().date()
    since = today - timedelta(days=days - 1)
    with db.autocommit() as tx:
        rows = repository.totals_by_day(tx, merchant_id)
    total = success = failed = success_amount = 0
    daily = {since + timedelta(days=i): {"count": 0, "success": 0, "failed": 0, "amount": 0} for i in range(days)}
    for row in rows:
        n, status = row["n"], row["status"]
        total += n
        if status == "success":
            success += n
            success_amount += int(row["amount"])
        elif status == "failed":
            failed += n
        day = daily.get(row["day"])
        if day is None:
            continue
        day["count"] += n
        if status == "success":
            day["success"] += n
            day["amount"] += int(row["amount"])
        elif status == "failed":
            day["failed"] += n
    return {
        "total_transactions": total,
        "successful_transactions": success,
        "failed_transactions": failed,
        "total_amount": success_amount,
        "success_rate": _rate(success, failed),
        "currency": DEFAULT_CURRENCY,
        "daily": [
            {
                "date": day.isoformat(),
                "count": v["count"],
                "success_count": v["success"],
                "amount": v["amount"],
                "success_rate": _rate(v["success"], v["failed"]),
            }
            for day, v in daily.items()
        ],
    }


def _rate(success: int, failed: int) -> float:
    final = success + failed
    return round(success * 100 / final, 2) if final else 0


def job_counts(db: Database) -> dict[str, int]:
    """Count payments by processing state for the test endpoint."""
    with db.autocommit() as tx:
        counts = repository.count_by_status(tx)
    return {
        "pending": counts.get("pending", 0),
        "processing": counts.get("processing", 0),
        "completed": counts.get("success", 0),
        "failed": counts.get("failed", 0),
    }


