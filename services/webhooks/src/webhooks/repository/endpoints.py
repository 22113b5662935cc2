"""SQL for webhook endpoints: the default one, the ones made through /webhook-endpoints, their
secrets and their failure record (circuit, disabling)."""

from __future__ import annotations

from gateway_common.db import Transaction

from webhooks.models import Endpoint, EndpointStatus

_ENDPOINT_COLUMNS = (
    "id, merchant_id::text AS merchant_id, url, secret, format, is_default, enabled_events, description, status, "
    "disabled_reason, created_at"
)

# An endpoint with a clean record: no failures counted, circuit closed.
_HEALTHY = "consecutive_failures = 0, failing_since = NULL, circuit_open_until = NULL"


def _endpoint(row: dict) -> Endpoint:
    return Endpoint(
        **{**row, "enabled_events": tuple(row["enabled_events"]), "status": EndpointStatus(row["status"])}
    )


# -- endpoints: the merchant's default one (/webhooks/config)


def get_endpoint(tx: Transaction, merchant_id: str) -> Endpoint | None:
    """Load a merchant's default endpoint."""
    tx.cursor.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints WHERE merchant_id = %s AND is_default",  # noqa: S608
        (merchant_id,),
    )
    row = tx.cursor.fetchone()
    return _endpoint(row) if row else None


def insert_endpoint(tx: Transaction, endpoint_id: str, merchant_id: str, secret: str) -> None:
    """Create a merchant's default endpoint (no URL) unless it already has one."""
    tx.cursor.execute(
        "INSERT INTO webhooks.endpoints (id, merchant_id, secret, is_default) VALUES (%s, %s, %s, true) "
        "ON CONFLICT (merchant_id) WHERE is_default DO NOTHING",
        (endpoint_id, merchant_id, secret),
    )


def set_endpoint_url(tx: Transaction, merchant_id: str, url: str | None, body_format: str | None = None) -> Endpoint:
    """Change the URL (and, if given, the body format) of a merchant's default endpoint."""
    tx.cursor.execute(
        f"UPDATE webhooks.endpoints SET url = %s, format = coalesce(%s, format), {_HEALTHY}, status = 'enabled', "  # noqa: S608
        "disabled_reason = NULL, updated_at = now() "
        f"WHERE merchant_id = %s AND is_default RETURNING {_ENDPOINT_COLUMNS}",
        (url, body_format, merchant_id),
    )
    return _endpoint(tx.cursor.fetchone())


def set_endpoint_secret(tx: Transaction, merchant_id: str, secret: str) -> Endpoint:
    """Replace the signing secret of a merchant's default endpoint."""
    tx.cursor.execute(
        f"UPDATE webhooks.endpoints SET secret = %s, updated_at = now() WHERE merchant_id = %s AND is_default "  # noqa: S608
        f"RETURNING {_ENDPOINT_COLUMNS}",
        (secret, merchant_id),
    )
    return _endpoint(tx.cursor.fetchone())


# -- endpoints: every one (/webhook-endpoints)


def lock_merchant_endpoints(tx: Transaction, merchant_id: str) -> None:
    """Serialise changes to one merchant's set of endpoints until the transaction ends (the 16 cap)."""
    tx.cursor.execute("SELECT pg_advisory_xact_lock(hashtext('webhooks.endpoints:' || %s))", (merchant_id,))


def count_endpoints(tx: Transaction, merchant_id: str) -> int:
    """Count a merchant's endpoints with a URL."""
    tx.cursor.execute(
        "SELECT count(*) AS n FROM webhooks.endpoints WHERE merchant_id = %s AND deleted_at IS NULL AND url IS NOT NULL",
        (merchant_id,),
    )
    return int(tx.cursor.fetchone()["n"])


def create_endpoint(
    tx: Transaction, endpoint_id: str, merchant_id: str, url: str, enabled_events: list[str],
    description: str | None, secret: str, body_format: str,
) -> Endpoint:
    """Insert an endpoint made through /webhook-endpoints."""
    tx.cursor.execute(
        "INSERT INTO webhooks.endpoints (id, merchant_id, url, enabled_events, description, secret, format) "  # noqa: S608
        f"VALUES (%s, %s, %s, %b::text[], %s, %s, %s) RETURNING {_ENDPOINT_COLUMNS}",
        (endpoint_id, merchant_id, url, list(enabled_events), description, secret, body_format),
    )
    return _endpoint(tx.cursor.fetchone())


