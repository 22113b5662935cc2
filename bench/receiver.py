"""A webhook receiver for the benchmark, run as its own process so its timing is not skewed
by the load generator: answers 200 at once and appends "<arrival unix time> <event> <payment id>"
per delivery to a file.

    python -m bench.receiver PORT OUTFILE
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
                out.write(f"{arrived:.6f} {event.get('event')} {subject}\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
