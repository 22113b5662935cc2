"""SQL for the webhooks schema; returns dataclasses."""

from __future__ import annotations

from gateway_common.db import Transaction
from psycopg2.extras import execute_values

from webhooks.models import Claim, Delivery, DeliveryStatus, Endpoint, Job

_ENDPOINT_COLUMNS = "id, merchant_id::text AS merchant_id, url, secret"
_DELIVERY_COLUMNS = (
    "id, merchant_id::text AS merchant_id, event_id, event_type, payment_id, body, url, status, attempts, "
    "next_retry_at, last_attempt_at, response_code, response_body, last_error, created_at"
)

_RESET_SQL = (
    "UPDATE webhooks.deliveries SET status = 'pending', attempts = 0, next_retry_at = now(), lease_token = NULL, "  # noqa: S608
    f"lease_until = NULL, updated_at = now() WHERE id = %s AND merchant_id = %s RETURNING {_DELIVERY_COLUMNS}"
)


def _delivery(row: dict) -> Delivery:
    return Delivery(**{**row, "body": bytes(row["body"]), "status": DeliveryStatus(row["status"])})


def get_endpoint(tx: Transaction, merchant_id: str) -> Endpoint | None:
    """Load a merchant's endpoint."""
    tx.cursor.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints WHERE merchant_id = %s",  # noqa: S608
        (merchant_id,),
    )
    row = tx.cursor.fetchone()
    return Endpoint(**row) if row else None


def insert_endpoint(tx: Transaction, endpoint_id: str, merchant_id: str, secret: str) -> None:
    """Create a merchant's endpoint (no URL) unless it already has one."""
    tx.cursor.execute(
        "INSERT INTO webhooks.endpoints (id, merchant_id, secret) VALUES (%s, %s, %s) "
        "ON CONFLICT (merchant_id) DO NOTHING",
        (endpoint_id, merchant_id, secret),
    )


def set_endpoint_url(tx: Transaction, merchant_id: str, url: str | None) -> Endpoint:
    """Change the URL of a merchant's endpoint."""
    tx.cursor.execute(
        f"UPDATE webhooks.endpoints SET url = %s, updated_at = now() WHERE merchant_id = %s "  # noqa: S608
        f"RETURNING {_ENDPOINT_COLUMNS}",
        (url, merchant_id),
    )
    return Endpoint(**tx.cursor.fetchone())


def set_endpoint_secret(tx: Transaction, merchant_id: str, secret: str) -> Endpoint:
    """Replace the signing secret of a merchant's endpoint."""
    tx.cursor.execute(
        f"UPDATE webhooks.endpoints SET secret = %s, updated_at = now() WHERE merchant_id = %s "  # noqa: S608
        f"RETURNING {_ENDPOINT_COLUMNS}",
        (secret, merchant_id),
    )
    return Endpoint(**tx.cursor.fetchone())


def endpoints_with_url(tx: Transaction, merchant_ids: list[str]) -> dict[str, Endpoint]:
    """Return the endpoints with a URL of these merchants, by merchant id."""
    tx.cursor.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints "  # noqa: S608
        "WHERE merchant_id = ANY(%s::uuid[]) AND url IS NOT NULL",
        (merchant_ids,),
    )
    return {row["merchant_id"]: Endpoint(**row) for row in tx.cursor.fetchall()}


def claim_due(tx: Transaction, limit: int, lease_seconds: float, ids: list[str] | None = None) -> list[Claim]:
    """Lease due deliveries nobody holds (skipping rows locked by others); return the claims."""
    tx.cursor.execute(
        "WITH due AS ("
        "  SELECT id FROM webhooks.deliveries"
        "  WHERE status = 'pending' AND next_retry_at <= now()"
        "    AND (lease_until IS NULL OR lease_until < now())"
        "    AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]))"
        "  ORDER BY next_retry_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
        "UPDATE webhooks.deliveries d SET lease_token = gen_random_uuid()::text,"
        "  lease_until = now() + %(lease)s::float8 * interval '1 second' "
        "FROM due WHERE d.id = due.id RETURNING d.id, d.lease_token, d.merchant_id::text AS merchant_id",
        {"ids": ids, "limit": limit, "lease": lease_seconds},
    )
    return [Claim(row["id"], row["lease_token"], row["merchant_id"]) for row in tx.cursor.fetchall()]


def insert_deliveries(tx: Transaction, rows: list[tuple]) -> list[str]:
    """Insert due deliveries ``(id, endpoint, event_id, event_type, payment_id, body)`` in one statement.

    An event that already has a delivery for the endpoint is skipped; returns the new ids.
    """
    if not rows:
        return []
    values = [
        (delivery_id, ep.merchant_id, ep.id, event_id, event_type, payment_id, body, ep.url)
        for delivery_id, ep, event_id, event_type, payment_id, body in rows
    ]
    created = execute_values(
        tx.cursor,
        "INSERT INTO webhooks.deliveries "
        "(id, merchant_id, endpoint_id, event_id, event_type, payment_id, body, url, next_retry_at) "
        "VALUES %s ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING id",
        values,
        template="(%s, %s::uuid, %s, %s, %s, %s, %s, %s, now())",
        page_size=max(len(values), 1),
        fetch=True,
    )
    return [row["id"] for row in created]


def record_received(tx: Transaction, event_ids: list[str]) -> None:
    """Remember that these events were handled (the reconciler skips them)."""
    if event_ids:
        execute_values(
            tx.cursor,
            "INSERT INTO webhooks.received_events (event_id) VALUES %s ON CONFLICT (event_id) DO NOTHING",
            [(event_id,) for event_id in sorted(set(event_ids))],
            page_size=max(len(event_ids), 1),
        )


