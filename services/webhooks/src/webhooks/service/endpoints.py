"""Webhook endpoint use cases: the default endpoint (/webhooks/config), /webhook-endpoints CRUD,
secrets and rotation, replay."""

from __future__ import annotations

import logging
import secrets
import string
from datetime import datetime

from gateway_common import signing
from gateway_common.db import Database, Transaction, describe_db_error, retry_on_conflict
from gateway_common.errors import ServiceUnavailableError, TransactionConflictError
from gateway_common.ids import new_id

from webhooks import repository
from webhooks.config import WebhookConfig
from webhooks.destinations import check_webhook_url
from webhooks.errors import (
    DefaultEndpointSecretError,
    EndpointDisabledError,
    EndpointNotFoundError,
    TooManyEndpointsError,
)
from webhooks.models import MAX_ENDPOINTS, TEST_MERCHANT_ID, TEST_WEBHOOK_SECRET, BodyFormat, Endpoint, EndpointStatus
from webhooks.service._fanout import Dispatch, _redeliver, nudge

# Events one replay call delivers again at most; a wider window is replayed in several calls.
MAX_REPLAY = 10_000
_SECRET_ALPHABET = string.ascii_letters + string.digits

log = logging.getLogger(__name__)


def new_secret() -> str:
    """Return a fresh webhook signing secret."""
    return "whsec_" + "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(32))


def _endpoint(tx: Transaction, merchant_id: str) -> Endpoint:
    endpoint = repository.get_endpoint(tx, merchant_id)
    if endpoint is None:
        repository.insert_endpoint(tx, new_id("we_"), merchant_id, new_secret())
        endpoint = repository.get_endpoint(tx, merchant_id)
    return endpoint


def get_config(db: Database, merchant_id: str) -> Endpoint:
    """Return the merchant's webhook endpoint, creating it with a fresh secret on first use."""
    with db.transaction() as tx:
        return _endpoint(tx, merchant_id)


def update_config(
    db: Database, cfg: WebhookConfig, merchant_id: str, url: str | None, body_format: str | None = None
) -> Endpoint:
    """Set (or clear, with null or "") the merchant's webhook URL and, if given, its body format."""
    url = url.strip() if url else None
    if url:
        check_webhook_url(url, allow_private=cfg.allow_private)
    with db.transaction() as tx:
        _endpoint(tx, merchant_id)
        return repository.set_endpoint_url(tx, merchant_id, url or None, body_format)


def regenerate_secret(db: Database, merchant_id: str) -> Endpoint:
    """Replace the merchant's signing secret; every later attempt signs with the new one."""
    with db.transaction() as tx:
        _endpoint(tx, merchant_id)
        return repository.set_endpoint_secret(tx, merchant_id, new_secret())


def seed_test_merchant(db: Database) -> bool:
    """Give the documented test merchant its webhook secret if it has no endpoint yet."""
    with db.transaction() as tx:
        if repository.get_endpoint(tx, TEST_MERCHANT_ID) is not None:
            return False
        repository.insert_endpoint(tx, new_id("we_"), TEST_MERCHANT_ID, TEST_WEBHOOK_SECRET)
    return True


def endpoint_resource(endpoint: Endpoint) -> dict:
    """Return an endpoint as events show it (no secret)."""
    return {"id": endpoint.id, "url": endpoint.url, "enabled_events": list(endpoint.enabled_events),
            "description": endpoint.description, "status": str(endpoint.status),
            "disabled_reason": endpoint.disabled_reason}


def _check_events(patterns: list[str]) -> list[str]:
    return sorted(set(patterns), key=patterns.index)


def create_endpoint(
    db: Database, cfg: WebhookConfig, merchant_id: str, url: str, enabled_events: list[str], description: str | None,
    body_format: str = BodyFormat.GATEWAY,
) -> tuple[Endpoint, str]:
    """Add a webhook endpoint with its own Standard Webhooks secret; return it and the secret."""
    url = url.strip()
    check_webhook_url(url, allow_private=cfg.allow_private)
    secret = signing.new_standard_secret()
    with db.transaction() as tx:
        repository.lock_merchant_endpoints(tx, merchant_id)
        if repository.count_endpoints(tx, merchant_id) >= MAX_ENDPOINTS:
            raise TooManyEndpointsError()
        endpoint = repository.create_endpoint(
            tx, new_id("we_"), merchant_id, url, _check_events(enabled_events), description, secret, body_format
        )
    return endpoint, secret


def list_endpoints(db: Database, merchant_id: str) -> list[Endpoint]:
    """Return the merchant's webhook endpoints (the default one too, once it has a URL)."""
    with db.transaction() as tx:
        return repository.list_endpoints(tx, merchant_id)


