"""SQL for deliveries: insert, claim, start and record attempts, list, get, reset, received-event
dedupe and pruning."""

from __future__ import annotations

from gateway_common.db import Transaction
from gateway_common.pagination import Listing, Page, read_page

from webhooks.models import Claim, Delivery, DeliveryStatus, EndpointStatus, Job

_DELIVERY_COLUMNS = (
    "id, merchant_id::text AS merchant_id, endpoint_id, event_id, event_type, payment_id, body, url, status, attempts, "
    "next_retry_at, last_attempt_at, response_code, response_body, last_error, created_at"
)

_RESET_SQL = (
    "UPDATE webhooks.deliveries SET status = 'pending', attempts = 0, next_retry_at = now(), lease_token = NULL, "  # noqa: S608
    f"lease_until = NULL, updated_at = now() WHERE id = %s AND merchant_id = %s RETURNING {_DELIVERY_COLUMNS}"
)


def _delivery(row: dict) -> Delivery:
    return Delivery(**{**row, "body": bytes(row["body"]), "status": DeliveryStatus(row["status"])})


def prune_deliveries(tx: Transaction, keep_days: int, batch: int) -> int:
    """Delete up to ``batch`` of the finished deliveries older than ``keep_days``, oldest first; return how many.

    Found by deliveries_finished_created_at_idx; a pending delivery is never pruned (it still has attempts).
    """
    # By ctid (a TID scan): with "seq IN (...)" the planner may join the batch to a scan of the table.
    tx.cursor.execute(
        "DELETE FROM webhooks.deliveries WHERE ctid = ANY(ARRAY(SELECT ctid FROM webhooks.deliveries "
        "WHERE status <> 'pending' AND created_at < now() - %s * interval '1 day' ORDER BY created_at LIMIT %s))",
        (keep_days, batch),
    )
    return tx.cursor.rowcount


def prune_disabled_deliveries(tx: Transaction, keep: int, batch: int) -> int:
    """Delete up to ``batch`` ``disabled`` deliveries beyond each endpoint's newest ``keep``; return how many.

    Only endpoints that are disabled or deleted now are looked at (an enabled one stops getting
    ``disabled`` rows); each walks deliveries_endpoint_disabled_idx, newest first, past the ones kept.
    """
    tx.cursor.execute(
        "DELETE FROM webhooks.deliveries WHERE seq = ANY(ARRAY(SELECT old.seq FROM webhooks.endpoints e "
        "  CROSS JOIN LATERAL (SELECT d.seq FROM webhooks.deliveries d WHERE d.endpoint_id = e.id"
        "    AND d.status = 'disabled' ORDER BY d.seq DESC OFFSET %s LIMIT %s) AS old"
        "  WHERE e.status = 'disabled' OR e.deleted_at IS NOT NULL LIMIT %s))",
        (keep, batch, batch),
    )
    return tx.cursor.rowcount


def claim_due(tx: Transaction, limit: int, lease_seconds: float, ids: list[str] | None = None) -> list[Claim]:
    """Lease deliveries due on their merchant's clock that nobody holds (skipping rows locked by others).

    Merchants on real time are found through deliveries_due_idx; the few with a test clock
    (auth.merchant_clocks) through deliveries_merchant_due_idx, each against its own offset. Leases
    are real time: they measure how long a worker may hold a claim. Returns the claims.
    """
    tx.cursor.execute(
        "WITH on_time AS ("
        "  SELECT id FROM webhooks.deliveries"
        "  WHERE status = 'pending' AND next_retry_at <= now()"
        "    AND (lease_until IS NULL OR lease_until < now())"
        "    AND (%(ids)b::text[] IS NULL OR id = ANY(%(ids)b::text[]))"
        "  ORDER BY next_retry_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
        "clocked AS ("
        "  SELECT d.id FROM auth.merchant_clocks c JOIN webhooks.deliveries d ON d.merchant_id = c.merchant_id"
        "  WHERE d.status = 'pending' AND d.next_retry_at <= now() + c.offset_seconds * interval '1 second'"
        "    AND (d.lease_until IS NULL OR d.lease_until < now())"
        "    AND (%(ids)b::text[] IS NULL OR d.id = ANY(%(ids)b::text[]))"
        "  ORDER BY d.next_retry_at LIMIT %(limit)s FOR UPDATE OF d SKIP LOCKED) "
        "UPDATE webhooks.deliveries d SET lease_token = gen_random_uuid()::text,"
        "  lease_until = now() + %(lease)s::float8 * interval '1 second' "
        "FROM (SELECT id FROM on_time UNION SELECT id FROM clocked) AS due "
        "WHERE d.id = due.id RETURNING d.id, d.lease_token, d.merchant_id::text AS merchant_id",
        {"ids": ids, "limit": limit, "lease": lease_seconds},
    )
    return [Claim(row["id"], row["lease_token"], row["merchant_id"]) for row in tx.cursor.fetchall()]


