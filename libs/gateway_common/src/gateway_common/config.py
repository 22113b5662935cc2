"""Configuration from environment variables with working local defaults."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

from gateway_common.db import Database, PoolSettings

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/payment_gateway"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Published in this repository, so it guards nothing: fine for a local test-mode run only.
DEV_GATEWAY_SECRET = "dev-gateway-secret"  # noqa: S105 - the public development default


class ConfigError(RuntimeError):
    """A setting that makes the process unsafe or unable to run; raised at start-up."""


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("true", "1", "yes" are true)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    """Read an integer environment variable."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return int(raw)


def env_float(name: str, default: float) -> float:
    """Read a number from an environment variable."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return float(raw)


def env_threshold(name: str, default: int | None) -> int | None:
    """Read a count that may be switched off ("off", "none" or empty-after-set mean None)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in {"", "off", "none", "never"}:
        return None
    return int(raw)


def with_user(url: str, user: str, password: str | None) -> str:
    """Return the database URL with its user (and password) replaced."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = user if password is None else f"{user}:{password}"
    netloc += f"@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Settings:
    """Settings shared by every service; each service reads its own extras."""

    service: str
    database_url: str = DEFAULT_DATABASE_URL
    service_database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    test_mode: bool = True
    test_processing_delay_ms: int = 1000
    test_payment_success: bool = True
    webhook_retry_intervals_test: bool = True
    gateway_secret: str = DEV_GATEWAY_SECRET
    # Keys the Idempotency-Key fingerprints; empty means derived from gateway_secret (see __post_init__).
    fingerprint_key: str = ""
    # Fernet key(s) that keep API secrets recoverable at rest; empty means derived from gateway_secret.
    api_secret_key: str = ""
    pubsub_prefix: str = "gw"
    db_pool: PoolSettings = field(default_factory=PoolSettings)
    # The service's Celery worker process, when set apart (``<SERVICE>_WORKER_DB_POOL_MAX``).
    worker_db_pool: PoolSettings | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.fingerprint_key:
            # No public constant to fall back on: a deployment that set only GATEWAY_SECRET still
            # gets a secret key, and a separate one only where FINGERPRINT_KEY is given.
            derived = hmac.new(self.gateway_secret.encode(), b"idempotency-fingerprint-key", hashlib.sha256).hexdigest()
            object.__setattr__(self, "fingerprint_key", derived)
        if not self.api_secret_key:
            from gateway_common.secretbox import derive_key

            object.__setattr__(self, "api_secret_key", derive_key(self.gateway_secret))

    def database(self, application_name: str | None = None, *, extra_connections: int = 0) -> Database:
        """The service's pool as configured (``DB_POOL_*``), ``extra_connections`` above its maximum."""
        pool = replace(self.db_pool, max_size=self.db_pool.max_size + extra_connections)
        return Database(self.service_database_url, pool=pool, application_name=application_name or self.service)

    def worker_database(self, *, loop_connections: int) -> Database:
        """The worker's pool: ``<SERVICE>_WORKER_DB_POOL_MAX`` when set, else the API's plus its loops."""
        if self.worker_db_pool is None:
            return self.database(f"{self.service}-worker", extra_connections=loop_connections)
        return Database(self.service_database_url, pool=self.worker_db_pool, application_name=f"{self.service}-worker")

    @classmethod
    def from_env(cls, service: str) -> Settings:
        """Read the settings of one service from the environment."""
        database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
        role = f"svc_{service}"
        own_url = os.environ.get(f"{service.upper()}_DATABASE_URL") or with_user(
            database_url, role, os.environ.get("DB_ROLE_PASSWORD", "gateway_dev")
        )
        test_mode = env_bool("TEST_MODE", True)
        gateway_secret = os.environ.get("GATEWAY_SECRET", DEV_GATEWAY_SECRET)
        check_gateway_secret(gateway_secret, test_mode=test_mode)
        worker_pool_max = os.environ.get(f"{service.upper()}_WORKER_DB_POOL_MAX")
        return cls(
            service=service,
            database_url=database_url,
            service_database_url=own_url,
            redis_url=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
            test_mode=test_mode,
            test_processing_delay_ms=env_int("TEST_PROCESSING_DELAY", 1000),
            test_payment_success=env_bool("TEST_PAYMENT_SUCCESS", True),
            webhook_retry_intervals_test=env_bool("WEBHOOK_RETRY_INTERVALS_TEST", True),
            gateway_secret=gateway_secret,
            fingerprint_key=os.environ.get("FINGERPRINT_KEY", ""),
            api_secret_key=os.environ.get("API_SECRET_KEY", ""),
            pubsub_prefix=os.environ.get("PUBSUB_PREFIX", "gw"),
            db_pool=pool_from_env(service.upper()),
            worker_db_pool=pool_from_env(f"{service.upper()}_WORKER") if worker_pool_max is not None else None,
        )


def pool_from_env(role: str) -> PoolSettings:
    """A process's pool settings: ``<ROLE>_DB_POOL_MAX`` (e.g. ``PAYMENTS_DB_POOL_MAX``) over ``DB_POOL_MAX``.

    A worker (role ``<SERVICE>_WORKER``) waits up to ``WORKER_DB_POOL_TIMEOUT`` for a connection:
    no client is waiting on it, and a task that gave up would only be retried.
    """
    worker = role.endswith("_WORKER")
    return PoolSettings(
        max_size=env_int(f"{role}_DB_POOL_MAX", env_int("DB_POOL_MAX", 8)),
        min_size=env_int("DB_POOL_MIN", 0),
        max_idle=env_float("DB_POOL_IDLE_SECONDS", 60.0),
        timeout=env_float("WORKER_DB_POOL_TIMEOUT", 30.0) if worker else env_float("DB_POOL_TIMEOUT", 5.0),
        max_lifetime=env_float("DB_POOL_LIFETIME_SECONDS", 30.0),
        prepare_threshold=env_threshold("DB_PREPARE_THRESHOLD", 5),
    )


def check_gateway_secret(secret: str, *, test_mode: bool) -> None:
    """Refuse to start with an empty gateway secret, or the public default outside test mode."""
    if not secret.strip():
        # An empty secret matches a request that sends no X-Gateway-Secret at all.
        raise ConfigError("GATEWAY_SECRET is empty: set it to a long random value (the same for nginx and every service)")
    if not test_mode and secret == DEV_GATEWAY_SECRET:
        raise ConfigError(
            "GATEWAY_SECRET is the public development default while TEST_MODE=false: "
            "set GATEWAY_SECRET to a long random value (the same for nginx and every service)"
        )
