"""payments.handle_refund_events: amount_refunded follows refund.processed, once per refund id."""

from __future__ import annotations

import uuid

from payments import refund_sync


def refund_event(payment, refund_id, amount, event="refund.processed"):
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "event": event,
        "timestamp": 0,
        "merchant_id": payment["merchant_id"],
        "data": {
            "refund": {
                "id": refund_id,
                "payment_id": payment["id"],
                "merchant_id": payment["merchant_id"],
                "amount": amount,
                "status": "processed",
            }
        },
    }


def test_processed_refunds_are_applied_once(client, headers, db, drive_bank):
    payment = client.post(
        "/api/v1/payments", json={"amount": 1000, "method": "upi", "vpa": "success@upi"}, headers=headers
    ).get_json()
    drive_bank([payment["id"]])
    events = [
        refund_event(payment, "rfnd_AAAAAAAAAAAAAAA1", 300),
        refund_event(payment, "rfnd_AAAAAAAAAAAAAAA2", 200, event="refund.created"),
        refund_event(payment, "rfnd_AAAAAAAAAAAAAAA1", 300),
    ]
    assert refund_sync.apply_refund_events(db, events) == 1
    assert refund_sync.apply_refund_events(db, events) == 0
    got = client.get(f"/api/v1/payments/{payment['id']}", headers=headers).get_json()
    assert got["amount_refunded"] == 300
    too_much = refund_event(payment, "rfnd_AAAAAAAAAAAAAAA3", 900)
    assert refund_sync.apply_refund_events(db, [too_much, {"event": "refund.processed", "data": {}}]) == 0
    assert client.get(f"/api/v1/payments/{payment['id']}", headers=headers).get_json()["amount_refunded"] == 300
    foreign = {**refund_event(payment, "rfnd_AAAAAAAAAAAAAAA4", 100)}
    foreign["data"]["refund"]["merchant_id"] = str(uuid.uuid4())
    assert refund_sync.apply_refund_events(db, [foreign]) == 0


def test_poison_refund_events_are_skipped(db, client, headers, drive_bank):
    payment = client.post(
        "/api/v1/payments", json={"amount": 1000, "method": "upi", "vpa": "success@upi"}, headers=headers
    ).get_json()
    bad_merchant = refund_event(payment, "rfnd_AAAAAAAAAAAAAAA5", 100)
    bad_merchant["data"]["refund"]["merchant_id"] = "not-a-uuid"
    nul = refund_event(payment, "rfnd_AAAAAAAAAAAAAAA6\x00", 100)
    assert refund_sync.apply_refund_events(db, [bad_merchant, nul, "junk", {"event": "refund.processed"}]) == 0