def backlog(tx: Transaction) -> tuple[int, float]:
    """Pending deliveries, and how far past its ``next_retry_at`` the most overdue one is (0 when none is late)."""
    tx.cursor.execute(
        "SELECT count(*) AS n, GREATEST(extract(epoch FROM now() - min(next_retry_at)), 0)::float8 AS late "
        "FROM webhooks.deliveries WHERE status = 'pending'"
    )
    row = tx.cursor.fetchone()
    return int(row["n"]), float(row["late"] or 0.0)


def insert_deliveries(tx: Transaction, rows: list[tuple]) -> list[str]:
    """Insert deliveries ``(id, endpoint, event_id, event_type, payment_id, body)`` in one statement.

    A delivery to an enabled endpoint is due now; one to a disabled endpoint is recorded as
    ``disabled``, without an attempt. An event that already has a delivery for the endpoint is
    skipped; returns the new ids of due deliveries.
    """
    if not rows:
        return []
    values = [
        (delivery_id, ep.merchant_id, ep.id, event_id, event_type, payment_id, body, ep.url,
         str(DeliveryStatus.PENDING if ep.status == EndpointStatus.ENABLED else DeliveryStatus.DISABLED))
        for delivery_id, ep, event_id, event_type, payment_id, body in rows
    ]
    columns = [list(column) for column in zip(*values, strict=True)]
    tx.cursor.execute(
        "INSERT INTO webhooks.deliveries "
        "(id, merchant_id, endpoint_id, event_id, event_type, payment_id, body, url, status, next_retry_at) "
        "SELECT v.*, CASE WHEN v.status = 'pending' THEN now() END FROM unnest("
        "  %b::text[], %b::uuid[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[], %b::text[], %b::text[]"
        ") AS v (id, merchant_id, endpoint_id, event_id, event_type, payment_id, body, url, status) "
        "ON CONFLICT (event_id, endpoint_id) DO NOTHING RETURNING id, status",
        columns,
    )
    return [row["id"] for row in tx.cursor.fetchall() if row["status"] == "pending"]


def redeliver(tx: Transaction, rows: list[tuple]) -> list[str]:
    """Deliver events again: like ``insert_deliveries``, but an existing delivery is made due now with a
    fresh attempt budget and the body given (the endpoint's format now), its id kept and any lease
    dropped. Returns the ids, new or kept."""
    if not rows:
        return []
    values = [
        (delivery_id, ep.merchant_id, ep.id, event_id, event_type, payment_id, body, ep.url)
        for delivery_id, ep, event_id, event_type, payment_id, body in rows
    ]
    columns = [list(column) for column in zip(*values, strict=True)]
    tx.cursor.execute(
        "INSERT INTO webhooks.deliveries "
        "(id, merchant_id, endpoint_id, event_id, event_type, payment_id, body, url, next_retry_at) "
        "SELECT v.*, now() FROM unnest("
        "  %b::text[], %b::uuid[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bytea[], %b::text[]"
        ") AS v (id, merchant_id, endpoint_id, event_id, event_type, payment_id, body, url) "
        "ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'pending', attempts = 0, next_retry_at = now(),"
        "  body = EXCLUDED.body, lease_token = NULL, lease_until = NULL, updated_at = now() RETURNING id",
        columns,
    )
    return [row["id"] for row in tx.cursor.fetchall()]


