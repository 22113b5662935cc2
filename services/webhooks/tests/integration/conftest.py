"""Fixtures for the webhooks integration tests: the app on a throwaway DB, receivers, the worker's delivery engine."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gateway_common.config import Settings
from gateway_common.db import Database
from webhooks import create_app, sender, service
from webhooks.config import WebhookConfig
from webhooks.engine import DeliveryEngine
from webhooks.models import Claim

ROOT = Path(__file__).resolve().parents[4]
GATEWAY_SECRET = "test-gateway-secret"


def _load_receiver():
    spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "examples" / "webhook_receiver.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["webhook_receiver"] = module
    spec.loader.exec_module(module)
    return module


receiver_module = _load_receiver()


@dataclass
class Collector:
    """A dispatcher that keeps claims so a test decides when the engine gets them."""

    claims: list[Claim] = field(default_factory=list)

    def __call__(self, claims: list[Claim]) -> None:
        self.claims.extend(claims)

    def take(self) -> list[Claim]:
        """Return and forget the collected claims."""
        taken, self.claims = self.claims, []
        return taken


@dataclass
class Harness:
    """Delivery as the worker does it: claims go to a real ``DeliveryEngine``, the one production path."""

    db: Database
    cfg: WebhookConfig
    collector: Collector
    engine: DeliveryEngine

    def deliver(self, claims: list[Claim]) -> list[str | None]:
        """Hand claims to the engine and wait for their outcomes; each delivery's status, None if not attempted."""
        before = self._attempts(claims)
        self.engine.submit(claims)
        assert self.engine.drain(timeout=20), "the engine did not record every outcome within 20 s"
        after = self._rows(claims)
        return [
            after[c.delivery_id]["status"] if after[c.delivery_id]["attempts"] > before[c.delivery_id] else None
            for c in claims
        ]

    def deliver_collected(self) -> list[str | None]:
        """Attempt every collected claim once through the engine."""
        return self.deliver(self.collector.take())

    def sweep(self) -> int:
        """Claim what is due (like the worker's sweeper) into the collector."""
        return service.dispatch_due(self.db, self.cfg, self.collector)

    def force_due(self, delivery_id: str) -> None:
        """Make a scheduled retry due now (instead of waiting for it)."""
        with self.db.transaction() as tx:
            tx.cursor.execute(
                "UPDATE webhooks.deliveries SET next_retry_at = now() WHERE id = %s AND status = 'pending'",
                (delivery_id,),
            )

    def _rows(self, claims: list[Claim]) -> dict[str, dict]:
        with self.db.transaction() as tx:
            tx.cursor.execute(
                "SELECT id, status, attempts FROM webhooks.deliveries WHERE id = ANY(%s)",
                ([c.delivery_id for c in claims],),
            )
            return {row["id"]: row for row in tx.cursor.fetchall()}

    def _attempts(self, claims: list[Claim]) -> dict[str, int]:
        return {delivery_id: row["attempts"] for delivery_id, row in self._rows(claims).items()}


def make_engine(db: Database, cfg: WebhookConfig) -> DeliveryEngine:
    """Return a delivery engine, as the worker builds it, that applies ``cfg``'s destination policy."""
    session = sender.make_session(allow_private=cfg.allow_private, pool_size=4)
    return DeliveryEngine(db, cfg, session, senders=4, per_host=4)


@pytest.fixture(scope="session")
def app(service_env: dict[str, str]):
    app = create_app(Settings.from_env("webhooks"))
    app.extensions["webhook_dispatch"] = Collector()
    return app


@pytest.fixture(scope="session")
def db(app) -> Database:
    return app.extensions["db"]


@pytest.fixture(scope="session")
def engine(app, db) -> DeliveryEngine:
    """The worker's delivery engine on the app's database and config (loopback allowed, as the tests need)."""
    return make_engine(db, app.extensions["webhook_config"])


@pytest.fixture
def harness(app, db, engine) -> Harness:
    collector: Collector = app.extensions["webhook_dispatch"]
    collector.take()
    cfg: WebhookConfig = app.extensions["webhook_config"]
    return Harness(db=db, cfg=cfg, collector=collector, engine=engine)


@pytest.fixture
def harness_for(db) -> Callable[[WebhookConfig], Harness]:
    """Build a harness with its own collector and engine for a config other than the app's."""
    return lambda cfg: Harness(db=db, cfg=cfg, collector=Collector(), engine=make_engine(db, cfg))


@pytest.fixture
def merchant() -> str:
    """A fresh merchant id (the webhooks service keys everything by merchant id)."""
    return str(uuid.uuid4())


@pytest.fixture
def nothing_left_due(db: Database, merchant: str) -> Iterator[None]:
    """After the test, mark its merchant's pending deliveries failed: later tests sweep every due delivery."""
    yield
    with db.transaction() as tx:
        tx.cursor.execute("UPDATE webhooks.deliveries SET status = 'failed', next_retry_at = NULL, lease_token = NULL "
                          "WHERE merchant_id = %s AND status = 'pending'", (merchant,))


def _headers_for(merchant_id: str) -> dict[str, str]:
    return {"X-Gateway-Secret": GATEWAY_SECRET, "X-Merchant-Id": merchant_id}


@pytest.fixture(scope="session")
def headers_for() -> Callable[[str], dict[str, str]]:
    """Build the headers nginx would send after authenticating a merchant."""
    return _headers_for


@pytest.fixture
def receivers() -> Iterator[Callable[..., object]]:
    """Start webhook receivers on 127.0.0.1 (stopped after the test)."""
    started = []

    def start(secret: str, fail_first: int = 0):
        server = receiver_module.serve_in_thread(secret, fail_first=fail_first)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def url_of() -> Callable[[object], str]:
    """Return the webhook URL of a receiver."""
    return lambda server: f"http://127.0.0.1:{server.server_address[1]}/webhook"


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., object]:
    """Poll a predicate until it returns something truthy or a deadline passes."""
    return _wait_for


def _wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
