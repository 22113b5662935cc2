"""A merchant-side webhook receiver for local testing (standard library only).

    python examples/webhook_receiver.py --port 4000 --secret whsec_test_abc123 [--fail-first 2]

Then point the gateway at it:

    curl -X PUT http://localhost:8000/api/v1/webhooks/config \
      -H "X-Api-Key: key_test_abc123" -H "X-Api-Secret: secret_test_xyz789" \
      -H "Content-Type: application/json" -d '{"webhook_url": "http://127.0.0.1:4000/webhook"}'

Every request is verified from its raw body (see webhook_verify.py); valid events are
printed and answered 200, invalid ones 400. ``--fail-first N`` answers 500 to the first N
requests so you can watch the gateway retry.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webhook_verify import WebhookVerificationError, verify_webhook

MAX_BODY = 1024 * 1024


@dataclass
class Received:
    """One request as the receiver saw it."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    event: dict | None


@dataclass
class ReceiverState:
    """What the receiver checks against and everything it has received."""

    secret: str
    fail_first: int = 0
    quiet: bool = False
    requests: list[Received] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict]:
        """Return the verified events received so far (duplicates included)."""
        with self.lock:
            return [r.event for r in self.requests if r.event is not None]


class WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:
        """Verify and acknowledge one webhook."""
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY))
        headers = {k: v for k, v in self.headers.items()}
        event = None
        with state.lock:
            failing = state.fail_first > 0
            if failing:
                state.fail_first -= 1
        if failing:
            status, answer = 500, {"error": "failing on purpose (--fail-first)"}
        else:
            try:
                event = verify_webhook(body, headers, state.secret)
                status, answer = 200, {"received": True}
            except WebhookVerificationError as exc:
                status, answer = 400, {"error": str(exc)}
        with state.lock:
            state.requests.append(Received(time.time(), self.path, headers, body, status, event))
            duplicate = event is not None and event.get("id") in state.seen_ids
            if event is not None:
                state.seen_ids.add(event.get("id"))
        if not state.quiet:
            if event is not None:
                note = " (duplicate delivery, already handled)" if duplicate else ""
                print(f"verified {event.get('event')} {event.get('id')}{note}", flush=True)
                print(json.dumps(event.get("data"), indent=2), flush=True)
            else:
                print(f"answered {status}: {answer.get('error')}", flush=True)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the console for events."""


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ReceiverState) -> None:
        super().__init__(address, WebhookHandler)
        self.state = state


def serve_in_thread(secret: str, *, host: str = "127.0.0.1", port: int = 0, fail_first: int = 0) -> WebhookServer:
    """Start a quiet receiver in a background thread (port 0 picks a free port)."""
    server = WebhookServer((host, port), ReceiverState(secret=secret, fail_first=fail_first, quiet=True))
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    """Run the receiver in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--secret", default="whsec_test_abc123", help="the webhook secret from the dashboard")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N", help="answer 500 to the first N requests")
    args = parser.parse_args(argv)
    server = WebhookServer((args.host, args.port), ReceiverState(secret=args.secret, fail_first=args.fail_first))
    print(f"listening on http://{args.host}:{args.port}/webhook", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
