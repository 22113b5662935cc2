"""The HTTP client: resources, cursor iterators, automatic Idempotency-Keys reused across retries."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx_sse

from paygate.errors import APIConnectionError, error_for

DEFAULT_BASE_URL = "http://localhost:8000/api/v1"
USER_AGENT = "paygate-python/0.1.0"
# Answers worth repeating with the same Idempotency-Key: the first request still in flight (409),
# rate limited (429), or the gateway failed without a final answer (5xx).
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})


@dataclass
class Page:
    """One page of a list; ``auto_paging_iter`` follows the cursor (or offset) through every page."""

    data: list[dict]
    has_more: bool
    _next: Any = field(default=None, repr=False)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def auto_paging_iter(self) -> Iterator[dict]:
        """Yield every item of this page and the ones after it."""
        page: Page | None = self
        while page is not None:
            yield from page.data
            page = page._next() if page.has_more and page._next is not None else None


@dataclass(frozen=True)
class StreamedEvent:
    """One event of the live stream: its id, type and the webhook body exactly as sent (text)."""

    id: str
    type: str
    data: str


class Client:
    """A client of the gateway's API (``/api/v1``).

    Credentials come from the arguments or ``PAYGATE_API_KEY`` / ``PAYGATE_API_SECRET``, the base URL
    from ``base_url`` or ``PAYGATE_BASE_URL``. Every POST carries an Idempotency-Key (yours, or a new
    one) that its automatic retries reuse, so a retried payment is never made twice.
    """

    def __init__(
        self, api_key: str | None = None, api_secret: str | None = None, base_url: str | None = None, *,
        timeout: float = 30.0, max_retries: int = 3, transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_key = api_key or os.environ.get("PAYGATE_API_KEY", "")
        self.api_secret = api_secret or os.environ.get("PAYGATE_API_SECRET", "")
        self.base_url = (base_url or os.environ.get("PAYGATE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"X-Api-Key": self.api_key, "X-Api-Secret": self.api_secret, "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
        )
        self.orders = Orders(self)
        self.payments = Payments(self)
        self.refunds = Refunds(self)
        self.events = Events(self)
        self.webhook_endpoints = WebhookEndpoints(self)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, json: object = None, params: dict | None = None,
        idempotency_key: str | None = None, headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one API request, retrying what is safe to retry; return the decoded answer (None for 204)."""
        sent = dict(headers or {})
        if method.upper() == "POST":
            sent["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        params = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self._http.request(method, path, json=json, params=params, headers=sent)
            except httpx.TransportError as exc:
                if last:
                    raise APIConnectionError(f"could not reach {self.base_url}: {exc}") from exc
                time.sleep(_backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and not last:
                time.sleep(_retry_after(response) or _backoff(attempt))
                continue
            break
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise error_for(response.status_code, body, response.headers.get("X-Request-Id"))
        return response.json() if response.content else None

    def stream(
        self, types: list[str] | None = None, last_event_id: str | None = None, *, reconnect: bool = True,
        read_timeout: float = 45.0,
    ) -> Iterator[StreamedEvent]:
        """Yield the merchant's events live (``GET /events/stream``), resuming after a drop with
        ``Last-Event-ID`` so none is missed."""
        params = {"types": ",".join(types)} if types else {}
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id:
                headers["Last-Event-ID"] = last_event_id
            try:
                timeout = httpx.Timeout(10.0, read=read_timeout)
                with httpx_sse.connect_sse(self._http, "GET", "/events/stream", params=params, headers=headers,
                                           timeout=timeout) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        raise error_for(source.response.status_code, _json_or_none(source.response))
                    failures = 0
                    for sse in source.iter_sse():
                        if not sse.id:
                            continue
                        last_event_id = sse.id
                        yield StreamedEvent(sse.id, sse.event, sse.data)
            except (httpx.TransportError, httpx_sse.SSEError) as exc:
                if not reconnect:
                    raise APIConnectionError(f"the event stream dropped: {exc}") from exc
            if not reconnect:
                return
            failures += 1
            time.sleep(min(_backoff(failures - 1), 5.0))


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _backoff(attempt: int) -> float:
    return min(0.25 * 2**attempt, 8.0) * random.uniform(0.75, 1.25)  # noqa: S311 - jitter


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers.get("Retry-After", "")), 30.0)
    except ValueError:
        return None


class _Resource:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _offset_page(self, path: str, limit: int, offset: int, **params: object) -> Page:
        body = self._client.request("GET", path, params={"limit": limit, "offset": offset, **params})
        data = body["data"]
        more = offset + len(data) < body.get("total", 0)
        return Page(data, more, lambda: self._offset_page(path, limit, offset + len(data), **params))


class Orders(_Resource):
    def create(self, amount: int, currency: str = "INR", receipt: str | None = None, notes: dict | None = None,
               *, idempotency_key: str | None = None) -> dict:
        """Create an order."""
        body = {"amount": amount, "currency": currency} | ({"receipt": receipt} if receipt else {}) | (
            {"notes": notes} if notes else {})
        return self._client.request("POST", "/orders", json=body, idempotency_key=idempotency_key)

    def retrieve(self, order_id: str) -> dict:
        """Return one order."""
        return self._client.request("GET", f"/orders/{order_id}")

    def list(self, limit: int = 10, offset: int = 0) -> Page:
        """Return a page of orders, newest first."""
        return self._offset_page("/orders", limit, offset)