def record_received(tx: Transaction, event_ids: list[str]) -> None:
    """Remember that these events were handled (the reconciler skips them)."""
    if event_ids:
        tx.cursor.execute(
            "INSERT INTO webhooks.received_events (event_id) SELECT unnest(%b::text[]) ON CONFLICT (event_id) DO NOTHING",
            (sorted(set(event_ids)),),
        )


# For the reconciler (gateway_common.reconcile): a published event this service has not handled.
NOT_RECEIVED = "NOT EXISTS (SELECT 1 FROM webhooks.received_events r WHERE r.event_id = ev.event_id)"


def prune_received(tx: Transaction, keep_seconds: float) -> None:
    """Forget handled event ids older than ``keep_seconds`` (the reconciler no longer looks that far back)."""
    tx.cursor.execute(
        "DELETE FROM webhooks.received_events WHERE received_at < now() - %s::float8 * interval '1 second'",
        (keep_seconds,),
    )


def start_attempts(
    tx: Transaction, claims: list[Claim], new_token: str, lease_seconds: float, circuit_threshold: int,
    probe_seconds: float, hold_seconds: float,
) -> list[Job]:
    """Take over claims for their attempts under a new lease token; stale claims are left out.

    The task may arrive before the claiming transaction commits: ``FOR UPDATE`` waits for
    it and then reads the committed rows, where a plain ``UPDATE ... WHERE lease_token``
    would judge the old versions and skip them. A claim whose endpoint has been disabled or
    deleted since is recorded as ``disabled`` here, without an attempt. An endpoint whose
    circuit is open (``circuit_threshold`` failures in a row) gets one probe per
    ``probe_seconds``; of its other claims, the least tried waits for the next probe and the rest
    are held for ``hold_seconds`` (released sooner by ``release_held``), without an attempt, so
    they are not claimed and put off again at every probe.
    """
    tokens = {claim.delivery_id: claim.lease_token for claim in claims}
    tx.cursor.execute(
        "SELECT d.id, d.endpoint_id, d.event_id, d.body, d.attempts, d.status, d.lease_token, e.url, e.secret,"
        "  e.is_default, e.status <> 'enabled' OR e.deleted_at IS NOT NULL AS disabled,"
        "  e.consecutive_failures >= %s AS circuit_open,"
        "  CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret "
        "FROM webhooks.deliveries d JOIN webhooks.endpoints e ON e.id = d.endpoint_id "
        "WHERE d.id = ANY(%s) ORDER BY d.id FOR UPDATE OF d",
        (circuit_threshold, sorted(tokens)),
    )
    rows = [
        row for row in tx.cursor.fetchall()
        if row["status"] == "pending" and row["lease_token"] is not None and row["lease_token"] == tokens[row["id"]]
    ]
    disabled = [row["id"] for row in rows if row["disabled"]]
    if disabled:
        tx.cursor.execute(
            "UPDATE webhooks.deliveries SET status = 'disabled', next_retry_at = NULL, lease_token = NULL,"
            "  lease_until = NULL, last_error = 'endpoint disabled', updated_at = now() WHERE id = ANY(%s)",
            (disabled,),
        )
    rows = [row for row in rows if not row["disabled"]]
    tripped = sorted({row["endpoint_id"] for row in rows if row["circuit_open"]})
    if tripped:
        # One probe per endpoint whose probe is due: taking it moves the next one on (under the row lock).
        tx.cursor.execute(
            "UPDATE webhooks.endpoints SET circuit_open_until = auth.merchant_now(merchant_id) "
            "  + %s::float8 * interval '1 second' WHERE id = ANY(%s) "
            "  AND (circuit_open_until IS NULL OR circuit_open_until <= auth.merchant_now(merchant_id)) RETURNING id",
            (probe_seconds, tripped),
        )
        probing = {row["id"] for row in tx.cursor.fetchall()}
        waiting, held = [], []
        # The probe is the claim with the fewest attempts, so probes spread over the held deliveries
        # rather than spending one delivery's retries (it would end ``failed`` while its peers wait);
        # the next least tried waits for the next probe.
        next_probe: set[str] = set()
        for row in sorted(rows, key=lambda row: (row["attempts"], row["id"])):
            if row["circuit_open"]:
                if row["endpoint_id"] in probing:
                    probing.discard(row["endpoint_id"])  # this one is the probe
                elif row["endpoint_id"] not in next_probe:
                    next_probe.add(row["endpoint_id"])
                    waiting.append(row["id"])
                else:
                    held.append(row["id"])
        if waiting or held:
            tx.cursor.execute(
                "UPDATE webhooks.deliveries d SET held = true,"
                "  next_retry_at = CASE WHEN d.id = ANY(%(held)s)"
                "    THEN auth.merchant_now(d.merchant_id) + %(hold)s::float8 * interval '1 second'"
                "    ELSE greatest(e.circuit_open_until, auth.merchant_now(d.merchant_id)) END,"
                "  lease_token = NULL, lease_until = NULL, updated_at = now() "
                "FROM webhooks.endpoints e WHERE e.id = d.endpoint_id AND d.id = ANY(%(ids)s)",
                {"held": held, "ids": waiting + held, "hold": hold_seconds},
            )
            put_off = set(waiting) | set(held)
            rows = [row for row in rows if row["id"] not in put_off]
    if not rows:
        return []
    tx.cursor.execute(
        "UPDATE webhooks.deliveries SET lease_token = %s, lease_until = now() + %s::float8 * interval '1 second', "
        "held = false WHERE id = ANY(%s)",
        (new_token, lease_seconds, [row["id"] for row in rows]),
    )
    return [
        Job(
            delivery_id=row["id"],
            endpoint_id=row["endpoint_id"],
            event_id=row["event_id"],
            body=bytes(row["body"]),
            attempts=row["attempts"],
            url=row["url"],
            secret=row["secret"],
            lease_token=new_token,
            standard_secrets=() if row["is_default"] else tuple(
                s for s in (row["secret"], row["previous_secret"]) if s is not None
            ),
        )
        for row in rows
    ]


