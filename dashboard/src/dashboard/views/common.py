"""What every page of the dashboard shares: the blueprint, gateway calls, error pages, the pager, the layout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from dashboard.client import GatewayError
from dashboard.security import current_token, end_session

bp = Blueprint("main", __name__)

# The seeded test merchant's credentials are public (API.md), so the dashboard may reveal them.
TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_API_KEY = "key_test_abc123"
TEST_API_SECRET = "secret_test_xyz789"  # noqa: S105

LOG_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SessionExpiredError(Exception):
    """The gateway no longer accepts this dashboard session's token."""


def api(method: str, path: str, **kwargs: Any) -> Any:
    """Call the gateway as the logged-in merchant; a 401 ends the session."""
    client = current_app.extensions["gateway"]
    try:
        return client.request(method, path, token=current_token(), request_id=g.request_id, **kwargs)
    except GatewayError as exc:
        if exc.status == 401:
            raise SessionExpiredError from exc
        raise


def api_or_none(method: str, path: str, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the gateway for an optional part of a page: return (body, None) or (None, error text)."""
    try:
        return api(method, path, **kwargs), None
    except SessionExpiredError:
        raise
    except GatewayError as exc:
        return None, exc.description


def wants_json() -> bool:
    """Tell whether this request is one of the page's background JSON calls."""
    return request.path.startswith("/dashboard/api/")


@bp.app_errorhandler(SessionExpiredError)
def session_expired(_: SessionExpiredError) -> Any:
    """Go back to the login page when the gateway says the token expired."""
    end_session()
    if wants_json():
        return {"error": {"code": "AUTHENTICATION_ERROR", "description": "Session expired"}}, 401
    return redirect(url_for("main.login", expired=1, next=request.path))


@bp.app_errorhandler(GatewayError)
def gateway_error(exc: GatewayError) -> Any:
    """Show a gateway error as a page (or JSON for background calls)."""
    status = exc.status if exc.status in (400, 404, 429) else 502 if exc.status < 500 else 503
    if wants_json():
        return {"error": {"code": exc.code, "description": exc.description}}, status
    title = "Not found" if exc.status == 404 else "Something went wrong"
    return render_template("error.html", title=title, message=exc.description, status=status), status


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Any:
    """Render framework errors (CSRF refusals, unknown pages) in the dashboard's look."""
    if wants_json():
        return {"error": {"code": "ERROR", "description": exc.description}}, exc.code
    title = {400: "Request refused", 404: "Page not found", 405: "Not allowed"}.get(exc.code or 500, exc.name)
    return render_template("error.html", title=title, message=exc.description, status=exc.code), exc.code


CURSORS = ("starting_after", "ending_before")


@dataclass(frozen=True)
class Pager:
    """Where a list page stands and the links to the newer and older pages, by cursor.

    Every list pages the same way: the first page, then ``starting_after=<last id>`` (older) or
    ``ending_before=<first id>`` (newer), as the API reads them, so no page costs O(history). The
    links carry ``at``, the position of the page's first row, only to say "26-50 of 1,000".
    """

    total: int | None
    limit: int
    first: int  # 1-based position of the first row shown (0 when none is, or it is not known)
    shown: int
    prev_url: str | None
    next_url: str | None
    # Past 10,000 items the API answers the planner's estimate of the total (shown as "about").
    estimate: bool = False

    @property
    def last(self) -> int:
        """Return the 1-based position of the last row shown."""
        return self.first + self.shown - 1 if self.first else 0


@dataclass(frozen=True)
class PageRequest:
    """The page a request asks for: its size, one cursor (or none: the first page) and where it starts."""

    limit: int
    cursor: tuple[str, str] | None
    offset: int
    at: int

    def params(self) -> dict[str, Any]:
        """The list API's paging parameters for this page."""
        if self.cursor:
            return {"limit": self.limit, self.cursor[0]: self.cursor[1]}
        return {"limit": self.limit, "offset": self.offset}


def _page_request(default: int = 25) -> PageRequest:
    limit = request.args.get("limit", type=int) or default
    limit = min(max(limit, 1), 100)
    cursor = next(((name, request.args[name]) for name in CURSORS if LOG_ID.match(request.args.get(name, ""))), None)
    # ``offset`` is what links of before the cursors said; it still opens that page.
    offset = 0 if cursor else max(request.args.get("offset", type=int) or 0, 0)
    at = max(request.args.get("at", type=int) or 0, 0)
    return PageRequest(limit, cursor, offset, at)


def _list_page(path: str, page: PageRequest, filters: dict[str, str]) -> tuple[dict[str, Any], PageRequest]:
    """Read one page of a list API; a cursor the list no longer has (pruned, deleted) opens the first page."""
    try:
        return api("GET", path, params={**page.params(), **filters}), page
    except GatewayError as exc:
        if exc.status != 400 or page.cursor is None:
            raise
    first = PageRequest(page.limit, None, 0, 0)
    return api("GET", path, params={**first.params(), **filters}), first


def _pager(endpoint: str, body: dict[str, Any], page: PageRequest, filters: dict[str, str]) -> Pager:
    """Build the pager of one list page from the API's answer (one implementation for every list)."""
    data = body.get("data", [])
    more = bool(body.get("has_more"))
    total = body.get("total")
    total = int(total) if total is not None else None
    estimate = bool(body.get("total_is_estimate"))
    name = page.cursor[0] if page.cursor else None
    if name == "ending_before":
        newer, older = more, True
        first = 1 if not more else max(page.at, 2) if page.at else 0
    elif name == "starting_after":
        newer, older = True, more
        first = page.at
    else:
        newer, older = page.offset > 0, more
        first = page.offset + 1
    if total is not None and not estimate and first:
        first = min(first, max(total - len(data) + 1, 1))
    first = first if data else 0

    def link(**cursor: Any) -> str:
        query = {k: v for k, v in filters.items() if v}
        query.update(limit=str(page.limit), **{k: str(v) for k, v in cursor.items() if v})
        return url_for(endpoint) + "?" + urlencode(query)

    prev_url = next_url = None
    if data and newer:
        prev_url = link(ending_before=data[0]["id"], at=max(first - page.limit, 1) if first else 0)
    if data and older:
        next_url = link(starting_after=data[-1]["id"], at=first + len(data) if first else 0)
    return Pager(total=total, limit=page.limit, first=first, shown=len(data), prev_url=prev_url, next_url=next_url,
                 estimate=estimate)


@bp.app_context_processor
def layout_context() -> dict[str, Any]:
    """Give every template the logged-in merchant and the live-update interval."""
    return {
        "current_merchant": session.get("merchant") if current_token() else None,
        "poll_interval_ms": current_app.config["POLL_INTERVAL_MS"],
    }
