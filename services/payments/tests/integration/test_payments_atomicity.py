"""A payment and its events are written in one round trip and one implicit transaction: both or neither."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest
from gateway_common.ids import new_id
from payments import repository, service


def test_payment_and_events_commit_together(client, headers, db, admin_conn):
    created = client.post("/api/v1/payments", json={"amount": 100, "method": "upi", "vpa": "a@b"}, headers=headers)
    payment = service.get_payment(db, headers["X-Merchant-Id"], created.get_json()["id"])
    with admin_conn.cursor() as cur:
        cur.execute(
            "SELECT payload FROM payments.outbox WHERE event_type = 'payment.created' ORDER BY seq DESC LIMIT 1"
        )
        existing_event = cur.fetchone()[0]
    clone = replace(payment, id=new_id("pay_"))
    instrument = service.build_instrument({"method": "upi", "vpa": "a@b"})
    # Two events, as the group commit writes them (autocommit: the two statements of one script
    # are one implicit transaction); the second has no type, so the events statement fails and
    # the payment insert must go too.
    events = [{**existing_event, "id": new_id("evt_")}, {**existing_event, "id": new_id("evt_"), "event": None}]
    with pytest.raises(psycopg.IntegrityError), db.autocommit() as tx:
        repository.insert_payments(tx, [repository.NewPayment(clone, instrument, events)])
    with admin_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments.payments WHERE id = %s", (clone.id,))
        assert cur.fetchone()[0] == 0