def release_held(tx: Transaction, endpoint_ids: list[str]) -> None:
    """Make the deliveries an open circuit held back due now (it closed, or the endpoint changed)."""
    if endpoint_ids:
        tx.cursor.execute(
            "UPDATE webhooks.deliveries SET held = false, next_retry_at = auth.merchant_now(merchant_id), "
            "updated_at = now() WHERE endpoint_id = ANY(%s) AND held",
            (sorted(set(endpoint_ids)),),
        )


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
    columns = [list(column) for column in zip(*values, strict=True)]
    tx.cursor.execute(
        "UPDATE webhooks.deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),"
        "  status = v.status, next_retry_at = auth.merchant_now(d.merchant_id) + v.wait * interval '1 second',"
        "  response_code = v.code, response_body = v.body, last_error = v.error,"
        "  url = coalesce(v.url, d.url), lease_token = NULL, lease_until = NULL, updated_at = now() "
        "FROM unnest(%b::text[], %b::text[], %b::text[], %b::float8[], %b::int[], %b::text[], %b::text[], %b::text[]) "
        "AS v (id, token, status, wait, code, body, error, url) "
        "WHERE d.id = v.id AND d.lease_token = v.token RETURNING d.id",
        columns,
    )
    rows = tx.cursor.fetchall()
    return [row["id"] for row in rows]


DELIVERIES = Listing("webhooks.deliveries", _DELIVERY_COLUMNS, ("seq",), "webhook log")


def list_deliveries(tx: Transaction, merchant_id: str, query: dict) -> Page:
    """Return a page of a merchant's deliveries, newest first (``payment_id`` narrows to one payment).

    Served by deliveries_merchant_seq_idx, or deliveries_merchant_payment_idx for one payment.
    """
    filters = ""
    params = {"m": merchant_id}
    if query.get("payment_id"):
        filters = "payment_id = %(p)s"
        params["p"] = query["payment_id"]
    page = read_page(tx, DELIVERIES, "merchant_id = %(m)s", params, query, filters)
    page.items = [_delivery(row) for row in page.items]
    return page


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
