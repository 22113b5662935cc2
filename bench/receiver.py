"""A webhook receiver for the benchmark and the tests, run as its own process so its timing is not
skewed by the load generator: answers 200 at once and appends "<arrival unix time> <event> <payment or
refund id> <event id>" per delivery to a file. ``Receiver`` starts it and reads the file.

    python -m bench.receiver PORT OUTFILE
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """This module's receiver in a process of its own, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.file = Path(tempfile.mkstemp(prefix="gw-webhook-arrivals-")[1])
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(self.port), str(self.file)], cwd=ROOT)
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"the webhook receiver did not listen on {self.port} within 15 s")

    def lines(self) -> list[list[str]]:
        """Each delivery received so far: [arrival time, event, payment or refund id, event id]."""
        return [line.split(" ") for line in self.file.read_text().splitlines() if line.count(" ") >= 3]

    def arrivals(self, event: str) -> dict[str, float]:
        """First arrival time of ``event`` per payment (or refund) id."""
        found: dict[str, float] = {}
        for at, name, subject, _ in self.lines():
            if name == event and subject not in found:
                found[subject] = float(at)
        return found

    def all_times(self) -> list[float]:
        """Arrival time of every delivery."""
        return [float(at) for at, *_ in self.lines()]

    def received(self) -> list[tuple[str, str, str]]:
        """(event, payment or refund id, event id) of every delivery, in order of arrival."""
        return [(name, subject, event_id) for _, name, subject, event_id in self.lines()]

    def close(self) -> None:
        """Stop the receiver's process and remove its file."""
        self.proc.terminate()
        self.proc.wait(10)
        self.file.unlink(missing_ok=True)


def main() -> int:
    port, path = int(sys.argv[1]), sys.argv[2]
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrived = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            event = json.loads(body)
            data = event.get("data", {})
            subject = (data.get("payment") or data.get("refund") or {}).get("id", "-")
            with lock:
                out.write(f"{arrived:.6f} {event.get('event')} {subject} {event.get('id', '-')}\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
