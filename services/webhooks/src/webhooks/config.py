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
    # Concurrent attempts to one host per worker process (``WEBHOOK_PER_HOST``).
    per_host: int = 16

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookConfig:
        """Read the webhooks settings (``WEBHOOK_ALLOW_PRIVATE``, ``WEBHOOK_LEASE_SECONDS``)."""
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
        )
