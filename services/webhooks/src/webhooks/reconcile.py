"""Pick up published events whose ``webhooks.handle_events`` task never arrived.

The shared ``gateway_common.reconcile.Reconciler`` reads the payments and refunds event views
forward and hands every published event not in ``webhooks.received_events`` to the same
``service.handle_events`` as the task; the ids it handed over are recorded as received (a
malformed payload, which handle_events skips, would otherwise come back in every new process).
"""

from __future__ import annotations

from gateway_common import reconcile
from gateway_common.db import Database
from gateway_common.reconcile import ReconcileConfig, Source

from webhooks import repository, service
from webhooks.config import WebhookConfig
from webhooks.service import Dispatch, Notify

SOURCES = (
    Source("payments.payment_events", repository.NOT_RECEIVED),
    Source("refunds.refund_events", repository.NOT_RECEIVED),
)
# Events younger than an hour are looked at; received_events rows older than two can no longer matter.
MAX_AGE_SECONDS = 3600.0
KEEP_RECEIVED_SECONDS = 7200.0


class Reconciler:
    """One step handles a batch of missed events from every source; returns how many it handled."""

    def __init__(
        self, db: Database, cfg: WebhookConfig, dispatch: Dispatch, rc: ReconcileConfig | None = None,
        notify: Notify | None = None,
    ) -> None:
        self.db = db
        self.cfg = cfg
        self.dispatch = dispatch
        self.notify = notify
        self.events = reconcile.Reconciler(db, list(SOURCES), self._handle, rc or ReconcileConfig(max_age_seconds=MAX_AGE_SECONDS))

    def step(self) -> int:
        """Handle missed events; 0 means there was nothing to do."""
        handled = self.events.step()
        with self.db.transaction() as tx:
            repository.prune_received(tx, KEEP_RECEIVED_SECONDS)
        return handled

    def _handle(self, found: list[tuple[str, dict]]) -> None:
        service.handle_events(self.db, self.cfg, [payload for _, payload in found], self.dispatch, self.notify)
        with self.db.transaction() as tx:
            repository.record_received(tx, [event_id for event_id, _ in found])