class Payments(_Resource):
    def create(self, *, idempotency_key: str | None = None, test_outcome: str | None = None, **body: object) -> dict:
        """Create a payment (``order_id``, ``method`` and ``vpa`` or ``card``); it is decided asynchronously."""
        headers = {"X-Test-Outcome": test_outcome} if test_outcome else None
        return self._client.request("POST", "/payments", json=body, idempotency_key=idempotency_key, headers=headers)

    def retrieve(self, payment_id: str) -> dict:
        """Return one payment."""
        return self._client.request("GET", f"/payments/{payment_id}")

    def capture(self, payment_id: str, amount: int | None = None, *, idempotency_key: str | None = None) -> dict:
        """Capture a successful payment."""
        body = {"amount": amount} if amount is not None else {}
        return self._client.request("POST", f"/payments/{payment_id}/capture", json=body, idempotency_key=idempotency_key)

    def list(self, limit: int = 10, offset: int = 0, status: str | None = None) -> Page:
        """Return a page of payments, newest first."""
        return self._offset_page("/payments", limit, offset, status=status)

    def wait(self, payment_id: str, timeout: float = 60.0) -> dict:
        """Poll a payment until it is final (``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        while True:
            payment = self.retrieve(payment_id)
            if payment["status"] in ("success", "failed") or time.monotonic() > deadline:
                return payment
            time.sleep(0.25)


class Refunds(_Resource):
    def create(self, payment_id: str, amount: int, reason: str | None = None, *,
               idempotency_key: str | None = None) -> dict:
        """Refund part or all of a successful payment."""
        body = {"amount": amount} | ({"reason": reason} if reason else {})
        return self._client.request("POST", f"/payments/{payment_id}/refunds", json=body, idempotency_key=idempotency_key)

    def retrieve(self, refund_id: str) -> dict:
        """Return one refund."""
        return self._client.request("GET", f"/refunds/{refund_id}")

    def list(self, limit: int = 10, offset: int = 0) -> Page:
        """Return a page of refunds, newest first."""
        return self._offset_page("/refunds", limit, offset)


class Events(_Resource):
    def list(self, type: str | None = None, *, created_gte: str | None = None, created_lte: str | None = None,
             limit: int = 20, starting_after: str | None = None, ending_before: str | None = None) -> Page:
        """Return a page of events, newest first; ``auto_paging_iter`` follows ``starting_after``."""
        params = {"type": type, "created_gte": created_gte, "created_lte": created_lte, "limit": limit,
                  "starting_after": starting_after, "ending_before": ending_before}
        body = self._client.request("GET", "/events", params=params)
        data = body["data"]

        def older() -> Page:
            return self.list(type, created_gte=created_gte, created_lte=created_lte, limit=limit,
                             starting_after=data[-1]["id"])

        return Page(data, body["has_more"] and bool(data), older)

    def retrieve(self, event_id: str) -> dict:
        """Return one event with its deliveries per endpoint."""
        return self._client.request("GET", f"/events/{event_id}")

    def resend(self, event_id: str, endpoint_id: str | None = None) -> dict:
        """Deliver an event again (to one endpoint, or every enabled endpoint subscribed to it)."""
        body = {"endpoint_id": endpoint_id} if endpoint_id else {}
        return self._client.request("POST", f"/events/{event_id}/resend", json=body)

    def stream(self, types: list[str] | None = None, last_event_id: str | None = None) -> Iterator[StreamedEvent]:
        """Yield events as they happen, reconnecting (with ``Last-Event-ID``) after a drop."""
        return self._client.stream(types, last_event_id)


class WebhookEndpoints(_Resource):
    def create(self, url: str, enabled_events: list[str] | None = None, description: str | None = None) -> dict:
        """Add a webhook endpoint; the answer holds its secret."""
        body = {"url": url, "enabled_events": enabled_events or ["*"]} | ({"description": description} if description else {})
        return self._client.request("POST", "/webhook-endpoints", json=body)

    def list(self) -> list[dict]:
        """Return every webhook endpoint."""
        return self._client.request("GET", "/webhook-endpoints")["data"]

    def retrieve(self, endpoint_id: str) -> dict:
        """Return one endpoint with its secret."""
        return self._client.request("GET", f"/webhook-endpoints/{endpoint_id}")

    def update(self, endpoint_id: str, **changes: object) -> dict:
        """Change ``url``, ``enabled_events``, ``description`` or ``status``."""
        return self._client.request("PATCH", f"/webhook-endpoints/{endpoint_id}", json=changes)

    def delete(self, endpoint_id: str) -> None:
        """Delete an endpoint."""
        self._client.request("DELETE", f"/webhook-endpoints/{endpoint_id}")

    def rotate_secret(self, endpoint_id: str, expire_previous_in_seconds: int = 86400) -> dict:
        """Give an endpoint a new secret; the old one signs too until it expires."""
        return self._client.request("POST", f"/webhook-endpoints/{endpoint_id}/rotate-secret",
                                    json={"expire_previous_in_seconds": expire_previous_in_seconds})

    def replay(self, endpoint_id: str, *, created_gte: str | None = None, created_lte: str | None = None,
               types: list[str] | None = None, only_failed: bool = False) -> dict:
        """Deliver a time window's events to an endpoint again."""
        body = {"types": types or [], "only_failed": only_failed} | (
            {"created_gte": created_gte} if created_gte else {}) | ({"created_lte": created_lte} if created_lte else {})
        return self._client.request("POST", f"/webhook-endpoints/{endpoint_id}/replay", json=body)
