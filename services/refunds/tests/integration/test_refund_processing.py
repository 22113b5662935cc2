"""Processing refunds: the due-work sweeper, the idempotent process step and its events."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from refunds import service


def _create(client: FlaskClient, headers: dict, payment_id: str, amount: int = 100) -> dict:
    response = client.post(f"/api/v1/payments/{payment_id}/refunds", json={"amount": amount}, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _events(admin, refund_id: str, event_type: str) -> list[dict]:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT payload FROM refunds.outbox WHERE event_type = %s AND payload->'data'->'refund'->>'id' = %s",
            (event_type, refund_id),
        )
        return [row["payload"] for row in cur.fetchall()]


def test_processing_marks_processed_once_with_one_event(
    app: Flask, client: FlaskClient, headers: dict, make_payment: Callable[..., str], admin
) -> None:
    db = app.extensions["db"]
    payment_id = make_payment()
    refunds = [_create(client, headers, payment_id) for _ in range(3)]
    ids = [r["id"] for r in refunds]

    assert service.process_refunds(db, ids) == 3
    assert service.process_refunds(db, ids) == 0

    for refund_id in ids:
        got = client.get(f"/api/v1/refunds/{refund_id}", headers=headers).get_json()
        assert got["status"] == "processed"
        assert got["processed_at"] is not None
        events = _events(admin, refund_id, "refund.processed")
        assert len(events) == 1
        assert events[0]["data"] == {"refund": got}
        assert events[0]["event"] == "refund.processed"
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM refunds.refunds WHERE id = ANY(%s) AND next_run_at IS NOT NULL", (ids,))
        assert cur.fetchone()["n"] == 0


def test_refunds_are_not_processed_before_they_are_due(
    app: Flask, client: FlaskClient, headers: dict, make_payment: Callable[..., str], admin
) -> None:
    db = app.extensions["db"]
    refund = _create(client, headers, make_payment())
    with admin.cursor() as cur:
        cur.execute(
            "UPDATE refunds.refunds SET due_at = now() + interval '1 hour', "
            "next_run_at = now() + interval '1 hour' WHERE id = %s",
            (refund["id"],),
        )
    assert service.process_refunds(db, [refund["id"]]) == 0
    claimed: list[list[str]] = []
    service.sweep_due_refunds(db, claimed.append)
    assert refund["id"] not in [i for batch in claimed for i in batch]
    assert client.get(f"/api/v1/refunds/{refund['id']}", headers=headers).get_json()["status"] == "pending"


def test_sweeper_leases_due_refunds_and_dispatches_them_after_commit(
    app: Flask, client: FlaskClient, headers: dict, make_payment: Callable[..., str], admin
) -> None:
    db = app.extensions["db"]
    payment_id = make_payment()
    ids = {_create(client, headers, payment_id)["id"] for _ in range(5)}

    claimed: list[list[str]] = []
    service.sweep_due_refunds(db, claimed.append, batch=2)
    dispatched = [i for batch in claimed for i in batch]
    assert ids <= set(dispatched)
    assert all(len(batch) <= 2 for batch in claimed)
    with admin.cursor() as cur:
        cur.execute("SELECT min(next_run_at - now()) AS lease FROM refunds.refunds WHERE id = ANY(%s)", (list(ids),))
        assert cur.fetchone()["lease"].total_seconds() > 20

    # Leased rows are not handed out again while the lease runs.
    again: list[list[str]] = []
    service.sweep_due_refunds(db, again.append)
    assert not ids & {i for batch in again for i in batch}

    # Once the lease has run out (a crashed worker), they are claimed again.
    with admin.cursor() as cur:
        cur.execute(
            "UPDATE refunds.refunds SET next_run_at = now() - interval '1 second' WHERE id = ANY(%s)", (list(ids),)
        )
    later: list[list[str]] = []
    service.sweep_due_refunds(db, later.append)
    assert ids <= {i for batch in later for i in batch}

    assert service.process_refunds(db, dispatched) >= len(ids)
    for refund_id in ids:
        assert len(_events(admin, refund_id, "refund.processed")) == 1


def test_a_failed_dispatch_does_not_lose_the_claim(
    app: Flask, client: FlaskClient, headers: dict, make_payment: Callable[..., str], admin
) -> None:
    db = app.extensions["db"]
    refund = _create(client, headers, make_payment())

    def broken(_ids: list[str]) -> None:
        raise ConnectionError("broker down")

    service.sweep_due_refunds(db, broken)
    with admin.cursor() as cur:
        cur.execute("SELECT status, next_run_at > now() AS leased FROM refunds.refunds WHERE id = %s", (refund["id"],))
        row = cur.fetchone()
    assert row["status"] == "pending"
    assert row["leased"]
