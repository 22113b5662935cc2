"""make bench: the gateway's throughput and latency next to this machine's ceilings, in one run.

Starts its own system (throwaway database, free ports, TEST_MODE with a 1 s bank), then measures:
  ceilings    nginx serving a static 200 (wrk), an empty WSGI app under gunicorn behind nginx
              (bench/ceiling.py), PostgreSQL single-row INSERT+COMMIT (pgbench, c=16)
  auth edge   an authenticated GET through nginx vs the same request straight to the service (c=16)
  payments    POST /payments and GET /payments/{id} through the gateway at c=1/16/64, and where
              the CPU of the POST runs at c=64 went (microseconds per request, by process)
  burst       1,000 payments: time from the last request until all are final
  webhooks    time from a payment's final status to its webhook's arrival (p50/p95), deliveries/s
  refunds     create-refund throughput (c=16); a burst of 500 refunds until all processed
Prints one table and writes bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway_common.testing import PeakConnections, drop_database, drop_redis_keys, url_for_database  # noqa: E402

from bench.receiver import Receiver  # noqa: E402
from tools import stack as stack_tool  # noqa: E402

KEY, SECRET = "key_test_abc123", "secret_test_xyz789"
AUTH = {"X-Api-Key": KEY, "X-Api-Secret": SECRET}
MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- wrk and pgbench

def wrk(url: str, connections: int, seconds: int, *, method: str = "GET", body: str | None = None,
        headers: dict[str, str] | None = None, threads: int = 2) -> dict:
    """Run wrk and return req/s, p50, p99 (ms) and non-2xx count."""
    lua = ["wrk.method = " + json.dumps(method)]
    if body is not None:
        lua.append("wrk.body = " + json.dumps(body))
    for key, value in (headers or {}).items():
        lua.append(f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lua) + "\n")
    cmd = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script.name, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return parse_wrk(out)


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict:
    """Extract the figures from wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": requests_done, "p50": p50, "p99": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else ""}


