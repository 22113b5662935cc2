"""Wire shapes: strict refund amounts, unknown fields, the refund object."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError
from refunds.models import Refund, RefundStatus
from refunds.schemas import CreateRefundRequest, refund_resource


@pytest.mark.parametrize("amount", ["500", 5.5, 500.0, True, False, 0, -1, -500, None, 2**63, [500], {"v": 1}])
def test_bad_amounts_are_refused(amount: object) -> None:
    with pytest.raises(ValidationError) as info:
        CreateRefundRequest().load({"amount": amount})
    assert "amount" in info.value.messages


def test_amount_is_required_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        CreateRefundRequest().load({"reason": "x"})
    with pytest.raises(ValidationError) as info:
        CreateRefundRequest().load({"amount": 500, "speed": "optimum"})
    assert "speed" in info.value.messages


@pytest.mark.parametrize("reason", ["x" * 256, "bad\x00reason", 12])
def test_bad_reasons_are_refused(reason: object) -> None:
    with pytest.raises(ValidationError):
        CreateRefundRequest().load({"amount": 500, "reason": reason})


def test_valid_request_loads() -> None:
    assert CreateRefundRequest().load({"amount": 500, "reason": "Customer request"}) == {
        "amount": 500,
        "reason": "Customer request",
    }
    assert CreateRefundRequest().load({"amount": 1}) == {"amount": 1, "reason": None}


def test_refund_object_has_the_contract_fields() -> None:
    created = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    refund = Refund("rfnd_" + "a" * 16, "pay_" + "b" * 16, "m1", 500, "r", RefundStatus.PENDING, created)
    assert refund_resource(refund) == {
        "id": "rfnd_" + "a" * 16,
        "payment_id": "pay_" + "b" * 16,
        "merchant_id": "m1",
        "amount": 500,
        "reason": "r",
        "status": "pending",
        "created_at": "2026-01-15T10:30:00Z",
        "processed_at": None,
    }
