"""Prometheus metrics: request durations of the API services, scrape-time gauges of the workers.

An API service answers ``GET /metrics`` on its own port (not through the gateway: nginx routes only
``/api/v1``, ``/razorpay/v1`` and ``/health`` to the services, and a ``/metrics`` request that
carries the gateway's secret is refused). Under gunicorn every worker process writes its samples to
prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, prepared by
``gateway_common.serving.multiprocess_metrics`` in each gunicorn.conf.py) and ``/metrics`` adds them
up. A Celery worker is one process: it serves its metrics on a port of its own
(``<SERVICE>_WORKER_METRICS_BIND``); what it reports about the database and the broker is read when
Prometheus scrapes, so nothing is counted on the way of a payment. docs/metrics.md lists the names.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# No "<counter>_created" series beside each counter (the multiprocess mode has none either).
disable_created_metrics()

# Where the route template of a request is left for the middleware (set by the app or a fast path).
ROUTE_KEY = "gateway.route"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
METRICS_PATH = "/metrics"
# nginx sets X-Gateway-Secret on every request it passes on: one carrying it came from outside.
_FROM_GATEWAY = "HTTP_X_GATEWAY_SECRET"

# Most answers take a few milliseconds; the top buckets catch database waits and timeouts.
REQUEST_DURATION = Histogram(
    "gateway_http_request_duration_seconds",
    "Time from a request reaching the service's WSGI app to its answer, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

@functools.lru_cache(maxsize=512)
def route_label(rule: str) -> str:
    """A Flask rule as a route label, without converters: ``/payments/<string:payment_id>`` -> ``/payments/<payment_id>``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"<\1>", rule)


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict, StartResponse], Iterable[bytes]]


def exposition() -> bytes:
    """Return every metric of this process, or of all the workers of its gunicorn (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _answer(start_response: StartResponse, status: str, content_type: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class RequestMetrics:
    """WSGI middleware: time every request by method, route template and status; answer ``/metrics``.

    ``wsgi_app()`` gives the app's current WSGI callable on every request, so a fast path installed
    in front of Flask's later is timed too. The route template comes from ``environ[ROUTE_KEY]``
    (``unmatched`` when nothing set it: a 404 for an unknown path must not make a label of it).
    Children of the histogram are kept by label values, so a request costs a dict lookup and two
    writes to the (memory-mapped, in multiprocess mode) samples.
    """

    def __init__(self, wsgi_app: Callable[[], WsgiApp]) -> None:
        self.wsgi_app = wsgi_app
        self._children: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH:
            return self.serve(environ, start_response)
        started = time.perf_counter()
        status = "500"

        def keep_status(line: str, headers: list, exc_info: Any = None) -> Any:
            nonlocal status
            status = line[:3]
            return start_response(line, headers, exc_info)

        try:
            return self.wsgi_app()(environ, keep_status)
        finally:
            method = environ.get("REQUEST_METHOD", "")
            key = (method if method in METHODS else "other", environ.get(ROUTE_KEY) or UNMATCHED, status)
            child = self._children.get(key)
            if child is None:
                with self._lock:
                    child = self._children.setdefault(key, REQUEST_DURATION.labels(*key))
            child.observe(time.perf_counter() - started)

    def serve(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        """Answer ``GET /metrics``; refuse it when it came through the gateway (it is internal)."""
        if environ.get(_FROM_GATEWAY):
            return _answer(start_response, "404 NOT FOUND", "application/json",
                           b'{"error":{"code":"NOT_FOUND_ERROR","description":"The requested URL was not found"}}\n')
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, "405 METHOD NOT ALLOWED", "application/json",
                           b'{"error":{"code":"BAD_REQUEST_ERROR","description":"Method not allowed"}}\n')
        return _answer(start_response, "200 OK", CONTENT_TYPE_LATEST, exposition())


# ---------------------------------------------------------------- scrape-time gauges (workers)


@dataclass(frozen=True)
class Gauge:
    """A gauge read when Prometheus scrapes: ``read()`` returns one value, or values by label tuple."""

    name: str
    documentation: str
    read: Callable[[], float | dict[tuple[str, ...], float]]
    labels: tuple[str, ...] = ()


class ScrapeGauges(Collector):
    """Reports ``Gauge``s by calling them at each scrape; one that fails is left out and logged."""

    def __init__(self, gauges: list[Gauge]) -> None:
        self.gauges = gauges

    def describe(self) -> list:
        """Nothing up front: the registry must not call the readers when this collector is registered."""
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read every gauge now."""
        for gauge in self.gauges:
            try:
                value = gauge.read()
            except Exception as exc:
                # Absent rather than a stale or made-up number; the log says why.
                log.warning("metric %s not read: %s: %s", gauge.name, type(exc).__name__, exc)
                continue
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels or None)
            if isinstance(value, dict):
                for labels, number in sorted(value.items()):
                    family.add_metric(list(labels), float(number))
            else:
                family.add_metric([], float(value))
            yield family


def parse_bind(bind: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:9100`` too); a bare port listens on every address."""
    host, sep, port = bind.rpartition(":")
    if not sep:
        return "0.0.0.0", int(port)  # noqa: S104 - a bare port means every address, as gunicorn reads it
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104


class MetricsServer:
    """A worker's metrics listener and its scrape-time gauges; ``close`` takes both away."""

    def __init__(self, server: Any, registry: CollectorRegistry, collector: Collector) -> None:
        self.server = server
        self.registry = registry
        self.collector = collector

    def close(self) -> None:
        """Stop listening and unregister the gauges."""
        self.server.shutdown()
        self.server.server_close()
        self.registry.unregister(self.collector)


def serve_worker_metrics(bind: str, gauges: list[Gauge], registry: CollectorRegistry = REGISTRY) -> MetricsServer | None:
    """Serve ``registry`` (with ``gauges`` added) on ``bind`` in a thread; None, logged, if the port is taken."""
    from prometheus_client import start_http_server

    host, port = parse_bind(bind)
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        # Deliveries and payments matter more than their numbers: the worker runs on without them.
        log.error("metrics not served on %s: %s (is another process on that port? each worker needs its own "
                  "*_WORKER_METRICS_BIND)", bind, exc)
        return None
    collector = ScrapeGauges(gauges)
    registry.register(collector)
    log.info("metrics on http://%s/metrics", bind)
    return MetricsServer(server, registry, collector)