def list_endpoints(tx: Transaction, merchant_id: str) -> list[Endpoint]:
    """Return a merchant's endpoints that have a URL, oldest first."""
    tx.cursor.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints "  # noqa: S608
        "WHERE merchant_id = %s AND deleted_at IS NULL AND url IS NOT NULL ORDER BY created_at, id",
        (merchant_id,),
    )
    return [_endpoint(row) for row in tx.cursor.fetchall()]


def find_endpoint(tx: Transaction, merchant_id: str, endpoint_id: str, *, for_update: bool = False) -> Endpoint | None:
    """Load one of a merchant's endpoints that has a URL."""
    tx.cursor.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints "  # noqa: S608
        "WHERE id = %s AND merchant_id = %s AND deleted_at IS NULL AND url IS NOT NULL"
        + (" FOR UPDATE" if for_update else ""),
        (endpoint_id, merchant_id),
    )
    row = tx.cursor.fetchone()
    return _endpoint(row) if row else None


def update_endpoint(tx: Transaction, endpoint_id: str, changes: dict) -> Endpoint:
    """Apply ``changes`` (``url``, ``enabled_events``, ``description``, ``status``, ``disabled_reason``, ``format``)."""
    given = {key: key in changes for key in ("url", "enabled_events", "description", "status", "disabled_reason")}
    tx.cursor.execute(
        "UPDATE webhooks.endpoints SET "  # noqa: S608
        "  url = CASE WHEN %(set_url)s THEN %(url)s ELSE url END,"
        "  enabled_events = CASE WHEN %(set_events)s THEN %(events)b::text[] ELSE enabled_events END,"
        "  description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,"
        "  status = CASE WHEN %(set_status)s THEN %(status)s ELSE status END,"
        "  disabled_reason = CASE WHEN %(set_status)s OR %(set_reason)s THEN %(reason)s ELSE disabled_reason END,"
        "  format = coalesce(%(format)s, format),"
        # A new URL, or an endpoint enabled again, starts with a clean record.
        "  consecutive_failures = CASE WHEN %(set_url)s OR (%(set_status)s AND %(status)s = 'enabled') THEN 0 ELSE consecutive_failures END,"
        "  failing_since = CASE WHEN %(set_url)s OR (%(set_status)s AND %(status)s = 'enabled') THEN NULL ELSE failing_since END,"
        "  circuit_open_until = CASE WHEN %(set_url)s OR (%(set_status)s AND %(status)s = 'enabled') THEN NULL ELSE circuit_open_until END,"
        "  updated_at = now() "
        f"WHERE id = %(id)s RETURNING {_ENDPOINT_COLUMNS}",
        {
            "id": endpoint_id,
            "set_url": given["url"], "url": changes.get("url"),
            "set_events": given["enabled_events"], "events": list(changes.get("enabled_events") or ["*"]),
            "set_description": given["description"], "description": changes.get("description"),
            "set_status": given["status"], "status": str(changes.get("status", "enabled")),
            "set_reason": given["disabled_reason"], "reason": changes.get("disabled_reason"),
            "format": changes.get("format"),
        },
    )
    return _endpoint(tx.cursor.fetchone())


def delete_endpoint(tx: Transaction, endpoint_id: str) -> None:
    """Delete an endpoint (its deliveries stay in the log); a default one only loses its URL."""
    tx.cursor.execute(
        "UPDATE webhooks.endpoints SET url = CASE WHEN is_default THEN NULL ELSE url END,"
        "  deleted_at = CASE WHEN is_default THEN NULL ELSE now() END, updated_at = now() WHERE id = %s",
        (endpoint_id,),
    )


def rotate_endpoint_secret(tx: Transaction, endpoint_id: str, secret: str, expire_previous_in: int) -> Endpoint:
    """Sign with ``secret`` from now on, and with the current one too for ``expire_previous_in`` seconds."""
    tx.cursor.execute(
        "UPDATE webhooks.endpoints SET"  # noqa: S608
        "  previous_secret = CASE WHEN %(keep)s > 0 THEN secret END,"
        "  previous_secret_expires_at = CASE WHEN %(keep)s > 0 THEN now() + %(keep)s * interval '1 second' END,"
        f"  secret = %(secret)s, updated_at = now() WHERE id = %(id)s RETURNING {_ENDPOINT_COLUMNS}",
        {"id": endpoint_id, "secret": secret, "keep": expire_previous_in},
    )
    return _endpoint(tx.cursor.fetchone())