# For the reconciler (gateway_common.reconcile): a published event this service has not handled.
NOT_RECEIVED = "NOT EXISTS (SELECT 1 FROM webhooks.received_events r WHERE r.event_id = ev.event_id)"


def prune_received(tx: Transaction, keep_seconds: float) -> None:
    """Forget handled event ids older than ``keep_seconds`` (the reconciler no longer looks that far back)."""
    tx.cursor.execute(
        "DELETE FROM webhooks.received_events WHERE received_at < now() - %s::float8 * interval '1 second'",
        (keep_seconds,),
    )


def start_attempts(tx: Transaction, claims: list[Claim], new_token: str, lease_seconds: float) -> list[Job]:
    """Take over claims for their attempts under a new lease token; stale claims are left out.

    The task may arrive before the claiming transaction commits: ``FOR UPDATE`` waits for
    it and then reads the committed rows, where a plain ``UPDATE ... WHERE lease_token``
    would judge the old versions and skip them.
    """
    tokens = {claim.delivery_id: claim.lease_token for claim in claims}
    tx.cursor.execute(
        "SELECT d.id, d.event_id, d.body, d.attempts, d.status, d.lease_token, e.url, e.secret "
        "FROM webhooks.deliveries d JOIN webhooks.endpoints e ON e.id = d.endpoint_id "
        "WHERE d.id = ANY(%s) ORDER BY d.id FOR UPDATE OF d",
        (sorted(tokens),),
    )
    rows = [
        row for row in tx.cursor.fetchall()
        if row["status"] == "pending" and row["lease_token"] is not None and row["lease_token"] == tokens[row["id"]]
    ]
    if not rows:
        return []
    tx.cursor.execute(
        "UPDATE webhooks.deliveries SET lease_token = %s, lease_until = now() + %s::float8 * interval '1 second' "
        "WHERE id = ANY(%s)",
        (new_token, lease_seconds, [row["id"] for row in rows]),
    )
    return [
        Job(
            delivery_id=row["id"],
            event_id=row["event_id"],
            body=bytes(row["body"]),
            attempts=row["attempts"],
            url=row["url"],
            secret=row["secret"],
            lease_token=new_token,
        )
        for row in rows
    ]


def record_attempts(tx: Transaction, outcomes: list[dict]) -> list[str]:
    """Store attempts' outcomes and next due times in one statement; return the ids whose lease still held.

    Each outcome has ``id``, ``token`` (the attempt's lease), ``status``, ``wait`` (seconds to the
    next attempt, None when final), ``code``, ``body``, ``error`` and ``url`` (None keeps the stored one).
    """
    if not outcomes:
        return []
    values = [
        (o["id"], o["token"], o["status"], o["wait"], o["code"], o["body"], o["error"], o["url"])
        for o in sorted(outcomes, key=lambda o: o["id"])
    ]
    rows = execute_values(
        tx.cursor,
        "UPDATE webhooks.deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),"
        "  status = v.status, next_retry_at = now() + v.wait * interval '1 second',"
        "  response_code = v.code, response_body = v.body, last_error = v.error,"
        "  url = coalesce(v.url, d.url), lease_token = NULL, lease_until = NULL, updated_at = now() "
        "FROM (VALUES %s) AS v (id, token, status, wait, code, body, error, url) "
        "WHERE d.id = v.id AND d.lease_token = v.token RETURNING d.id",
        values,
        template="(%s::text, %s::text, %s::text, %s::float8, %s::int, %s::text, %s::text, %s::text)",
        page_size=max(len(values), 1),
        fetch=True,
    )
    return [row["id"] for row in rows]


def list_deliveries(
    tx: Transaction, merchant_id: str, limit: int, offset: int, payment_id: str | None
) -> tuple[list[Delivery], int]:
    """Return a page of a merchant's deliveries, newest first, and the total."""
    tx.cursor.execute(
        f"SELECT {_DELIVERY_COLUMNS}, count(*) OVER () AS total FROM webhooks.deliveries "  # noqa: S608
        "WHERE merchant_id = %(m)s AND (%(p)s::text IS NULL OR payment_id = %(p)s) "
        "ORDER BY seq DESC LIMIT %(limit)s OFFSET %(offset)s",
        {"m": merchant_id, "p": payment_id, "limit": limit, "offset": offset},
    )
    rows = tx.cursor.fetchall()
    if rows:
        total = rows[0]["total"]
    else:
        tx.cursor.execute(
            "SELECT count(*) AS total FROM webhooks.deliveries "
            "WHERE merchant_id = %(m)s AND (%(p)s::text IS NULL OR payment_id = %(p)s)",
            {"m": merchant_id, "p": payment_id},
        )
        total = tx.cursor.fetchone()["total"]
    return [_delivery({k: v for k, v in row.items() if k != "total"}) for row in rows], total


def get_delivery(tx: Transaction, merchant_id: str, delivery_id: str) -> Delivery | None:
    """Load one of a merchant's deliveries."""
    tx.cursor.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhooks.deliveries WHERE id = %s AND merchant_id = %s",  # noqa: S608
        (delivery_id, merchant_id),
    )
    row = tx.cursor.fetchone()
    return _delivery(row) if row else None


def reset_delivery(tx: Transaction, merchant_id: str, delivery_id: str) -> Delivery | None:
    """Make a delivery due now with a fresh attempt budget (drops any lease)."""
    tx.cursor.execute(_RESET_SQL, (delivery_id, merchant_id))
    row = tx.cursor.fetchone()
    return _delivery(row) if row else None
