"""The refund reconciler: refund.processed events whose Celery task was lost still reach amount_refunded, once."""

from __future__ import annotations

import dataclasses
import json
import uuid

from payments import refund_sync


def _payment(client, headers, drive_bank, amount=1000):
    payment = client.post(
        "/api/v1/payments", json={"amount": amount, "method": "upi", "vpa": "success@upi"}, headers=headers
    ).get_json()
    drive_bank([payment["id"]])
    return payment


def _publish(admin_conn, payment, refund_id, amount, *, age="30 seconds", event="refund.processed"):
    """Write a refund event into the refunds outbox (as the refunds service would), ``age`` old."""
    envelope = {
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
                "status": "processed" if event == "refund.processed" else "pending",
            }
        },
    }
    with admin_conn.cursor() as cur:
        cur.execute(
            "INSERT INTO refunds.outbox (event_id, event_type, merchant_id, payload, created_at, published_at) "
            "VALUES (%s, %s, %s, %s, now() - %s::interval, now() - %s::interval + interval '0.1 second')",
            (envelope["id"], event, payment["merchant_id"], json.dumps(envelope), age, age),
        )
    return envelope


def _refunded(client, headers, payment):
    return client.get(f"/api/v1/payments/{payment['id']}", headers=headers).get_json()["amount_refunded"]


def _rfnd():
    return "rfnd_" + uuid.uuid4().hex[:16]


def test_lost_refund_events_are_applied_once(client, headers, db, drive_bank, admin_conn):
    payment = _payment(client, headers, drive_bank)
    missed = _publish(admin_conn, payment, _rfnd(), 300)
    _publish(admin_conn, payment, _rfnd(), 200, event="refund.created")
    _publish(admin_conn, payment, _rfnd(), 100, age="2 seconds")  # its task may still be on the way
    _publish(admin_conn, payment, _rfnd(), 100, age="25 hours")  # outside the window
    reconciler = refund_sync.reconciler(db)

    assert reconciler.step() >= 1
    assert _refunded(client, headers, payment) == 300
    reconciler.step()
    refund_sync.reconciler(db).step()
    assert _refunded(client, headers, payment) == 300

    # The task arriving late changes nothing: both paths are idempotent by refund id.
    assert refund_sync.apply_refund_events(db, [missed]) == 0
    assert _refunded(client, headers, payment) == 300


def test_refunds_already_applied_by_the_task_are_not_reapplied(client, headers, db, drive_bank, admin_conn):
    payment = _payment(client, headers, drive_bank)
    delivered = _publish(admin_conn, payment, _rfnd(), 400)
    assert refund_sync.apply_refund_events(db, [delivered]) == 1
    refund_sync.reconciler(db).step()
    assert _refunded(client, headers, payment) == 400


def test_unappliable_events_do_not_block_the_rest(client, headers, db, drive_bank, admin_conn):
    payment = _payment(client, headers, drive_bank)
    _publish(admin_conn, payment, _rfnd(), 5000, age="40 seconds")  # more than the payment: never applies
    _publish(admin_conn, payment, _rfnd(), 250, age="30 seconds")
    # min_age 0: the view is read in seq order, and an earlier test left a young row before these
    # back-dated ones (in production seq follows created_at).
    reconciler = refund_sync.reconciler(db, dataclasses.replace(refund_sync.RECONCILE, batch=1, min_age_seconds=0))
    for _ in range(5):
        reconciler.step()
        if _refunded(client, headers, payment) == 250:
            break
    assert _refunded(client, headers, payment) == 250