def endpoints_for(tx: Transaction, merchant_ids: list[str]) -> dict[str, list[Endpoint]]:
    """Return these merchants' endpoints that have a URL (enabled or not), by merchant id."""
    tx.cursor.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhooks.endpoints "  # noqa: S608
        "WHERE merchant_id = ANY(%b::uuid[]) AND url IS NOT NULL AND deleted_at IS NULL ORDER BY id",
        (merchant_ids,),
    )
    found: dict[str, list[Endpoint]] = {}
    for row in tx.cursor.fetchall():
        found.setdefault(row["merchant_id"], []).append(_endpoint(row))
    return found


def record_endpoint_outcomes(
    tx: Transaction, outcomes: dict[str, tuple[bool, int]], circuit_threshold: int, probe_seconds: float,
    disable_after_seconds: float, disable_min_failures: int,
) -> tuple[list[Endpoint], list[str]]:
    """Count each endpoint's attempts (``{endpoint_id: (any_success, failures)}``): a success closes its
    circuit, failures add up and open it. Return the endpoints this disabled for failing, and the
    endpoints whose held deliveries should now be released (closed, or disabled, with some held).

    Failing since, probes and the disabling are on the merchant's clock (``auth.merchant_now``)."""
    if not outcomes:
        return [], []
    ids = sorted(outcomes)
    tx.cursor.execute(
        "UPDATE webhooks.endpoints e SET"
        "  consecutive_failures = CASE WHEN v.ok THEN 0 ELSE e.consecutive_failures + v.failures END,"
        "  failing_since = CASE WHEN v.ok THEN NULL ELSE coalesce(e.failing_since, auth.merchant_now(e.merchant_id)) END,"
        "  circuit_open_until = CASE WHEN v.ok THEN NULL"
        "    WHEN e.consecutive_failures + v.failures >= %(threshold)s"
        "      THEN greatest(e.circuit_open_until, auth.merchant_now(e.merchant_id) + %(probe)s::float8 * interval '1 second')"
        "    ELSE e.circuit_open_until END "
        "FROM unnest(%(ids)b::text[], %(ok)b::bool[], %(failures)b::int[]) AS v (id, ok, failures) "
        "WHERE e.id = v.id AND e.deleted_at IS NULL "
        "RETURNING e.id, v.ok, NOT v.ok AND e.status = 'enabled' AND e.consecutive_failures >= %(min)s"
        "  AND e.failing_since <= auth.merchant_now(e.merchant_id) - %(after)s::float8 * interval '1 second' AS failing,"
        # A plain read of deliveries_held_idx (empty while no circuit is open), no lock taken.
        "  EXISTS (SELECT 1 FROM webhooks.deliveries d WHERE d.endpoint_id = e.id AND d.held) AS holding",
        {"ids": ids, "ok": [outcomes[i][0] for i in ids], "failures": [outcomes[i][1] for i in ids],
         "threshold": circuit_threshold, "probe": probe_seconds, "min": disable_min_failures,
         "after": disable_after_seconds},
    )
    rows = tx.cursor.fetchall()
    release = sorted(row["id"] for row in rows if row["holding"] and (row["ok"] or row["failing"]))
    failing = sorted(row["id"] for row in rows if row["failing"])
    if not failing:
        return [], release
    tx.cursor.execute(
        "UPDATE webhooks.endpoints SET status = 'disabled', disabled_reason = 'failing', circuit_open_until = NULL,"  # noqa: S608
        f"  updated_at = now() WHERE id = ANY(%s) AND status = 'enabled' RETURNING {_ENDPOINT_COLUMNS}",
        (failing,),
    )
    return [_endpoint(row) for row in tx.cursor.fetchall()], release


def allow_probe(tx: Transaction, endpoint_ids: list[str]) -> None:
    """Let the next attempt to these endpoints through their open circuits now (a merchant asked)."""
    if endpoint_ids:
        tx.cursor.execute(
            "UPDATE webhooks.endpoints SET circuit_open_until = NULL WHERE id = ANY(%s) AND circuit_open_until IS NOT NULL",
            (sorted(set(endpoint_ids)),),
        )
