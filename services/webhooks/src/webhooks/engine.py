"""In-process delivery pipeline of a worker: batched DB work around concurrent HTTP attempts.

    claims --(starter: one transaction per batch)--> jobs --(N sender threads)--> results
           --(recorder: one transaction per batch)--> PostgreSQL

Every attempt is one HTTP POST on a sender thread; up to ``per_host`` attempts to the same
endpoint run at once (a merchant's deliveries do not wait behind each other, yet one endpoint is
not flooded with connections, and a slow or dead endpoint holds at most ``per_host`` senders,
each for at most the attempt's 5 s deadline, while the others serve everyone else). The lease takeover and the outcomes are written for many
deliveries per round trip. Nothing here is durable: a claim lost with the process comes back
to the sweeper when its lease runs out.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from gateway_common.db import Database
from prometheus_client import Counter

from webhooks import sender, service
from webhooks.config import WebhookConfig
from webhooks.models import AttemptResult, Claim, Job

log = logging.getLogger(__name__)

BATCH = 200

ATTEMPTS = Counter("gateway_webhook_attempts", "Webhook delivery attempts by outcome: delivered (2xx), http_error (another "
                   "status), timeout, connection_error, refused (destination not allowed) or other.", ["outcome"])
OUTCOMES = ("delivered", "http_error", "timeout", "connection_error", "refused", "other")
for _outcome in OUTCOMES:
    ATTEMPTS.labels(_outcome)  # every outcome is reported, at 0 until it happens


def attempt_outcome(result: AttemptResult) -> str:
    """Name an attempt's outcome for ``gateway_webhook_attempts_total`` (from the sender's result and error texts)."""
    if result.ok:
        return "delivered"
    if result.response_code:
        return "http_error"
    error = result.error or ""
    if error.startswith("timed out"):
        return "timeout"
    if error.startswith("connection failed"):
        return "connection_error"
    if error == sender.NOT_ALLOWED:
        return "refused"
    return "other"


def _drain(source: queue.SimpleQueue, first: object, limit: int) -> list:
    items = [first]
    while len(items) < limit:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            break
    return items


class DeliveryEngine:
    """Attempts claimed deliveries in this process; ``submit`` is a ``service.Dispatch``."""

    def __init__(self, db: Database, cfg: WebhookConfig, session: object, *, senders: int = 64,
                 per_host: int = 16, max_in_flight: int = 1000) -> None:
        self.db = db
        self.cfg = cfg
        self.session = session
        self.per_host = per_host
        self.max_in_flight = max_in_flight
        # A job still waiting for its host this long after its lease was taken is dropped: the
        # sweeper gives it to someone else once the lease runs out, and no attempt may outlive it.
        self.max_wait = max(cfg.lease_seconds - sender.TIMEOUT_SECONDS - 2.0, 1.0)
        self._hosts: dict[str, int] = {}
        self._waiting: dict[str, collections.deque[tuple[Job, float]]] = {}
        self._claims: queue.SimpleQueue[Claim] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[tuple[Job, AttemptResult]] = queue.SimpleQueue()
        self._senders = ThreadPoolExecutor(senders, thread_name_prefix="webhook-sender")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._stop = threading.Event()
        for target, name in ((self._start_loop, "webhook-starter"), (self._record_loop, "webhook-recorder")):
            threading.Thread(target=target, name=name, daemon=True).start()

    # -- public

    def submit(self, claims: list[Claim]) -> None:
        """Queue claimed deliveries for an attempt (returns at once)."""
        self._add(len(claims))
        for claim in claims:
            self._claims.put(claim)

    def capacity(self) -> int:
        """How many more claims the sweeper should hand over now."""
        with self._lock:
            return max(0, self.max_in_flight - self._in_flight)

    def in_flight(self) -> int:
        """Claims submitted whose outcome is not recorded yet."""
        with self._lock:
            return self._in_flight

    def drain(self, timeout: float) -> bool:
        """Wait (on shutdown) until every submitted claim has its outcome recorded; False on timeout.

        What is left when it gives up comes back to the sweeper when its lease runs out.
        """
        deadline = time.monotonic() + timeout
        while self.in_flight() and time.monotonic() < deadline:
            self._stop.wait(0.05)
        return not self.in_flight()

    # -- pipeline

    def _add(self, n: int) -> None:
        with self._lock:
            self._in_flight += n

    def _start_loop(self) -> None:
        while not self._stop.is_set():
            batch = _drain(self._claims, self._claims.get(), BATCH)
            try:
                jobs = service.start_attempts(self.db, self.cfg, batch)
            except Exception:
                # Their leases run out and the sweeper claims them again.
                log.warning("could not start %d deliveries; the sweeper retries them", len(batch), exc_info=True)
                jobs = []
            self._add(len(jobs) - len(batch))
            started = time.monotonic()
            for job in jobs:
                self._schedule(job, started)

    def _schedule(self, job: Job, started: float) -> None:
        host = job.endpoint_id  # the in-flight cap is per endpoint (two merchants may share a host)
        with self._lock:
            if self._hosts.get(host, 0) < self.per_host:
                self._hosts[host] = self._hosts.get(host, 0) + 1
            else:
                self._waiting.setdefault(host, collections.deque()).append((job, started))
                return
        self._senders.submit(self._attempt, host, job, started)

    def _next_for(self, host: str) -> tuple[Job, float] | None:
        with self._lock:
            waiting = self._waiting.get(host)
            if waiting:
                return waiting.popleft()
            self._waiting.pop(host, None)
            self._hosts[host] -= 1
            if not self._hosts[host]:
                del self._hosts[host]
            return None

    def _attempt(self, host: str, job: Job, started: float) -> None:
        # Keeps this host's slot and goes on with its next waiting job, if any.
        current: tuple[Job, float] | None = (job, started)
        while current is not None:
            job, started = current
            if time.monotonic() - started > self.max_wait:
                log.warning("delivery %s waited too long for %s; left to the sweeper", job.delivery_id, host)
                self._add(-1)
            else:
                try:
                    result = service.attempt(self.session, job)
                except Exception as exc:  # a bug in one attempt must not lose the others' outcomes
                    log.exception("attempt of %s failed unexpectedly", job.delivery_id)
                    result = AttemptResult(ok=False, error=f"internal error: {type(exc).__name__}")
                ATTEMPTS.labels(attempt_outcome(result)).inc()
                self._results.put((job, result))
            current = self._next_for(host)

    def _record_loop(self) -> None:
        while not self._stop.is_set():
            batch = _drain(self._results, self._results.get(), BATCH)
            for attempt in range(3):
                try:
                    service.record_attempts(self.db, self.cfg, batch)
                    break
                except Exception:
                    log.warning("could not record %d attempts (try %d)", len(batch), attempt + 1, exc_info=True)
                    self._stop.wait(0.5 * (attempt + 1))
            self._add(-len(batch))

