"""A small client of the public gateway API, speaking as the logged-in merchant."""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10


class GatewayError(Exception):
    """The gateway answered with an error envelope (or could not be reached)."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{status} {code}: {description}")
        self.status = status
        self.code = code
        self.description = description


class GatewayUnavailableError(GatewayError):
    """The gateway could not be reached or answered garbage."""

    def __init__(self, description: str = "The payment gateway is unreachable; try again in a moment") -> None:
        super().__init__(503, "SERVICE_UNAVAILABLE", description)


class GatewayClient:
    """Call ``/api/v1`` of the gateway through one pooled ``requests.Session`` per process."""

    def __init__(self, base_url: str, pool_size: int = 16) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.pool_size = pool_size
        self._session: requests.Session | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _http(self) -> requests.Session:
        # Sockets must not be shared across a fork (gunicorn --preload), so the session is per process.
        pid = os.getpid()
        if self._session is None or self._pid != pid:
            with self._lock:
                if self._session is None or self._pid != pid:
                    session = requests.Session()
                    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size)
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                    session.trust_env = False
                    self._session, self._pid = session, pid
        return self._session

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one API call and return the decoded JSON body, raising ``GatewayError`` on failure."""
        headers = {"Accept": "application/json", **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if request_id:
            headers["X-Request-Id"] = request_id
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = self._http().request(
                method,
                self.base_url + path,
                params=clean,
                json=json,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise GatewayUnavailableError() from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok:
            if body is None and response.content:
                raise GatewayUnavailableError("The gateway answered with something that is not JSON")
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise GatewayError(
                response.status_code,
                str(error.get("code", "ERROR")),
                str(error.get("description", response.reason)),
            )
        if response.status_code >= 500:
            raise GatewayUnavailableError()
        raise GatewayError(response.status_code, "ERROR", response.reason or "Request failed")

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """POST ``path``."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        """PUT ``path``."""
        return self.request("PUT", path, **kwargs)