def _own_endpoint(tx: Transaction, merchant_id: str, endpoint_id: str, *, for_update: bool = False,
                  enabled: bool = False) -> Endpoint:
    endpoint = repository.find_endpoint(tx, merchant_id, endpoint_id, for_update=for_update)
    if endpoint is None:
        raise EndpointNotFoundError()
    if enabled and endpoint.status != EndpointStatus.ENABLED:
        raise EndpointDisabledError()
    return endpoint


def get_endpoint(db: Database, merchant_id: str, endpoint_id: str) -> Endpoint:
    """Return one of the merchant's webhook endpoints, with its secret."""
    with db.transaction() as tx:
        return _own_endpoint(tx, merchant_id, endpoint_id)


def update_endpoint(db: Database, cfg: WebhookConfig, merchant_id: str, endpoint_id: str, changes: dict) -> Endpoint:
    """Change an endpoint's URL, event filter, description or status (a manual enable clears the reason)."""
    changes = dict(changes)
    if "url" in changes:
        changes["url"] = changes["url"].strip()
        check_webhook_url(changes["url"], allow_private=cfg.allow_private)
    if "enabled_events" in changes:
        changes["enabled_events"] = _check_events(changes["enabled_events"])
    if "status" in changes:
        changes["disabled_reason"] = None
    with db.transaction() as tx:
        _own_endpoint(tx, merchant_id, endpoint_id, for_update=True)
        endpoint = repository.update_endpoint(tx, endpoint_id, changes)
    if "url" in changes or "status" in changes:
        # A new URL or an enable starts a clean record; a disable records what is pending as
        # disabled: either way, what an open circuit held back is due now.
        release_held(db, [endpoint_id])
    return endpoint


def delete_endpoint(db: Database, merchant_id: str, endpoint_id: str) -> None:
    """Delete an endpoint; its pending deliveries are recorded as disabled when next due."""
    with db.transaction() as tx:
        repository.lock_merchant_endpoints(tx, merchant_id)
        _own_endpoint(tx, merchant_id, endpoint_id, for_update=True)
        repository.delete_endpoint(tx, endpoint_id)
    release_held(db, [endpoint_id])  # recorded as disabled when next due: now


def rotate_endpoint_secret(db: Database, merchant_id: str, endpoint_id: str, expire_previous_in: int) -> Endpoint:
    """Give an endpoint a new secret; the old one keeps signing too until it expires."""
    with db.transaction() as tx:
        endpoint = _own_endpoint(tx, merchant_id, endpoint_id, for_update=True)
        if endpoint.is_default:
            raise DefaultEndpointSecretError()
        return repository.rotate_endpoint_secret(tx, endpoint_id, signing.new_standard_secret(), expire_previous_in)


def replay_endpoint(
    db: Database, cfg: WebhookConfig, merchant_id: str, endpoint_id: str, *, created_gte: datetime | None,
    created_lte: datetime | None, types: list[str], only_failed: bool, dispatch: Dispatch,
) -> int:
    """Deliver again to one endpoint the merchant's events of a time window (all, or only those that
    failed or were disabled there), within its event filter; return how many."""
    with db.transaction() as tx:
        endpoint = _own_endpoint(tx, merchant_id, endpoint_id, enabled=True)
        events = repository.events_in_window(
            tx, merchant_id, created_gte, created_lte,
            types=[t for t in types if not t.endswith(".*") and t != "*"],
            categories=[t[:-2] for t in types if t.endswith(".*")] if "*" not in types else [],
            failed_for_endpoint=endpoint_id if only_failed else None,
            limit=MAX_REPLAY,
        )
        delivery_ids = _redeliver(tx, endpoint, [e for e in events if endpoint.subscribes_to(e.type)])
    if delivery_ids:
        nudge(db, cfg, dispatch, delivery_ids)
    return len(delivery_ids)


def release_held(db: Database, endpoint_ids: list[str]) -> None:
    """Make the deliveries these endpoints' open circuits held back due now, in a transaction of its own.

    Run after the transaction that locked the endpoints has ended: ``start_attempts`` locks
    deliveries before their endpoint, so locking held deliveries while holding an endpoint could
    deadlock with it. Should it fail, they go when their hold ends (``hold_seconds``), and the log says why.
    """
    if not endpoint_ids:
        return

    def release() -> None:
        with db.transaction() as tx:
            repository.release_held(tx, endpoint_ids)

    try:
        retry_on_conflict(release)
    except (ServiceUnavailableError, TransactionConflictError) as error:
        details = describe_db_error(error)
        log.warning("held deliveries of endpoints %s not released (%s, SQLSTATE %s): %s; they go when their hold ends",
                    ", ".join(endpoint_ids), details["error_class"], details["sqlstate"], details["error"],
                    extra=details)
