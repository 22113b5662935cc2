"""Webhook latency during a payment burst, against a stack you started yourself.

    python services/webhooks/scripts/burst.py --api http://127.0.0.1:19000/api/v1 \
        --database-url postgresql://postgres@127.0.0.1:5432/wh_perf [--burst 1000] [--keep-alive]

The receiver runs in a separate process (stdlib ThreadingHTTPServer answering 200 at once,
HTTP/1.0 like bench/run.py unless --keep-alive) and logs each arrival time; payments are created
by several client processes. Prints p50/p95 of payments.updated_at -> payment.success arrival
and the delivery rate during the burst.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import requests

AUTH = {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "secret_test_xyz789"}

RECEIVER = r'''
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
out = open(sys.argv[1], "a", buffering=1)
class H(BaseHTTPRequestHandler):
    protocol_version = sys.argv[2]
    wbufsize = -1  # one write per response, like a real server
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        now = time.time()
        e = json.loads(body)
        pid = (e.get("data", {}).get("payment") or {}).get("id", "")
        out.write(f"{now:.6f} {e['event']} {pid}\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
s.request_queue_size = 1024
print(s.server_address[1], flush=True)
s.serve_forever()
'''


def _create(args: tuple[str, int, int]) -> list[str]:
    api, start, count = args
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=8))

    def one(i: int) -> str:
        body = {"amount": 10000, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": "burst"}
        r = session.post(f"{api}/payments", json=body, headers=AUTH, timeout=60)
        r.raise_for_status()
        return r.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(start, start + count)))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--keep-alive", action="store_true")
    p.add_argument("--bench-receiver", action="store_true", help="use bench/receiver.py (make bench's receiver)")
    a = p.parse_args()

    log = Path(tempfile.mkstemp(prefix="wh-arrivals-", suffix=".log")[1])
    if a.bench_receiver:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command = [sys.executable, "-m", "bench.receiver", str(port), str(log)]
        rx = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[3])  # noqa: S603
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
    else:
        command = [sys.executable, "-c", RECEIVER, str(log), "HTTP/1.1" if a.keep_alive else "HTTP/1.0"]
        rx = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
        port = int(rx.stdout.readline())
    try:
        r = requests.put(f"{a.api}/webhooks/config", json={"webhook_url": f"http://127.0.0.1:{port}/webhook"},
                         headers=AUTH, timeout=10)
        r.raise_for_status()
        per = a.burst // a.procs
        chunks = [(a.api, i * per, per if i < a.procs - 1 else a.burst - per * (a.procs - 1)) for i in range(a.procs)]
        t0 = time.time()
        with multiprocessing.Pool(a.procs) as pool:
            ids = [i for part in pool.map(_create, chunks) for i in part]
        t1 = time.time()
        want = set(ids)
        deadline = time.time() + 120
        while time.time() < deadline:
            got = {line.split()[2] for line in log.read_text().splitlines() if " payment.success " in line}
            if want <= got:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        conn = psycopg.connect(a.database_url)
        with conn.cursor() as cur:
            cur.execute("SELECT id, extract(epoch FROM updated_at) FROM payments.payments WHERE id = ANY(%s)", (ids,))
            finals = {r[0]: float(r[1]) for r in cur.fetchall()}
        conn.close()
        arrivals, times = {}, []
        for line in log.read_text().splitlines():
            at, event, pid = line.split(" ", 2)
            times.append(float(at))
            if event == "payment.success" and pid in want:
                arrivals.setdefault(pid, float(at))
        lat = [arrivals[i] - finals[i] for i in ids if i in arrivals]
        span = max(times) - min(times) if len(times) > 1 else float("nan")
        print(json.dumps({
            "created_s": round(t1 - t0, 2),
            "arrived": f"{len(lat)}/{len(ids)}",
            "p50_ms": round(pct(lat, .5) * 1000) if lat else None,
            "p95_ms": round(pct(lat, .95) * 1000) if lat else None,
            "max_ms": round(max(lat) * 1000) if lat else None,
            "deliveries": len(times),
            "deliveries_per_s": round(len(times) / span) if span == span and span > 0 else None,
        }))
    finally:
        rx.terminate()
        rx.wait(5)
        log.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