def pgbench_insert(admin_url: str, db: str, clients: int, seconds: int) -> float:
    """Single-row INSERT+COMMIT transactions per second at ``clients`` connections."""
    url = url_for_database(admin_url, db)
    conn = psycopg.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS public.bench_insert (id BIGSERIAL PRIMARY KEY, v INT, created_at TIMESTAMPTZ DEFAULT now())")
    conn.close()
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO public.bench_insert (v) VALUES (1);\n")
    pgbench = shutil.which("pgbench") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None)
    out = subprocess.run([str(pgbench), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", script.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


# ---------------------------------------------------------------- where the CPU goes

# Which part of the machine a process is, by its command line (first match wins).
CPU_PARTS = [
    ("payments API", "payments:create_app"),
    ("PostgreSQL", "postgres"),
    ("payments worker", "payments.worker"),
    ("webhooks worker", "webhooks.worker"),
    ("refunds worker", "refunds.worker"),
    ("auth API", "auth:create_app"),
    ("nginx", "nginx"),
    ("Redis", "redis-server"),
]


def proc_cpu(pid: str | int) -> tuple[int, float, float]:
    """A process's parent PID, its own CPU seconds (user + system) and its reaped children's, from /proc.

    Raises OSError when the process is gone.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def cpu_seconds_by_part(run_dir: str | None = None) -> dict[str, float]:
    """CPU seconds (user + system, its reaped children's included) each part of the machine has used so far, from /proc.

    The load generator (wrk), a child of this process, is counted from its rusage; processes that
    have exited since (and every other process) are "other". With ``run_dir``, only the live
    processes of the stack whose environment names that RUN_DIR are counted (not PostgreSQL,
    Redis or the load generator, which stacks share).
    """
    marker = f"RUN_DIR={run_dir}".encode() if run_dir else None
    used: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():  # this process's reaped wrk is counted below
            continue
        try:
            if marker is not None and marker not in Path(f"/proc/{entry}/environ").read_bytes():
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            _, own, reaped = proc_cpu(entry)
        except OSError:
            continue
        part = next((name for name, needle in CPU_PARTS if needle in cmdline), "other")
        # utime + stime, and cutime + cstime: the children it has reaped. PostgreSQL's backends are
        # the postmaster's children, and psycopg_pool replaces connections (max_lifetime, idle), so
        # many backends end within a run: without their reaped time PostgreSQL counted 52 us per
        # POST where it spends several hundred.
        used[part] = used.get(part, 0.0) + own + reaped
    if run_dir is None:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used["load generator (wrk)"] = children.ru_utime + children.ru_stime
    return used


def cpu_per_request(before: dict[str, float], after: dict[str, float], requests_done: int, seconds: float) -> str:
    """Microseconds of CPU per request by part, largest first, and the total against the machine's."""
    spent = {part: after.get(part, 0.0) - before.get(part, 0.0) for part in after}
    parts = sorted(((part, used) for part, used in spent.items() if used > 0), key=lambda item: -item[1])
    total = sum(used for _, used in parts)
    shown = ", ".join(f"{part} {used * 1e6 / requests_done:.0f}" for part, used in parts if used * 1e6 / requests_done >= 5)
    return (f"{shown}; total {total * 1e6 / requests_done:.0f} us/request, "
            f"{total:.1f} CPU-s of {(os.cpu_count() or 1) * seconds:.1f} available")


def system_cpu_per_request(before: dict[str, float], after: dict[str, float], requests_done: int) -> float:
    """Microseconds of CPU per request of the system's own parts (not the load generator, not "other")."""
    own = [part for part, _ in CPU_PARTS]
    return sum(after.get(p, 0.0) - before.get(p, 0.0) for p in own) * 1e6 / max(requests_done, 1)


# ---------------------------------------------------------------- helpers on the running system

def wrk_burst(url: str, total: int, body: str, db_url: str, tag: str, connections: int = 32, threads: int = 2) -> None:
    """Send ``total`` POSTs as fast as wrk can; stop wrk once the database holds them all."""
    per_thread = total // threads
    lua = f"""
wrk.method = "POST"
wrk.body = {json.dumps(body)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "{KEY}"
wrk.headers["X-Api-Secret"] = "{SECRET}"
-- wrk calls request() once on thread 0's state to check the script before the run, and sends
-- nothing for that call: thread 0 starts one behind, or the burst is one payment short.
local threads_made = 0
function setup(thread)
  thread:set("id", threads_made)
  threads_made = threads_made + 1
end
local sent = 0
function init(args)
  if id == 0 then sent = -1 end
end
request = function()
  sent = sent + 1
  if sent > {per_thread} then
    return wrk.format("GET", "/health")
  end
  return wrk.format()
end
"""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    proc = subprocess.Popen(["wrk", "-t", str(threads), "-c", str(connections), "-d", "120s", "-s", script.name, url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = psycopg.connect(db_url)
    conn.autocommit = True
    deadline = time.time() + 120
    last, last_change = -1, time.time()
    try:
        # Stop when the count reaches the total, or has not moved for a second (a request that
        # failed is not sent again).
        while time.time() < deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM payments.payments WHERE order_id = %s", (tag,))
                count = cur.fetchone()[0]
            if count >= per_thread * threads or (count > 0 and count == last and time.time() - last_change > 1.0):
                break
            if count != last:
                last, last_change = count, time.time()
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
        conn.close()
        os.unlink(script.name)


def post_many(url: str, bodies: list[dict], workers: int = 32) -> tuple[list[dict], float]:
    """POST every body concurrently; return the responses' JSON and the time of the last answer."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=workers, pool_maxsize=workers)
    session.mount("http://", adapter)

    def one(body: dict) -> dict:
        r = session.post(url, json=body, headers=AUTH, timeout=30)
        r.raise_for_status()
        return r.json()

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, bodies))
    return results, time.time()


def wait_payments_final(db_url: str, ids: list[str], timeout: float) -> float | None:
    """Wait until every payment is final; return when that happened (None on timeout)."""
    conn = psycopg.connect(db_url)
    conn.autocommit = True
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM payments.payments WHERE id = ANY(%s) AND status IN ('success', 'failed')", (ids,))
                if cur.fetchone()[0] == len(ids):
                    return time.time()
            time.sleep(0.05)
    finally:
        conn.close()
    return None


def final_times(db_url: str, ids: list[str]) -> dict[str, float]:
    conn = psycopg.connect(db_url)
    with conn.cursor() as cur:
        cur.execute("SELECT id, extract(epoch FROM updated_at) FROM payments.payments WHERE id = ANY(%s)", (ids,))
        rows = {r[0]: float(r[1]) for r in cur.fetchall()}
    conn.close()
    return rows


def drain_payments(db_url: str, timeout: float = 300) -> float:
    """Wait until no payment is pending or processing and the relay has published every event.

    Both count: work the workers put off (a bank answer, an event not yet published) is work the
    POST figures did not pay for, so how long it takes afterwards is reported beside them.
    """
    started = time.time()
    conn = psycopg.connect(db_url)
    conn.autocommit = True
    try:
        while time.time() - started < timeout:
            with conn.cursor() as cur:
                # The relay's place against the outbox's (xid, seq) index: no scan of every event.
                cur.execute(
                    "SELECT EXISTS (SELECT 1 FROM payments.payments WHERE status IN ('pending', 'processing'))"
                    " OR EXISTS (SELECT 1 FROM payments.outbox o, payments.outbox_relay r WHERE (o.xid, o.seq) > (r.xid, r.seq))"
                )
                if not cur.fetchone()[0]:
                    break
            time.sleep(0.2)
    finally:
        conn.close()
    return time.time() - started


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (its own p50/p99 go with it)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def runs_label(runs: list[dict]) -> str:
    return f" (median of {len(runs)})" if len(runs) > 1 else ""


def runs_range(runs: list[dict]) -> str:
    """All runs' req/s and p99, so the spread between runs on a shared machine is visible."""
    if len(runs) < 2:
        return ""
    return "; runs: " + ", ".join(f"{r['rps']:.0f} req/s p99 {r['p99']:.0f} ms" for r in sorted(runs, key=lambda r: r["rps"]))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# ---------------------------------------------------------------- the run

@dataclass
class BenchStack:
    """Where a benchmark's own system runs: a throwaway database, free ports, its environment."""

    admin_url: str
    run_id: str
    db_name: str
    db_url: str
    run_dir: Path
    ports: dict[str, str]
    env: dict[str, str]

    @classmethod
    def new(cls) -> BenchStack:
        admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        run_id = secrets.token_hex(3)
        db_name = f"gwbench_{run_id}"
        db_url = url_for_database(admin_url, db_name)
        run_dir = Path(tempfile.mkdtemp(prefix="gwbench-"))
        ports = {k: str(free_port()) for k in stack_tool.port_settings()}
        env = stack_tool.stack_env({
            **ports, "DATABASE_URL": db_url, "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
            "RUN_DIR": str(run_dir), "PUBSUB_PREFIX": f"gwbench{run_id}", "GATEWAY_SECRET": secrets.token_urlsafe(16),
            "TEST_MODE": "true", "TEST_PROCESSING_DELAY": "1000", "RATE_LIMIT_RPS": "1000000", "RATE_LIMIT_BURST": "1000000",
            "NGINX_ERROR_LOG": str(run_dir / "nginx-error.log"), "STACK_PARTS": os.environ.get("BENCH_PARTS", ""),
        })
        return cls(admin_url, run_id, db_name, db_url, run_dir, ports, env)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The whole system up and healthy for the block; then stopped, its database and Redis keys gone."""
        proc = None
        try:  # a start that fails half-way (say, in a migration) still drops its database
            proc = stack_tool.start_background(self.env)
            stack_tool.wait_healthy(self.env, proc, timeout=180)
            yield
        finally:
            if proc is not None:
                stack_tool.stop(proc.pid)
            drop_database(self.admin_url, self.db_name)
            drop_redis_keys(self.env["REDIS_URL"], self.env["PUBSUB_PREFIX"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk/pgbench run")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--refund-burst", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the c=64 payments measurements (median reported)")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--million", action="store_true",
                        help="then the '1 M rows' section (bench/scale.py, about 5 more minutes)")
    parser.add_argument("--million-only", action="store_true", help="only the '1 M rows' section")
    parser.add_argument("--stream", action="store_true",
                        help="then the 'Live event stream' section (bench/stream.py, about a minute more)")
    parser.add_argument("--stream-only", action="store_true", help="only the 'Live event stream' section")
    args = parser.parse_args()
    secs = args.seconds
    if args.million_only:
        from bench import scale

        return scale.run(Path(args.results))
    if args.stream_only:
        from bench import stream

        return stream.run(Path(args.results))

    bench = BenchStack.new()
    admin_url, run_id, db_name, db_url, run_dir = bench.admin_url, bench.run_id, bench.db_name, bench.db_url, bench.run_dir
    ports, env = bench.ports, bench.env
    api = f"http://127.0.0.1:{ports['PORT']}/api/v1"
    rows: list[tuple[str, str, str]] = []

    def add(name: str, value: str, ratio: str = "") -> None:
        rows.append((name, value, ratio))
        print(f"  {name:<58} {value:<34} {ratio}", flush=True)

    with bench.running():
        print(f"system up (run dir {run_dir})", flush=True)
        # The stack's own connections (by application_name), sampled over the whole run.
        connections = PeakConnections(admin_url, [db_name], stack_tool.application_names(), every=0.05)
        connections.__enter__()

        # Ceilings.
        static = {}
        for c in (16, 64):
            cpu_before = cpu_seconds_by_part()
            static[c] = wrk(f"http://127.0.0.1:{ports['BENCH_STATIC_PORT']}/", c, secs)
            nginx_static_us = (cpu_seconds_by_part().get("nginx", 0.0) - cpu_before.get("nginx", 0.0)) * 1e6 / max(static[c]["requests"], 1)
        for c, r in static.items():
            add(f"ceiling: nginx static 200, c={c}", f"{r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms")
        add("ceiling: nginx CPU per static request, c=64", f"{nginx_static_us:.1f} us")
        # What nginx's proxy and gunicorn cost whatever the app does (bench/ceiling.py).
        from bench import ceiling

        empty = ceiling.measure(64, secs)
        add("ceiling: empty WSGI app, gunicorn gthread behind nginx, c=64",
            f"{empty['rps']:.0f} req/s, p50 {empty['p50']:.2f} ms, p99 {empty['p99']:.2f} ms",
            f"{empty['rps'] / static[64]['rps']:.3f} of nginx static")
        add("ceiling: CPU per empty-app request (nginx + gunicorn), c=64", f"{empty['cpu_us']:.0f} us",
            f"{empty['cpu_us'] / nginx_static_us:.0f}x nginx's static request" if nginx_static_us > 0 else "")
        pg_tps = pgbench_insert(admin_url, db_name, 16, secs)
        add("ceiling: pgbench single-row INSERT+COMMIT, c=16", f"{pg_tps:.0f} tps")

        # A payment to read.
        first = requests.post(f"{api}/payments", json={"amount": 50000, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": "bench_ref"}, headers=AUTH, timeout=10)
        first.raise_for_status()
        pay_id = first.json()["id"]

        # Auth edge: same GET through nginx (auth_request, cached) and straight to the service.
        direct_headers = {"X-Merchant-Id": MERCHANT_ID, "X-Gateway-Secret": env["GATEWAY_SECRET"]}
        via = wrk(f"{api}/payments/{pay_id}", 16, secs, headers=AUTH)
        direct = wrk(f"http://127.0.0.1:{ports['PAYMENTS_PORT']}/api/v1/payments/{pay_id}", 16, secs, headers=direct_headers)
        add("auth edge: GET /payments/{id} via nginx+auth, c=16", f"{via['rps']:.0f} req/s, p50 {via['p50']:.2f} ms, p99 {via['p99']:.2f} ms")
        add("auth edge: same GET straight to the service, c=16", f"{direct['rps']:.0f} req/s, p50 {direct['p50']:.2f} ms, p99 {direct['p99']:.2f} ms")
        add("auth edge cost (direct req/s / gateway req/s)", f"{direct['rps'] / via['rps']:.2f}x", "goal <= 1.3x")
        add("auth edge cost (gateway p50 / direct p50)", f"{via['p50'] / direct['p50']:.2f}x")

        # Payments through the gateway.
        body = json.dumps({"amount": 50000, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": "bench_ref"})
        for c in (1, 16, 64):
            cpu_before, started = cpu_seconds_by_part(), time.monotonic()
            runs = [wrk(f"{api}/payments", c, secs, method="POST", body=body, headers={**AUTH, "Content-Type": "application/json"})
                    for _ in range(args.repeat if c == 64 else 1)]
            cpu_after, elapsed = cpu_seconds_by_part(), time.monotonic() - started
            r = median_run(runs)
            add(f"POST /payments via gateway, c={c}" + runs_label(runs), f"{r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms"
                + (f", non-2xx {r['non2xx']}" if r["non2xx"] else "") + runs_range(runs),
                f"{r['rps'] / pg_tps:.3f} of pgbench" + (" (goal >= 0.25, p99 <= 100 ms)" if c == 64 else ""))
        add("CPU per POST at c=64 in us, by process (all runs)",
            cpu_per_request(cpu_before, cpu_after, sum(run["requests"] for run in runs), elapsed))
        system_us = system_cpu_per_request(cpu_before, cpu_after, sum(run["requests"] for run in runs))
        add("CPU per created payment, whole system (API, PostgreSQL, workers, nginx, Redis)",
            f"{system_us:.0f} us", (f"{system_us / nginx_static_us:.0f}x nginx's static request (goal <= 30x)"
                                    if nginx_static_us > 0 else "") + f"; {system_us / empty['cpu_us']:.1f}x an empty-app request")
        drained = drain_payments(db_url)
        add("backlog after the POST runs (bank answers, events) processed in", f"{drained:.1f} s")
        for c in (1, 16, 64):
            cpu_before, started = cpu_seconds_by_part(), time.monotonic()
            runs = [wrk(f"{api}/payments/{pay_id}", c, secs, headers=AUTH) for _ in range(args.repeat if c == 64 else 1)]
            cpu_after, elapsed = cpu_seconds_by_part(), time.monotonic() - started
            r = median_run(runs)
            add(f"GET /payments/{{id}} via gateway, c={c}" + runs_label(runs),
                f"{r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms" + runs_range(runs),
                f"{r['rps'] / static[64]['rps']:.3f} of nginx static" + (" (goal >= 0.05)" if c == 64 else "")
                + (f"; {r['rps'] / empty['rps']:.2f} of the empty app" if c == 64 else ""))
        add("CPU per GET at c=64 in us, by process (all runs)",
            cpu_per_request(cpu_before, cpu_after, sum(run["requests"] for run in runs), elapsed))

        # Let the queue of benchmark payments drain before the burst.
        drain_deadline = time.time() + 300
        conn = psycopg.connect(db_url)
        conn.autocommit = True
        while time.time() < drain_deadline:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM payments.payments WHERE status IN ('pending', 'processing')")
                left = cur.fetchone()[0]
            if left == 0:
                break
            time.sleep(0.5)
        add("backlog from the throughput runs drained", f"{left} left after waiting")
        conn.close()
        conn = psycopg.connect(db_url)
        conn.autocommit = True

        # Burst of payments with a webhook receiver attached.
        receiver = Receiver()
        webhooks_ready = requests.put(f"{api}/webhooks/config", json={"webhook_url": receiver.url}, headers=AUTH, timeout=10).status_code == 200
        tag = f"burst_{run_id}"
        start = time.time()
        wrk_burst(f"{api}/payments", args.burst, json.dumps({"amount": 10000, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": tag}), db_url, tag)
        with conn.cursor() as cur:
            cur.execute("SELECT id, extract(epoch FROM created_at) FROM payments.payments WHERE order_id = %s", (tag,))
            burst_rows = cur.fetchall()
        ids = [r[0] for r in burst_rows]
        last_request = max(float(r[1]) for r in burst_rows)
        done = wait_payments_final(db_url, ids, timeout=120)
        if done is None:
            add(f"burst: {len(ids)} payments final", "NOT all final within 120 s")
        else:
            add(f"burst: {len(ids)} payments created (wrk, c=32)", f"{last_request - start:.2f} s ({len(ids) / (last_request - start):.0f} req/s)")
            add("burst: all final after the last request", f"{done - last_request:.2f} s", "goal <= 10 s (delay 1 s)")
            add("burst: completions per second (first request to all final)", f"{len(ids) / (done - start):.0f} /s")
        if webhooks_ready:
            deadline = time.time() + 90
            while time.time() < deadline and not set(ids) <= set(receiver.arrivals("payment.success")):
                time.sleep(0.2)
            finals = final_times(db_url, ids)
            arrivals = receiver.arrivals("payment.success")
            lat = [arrivals[i] - finals[i] for i in ids if i in arrivals]
            add("webhook: payment.success arrivals during the burst", f"{len(lat)} of {len(ids)}")
            if lat:
                add("webhook: final status -> arrival, p50 / p95", f"{pct(lat, .5) * 1000:.0f} ms / {pct(lat, .95) * 1000:.0f} ms", "goal p95 <= 1 s")
            # payment.created, .pending and .success per payment; a created or pending one may
            # still be on its way when the last success has arrived (they are sent in parallel).
            expected = 3 * len(ids)
            deadline = time.time() + 30
            while time.time() < deadline and len(receiver.all_times()) < expected:
                time.sleep(0.2)
            times = receiver.all_times()
            if len(times) > 1:
                add("webhook: deliveries per second during the burst",
                    f"{len(times) / (max(times) - min(times)):.0f} /s ({len(times)} of {expected} deliveries)")
        else:
            add("webhooks", "not measured: PUT /webhooks/config failed")
        receiver.close()

        # Refunds.
        big = requests.post(f"{api}/payments", json={"amount": 10**12, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": "refund_pool"}, headers=AUTH, timeout=10).json()
        if wait_payments_final(db_url, [big["id"]], 30):
            r = wrk(f"{api}/payments/{big['id']}/refunds", 16, secs, method="POST", body=json.dumps({"amount": 100, "reason": "bench"}),
                    headers={**AUTH, "Content-Type": "application/json"})
            add("POST /payments/{id}/refunds via gateway, c=16", f"{r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms"
                + (f", non-2xx {r['non2xx']}" if r["non2xx"] else ""), f"{r['rps'] / pg_tps:.3f} of pgbench")
            # Drain, then the burst.
            deadline = time.time() + 300
            while time.time() < deadline:
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM refunds.refunds WHERE status = 'pending'")
                    if cur.fetchone()[0] == 0:
                        break
                time.sleep(0.5)
            start = time.time()
            refunds, last_request = post_many(f"{api}/payments/{big['id']}/refunds", [{"amount": 100, "reason": f"burst {i}"} for i in range(args.refund_burst)])
            rids = [x["id"] for x in refunds]
            deadline = time.time() + 120
            finished = None
            while time.time() < deadline:
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM refunds.refunds WHERE id = ANY(%s) AND status = 'processed'", (rids,))
                    if cur.fetchone()[0] == len(rids):
                        finished = time.time()
                        break
                time.sleep(0.05)
            if finished:
                add(f"refund burst: {args.refund_burst} processed after the last request", f"{finished - last_request:.2f} s", "goal <= delay 1 s + 5 s")
            else:
                add(f"refund burst: {args.refund_burst}", "NOT all processed within 120 s")
        conn.close()
        connections.__exit__(None, None, None)
        budget = sum(stack_tool.connection_budget(env).values())
        add("PostgreSQL connections held by the stack, peak over the run", f"{connections.peak[db_name]}",
            f"budget {budget} (goal <= 30)")

    write_results(Path(args.results), rows, secs)
    failed = 0
    if args.stream:
        from bench import stream

        failed |= stream.run(Path(args.results))
    if args.million:
        from bench import scale

        failed |= scale.run(Path(args.results))
    return failed


HISTORY_HEADING = "\n## History\n"
SCALE_HEADING = "\n## 1 M rows\n"
STREAM_HEADING = "\n## Live event stream\n"


def section(text: str, heading: str) -> str:
    """The section of ``text`` under ``heading`` up to the next "## " heading ("" if none)."""
    if heading not in text:
        return ""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)].rstrip("\n") + "\n"


def replace_section(text: str, heading: str, new: str) -> str:
    """``text`` with the section under ``heading`` replaced by ``new`` (added before History if absent)."""
    old = section(text, heading)
    if old:
        return text.replace(old, new)
    if HISTORY_HEADING in text:
        at = text.index(HISTORY_HEADING)
        return text[:at].rstrip("\n") + "\n" + new + text[at:]
    return text.rstrip("\n") + "\n" + new


def write_results(path: Path, rows: list[tuple[str, str, str]], secs: int) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))) // 1024 // 1024
    lines = [
        "# Benchmark results",
        "",
        f"Latest `make bench` run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, on {os.cpu_count()} cores ({cpu}), {mem} GiB,",
        f"Python {platform.python_version()}; every figure from the same run, {secs} s per wrk/pgbench measurement,",
        "load generator (wrk, pgbench) on the same machine. TEST_MODE with a 1 s bank delay.",
        "The c=64 payments figures are the median of several runs, each run listed: on a shared",
        "machine the same code has measured 30-50% apart from one run to the next.",
        "",
        "| measurement | result | vs ceiling / goal |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
    ]
    # The hand-kept History section (figures that once steered the code) survives each new run, and
    # so do the latest "1 M rows" and "Live event stream" sections (`--million`, bench/scale.py;
    # `--stream`, bench/stream.py).
    old = path.read_text() if path.exists() else ""
    history = old[old.index(HISTORY_HEADING) :] if HISTORY_HEADING in old else ""
    kept = section(old, SCALE_HEADING) + section(old, STREAM_HEADING)
    path.write_text("\n".join(lines).rstrip("\n") + "\n" + kept + history)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    sys.exit(main())
