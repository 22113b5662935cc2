"""Settings of the webhooks service beyond the shared ones."""

from __future__ import annotations

from dataclasses import dataclass

from gateway_common.config import Settings, env_bool, env_int

from webhooks.models import RETRY_INTERVALS, TEST_RETRY_INTERVALS


@dataclass(frozen=True)
class WebhookConfig:
    """How deliveries are scheduled and where they may go."""

    allow_private: bool
    intervals: tuple[int, ...]
    lease_seconds: float = 60.0
    sweep_interval: float = 0.2
    sweep_batch: int = 200
    # Concurrent HTTP attempts per worker process (``WEBHOOK_SENDERS``).
    senders: int = 64
    # Concurrent attempts to one endpoint per worker process (``WEBHOOK_PER_HOST``), so a dead
    # endpoint holds at most this many senders while the others serve everyone else.
    per_host: int = 16
    # The circuit opens after this many consecutive failed attempts; then one probe per interval.
    circuit_threshold: int = 5
    probe_seconds: float = 60.0
    # Its other held-back deliveries wait this long (or until the circuit closes, or the endpoint
    # changes) instead of coming due again at every probe.
    hold_seconds: float = 3600.0
    # Disabled (reason "failing") after failing this long with at least this many failures in a row.
    disable_after_seconds: float = 3 * 86400.0
    disable_min_failures: int = 10
    # Finished deliveries (success, failed, disabled) are pruned this many days after they were made.
    delivery_retention_days: int = 30
    # A disabled endpoint keeps at most this many of its newest ``disabled`` deliveries, so a dead
    # endpoint's rows stop growing with its merchant's traffic.
    disabled_deliveries_kept: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookConfig:
        """Read the webhooks settings (``WEBHOOK_*``, see the service's README)."""
        return cls(
            # Only an explicit setting opens loopback/private destinations; TEST_MODE alone does
            # not, so a deployment that runs in test mode still cannot be aimed at internal hosts.
            allow_private=env_bool("WEBHOOK_ALLOW_PRIVATE", False),
            intervals=TEST_RETRY_INTERVALS if settings.webhook_retry_intervals_test else RETRY_INTERVALS,
            # An attempt holds its lease for the HTTP timeout plus margin; a killed worker's
            # claim comes back to the sweeper when the lease runs out.
            lease_seconds=float(max(env_int("WEBHOOK_LEASE_SECONDS", 60), 10)),
            senders=max(env_int("WEBHOOK_SENDERS", 64), 1),
            per_host=max(env_int("WEBHOOK_PER_HOST", 16), 1),
            probe_seconds=5.0 if settings.webhook_retry_intervals_test else 60.0,
            hold_seconds=300.0 if settings.webhook_retry_intervals_test else 3600.0,
            disable_after_seconds=60.0 if settings.webhook_retry_intervals_test else 3 * 86400.0,
            delivery_retention_days=max(env_int("WEBHOOK_DELIVERY_RETENTION_DAYS", 30), 1),
            disabled_deliveries_kept=max(env_int("WEBHOOK_DISABLED_DELIVERIES_KEPT", 10_000), 100),
        )
