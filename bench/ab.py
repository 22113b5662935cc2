"""Before/after in the same run: this tree's stack against another commit's, measured alternately.

    make bench-ab REF=67a6ba4            # or: .venv/bin/python -m bench.ab --ref 67a6ba4

Two whole stacks run side by side (each on its own database, ports and Redis prefix); the
measurements take turns between them, round after round, so a change in the machine's load
(another process, CPU frequency, PostgreSQL's caches) hits both sides alike. Each figure is the
median over the rounds, with the per-round values beside it; CPU per request counts only the
stack's own processes (its APIs, workers and nginx: found by the RUN_DIR in their environment),
not PostgreSQL, which both stacks share.

The other commit is checked out once as a git worktree under ``.bench-ab/`` and gets its own
``.venv`` there (``make setup``). Its stack is started by this file's ``--serve`` mode run with that
tree's Python, so this tool works on any commit whose ``tools/stack.py`` has ``stack_env``,
``start_background``, ``wait_healthy`` and ``stop`` (every commit since the benchmark existed).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "key_test_abc123", "secret_test_xyz789"
AUTH = {"X-Api-Key": KEY, "X-Api-Secret": SECRET}
PAYMENT = {"amount": 50000, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": "bench_ab"}
PORT_NAMES = ("PORT", "CHECKOUT_PORT", "DASHBOARD_PORT", "AUTH_PORT", "PAYMENTS_PORT", "REFUNDS_PORT", "WEBHOOKS_PORT",
              "BENCH_STATIC_PORT")


# ---------------------------------------------------------------- --serve: one stack, in its own tree

def serve(root: Path) -> int:
    """Start ``root``'s stack, print where it is as one JSON line, stop it when stdin closes."""
    sys.path[:0] = [str(root), str(root / "libs" / "gateway_common" / "src")]
    import requests
    from gateway_common.testing import drop_database, drop_redis_keys, url_for_database

    from bench.run import free_port
    from tools import stack as stack_tool

    admin_url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    run_id = secrets.token_hex(3)
    db_name = f"gwab_{run_id}"
    run_dir = Path(tempfile.mkdtemp(prefix="gwab-"))
    # Every port of that tree's stack (its metrics listeners too, where it has them), each a free one.
    ports = {name: str(free_port()) for name in getattr(stack_tool, "port_settings", lambda: PORT_NAMES)()}
    env = stack_tool.stack_env({
        **ports, "DATABASE_URL": url_for_database(admin_url, db_name),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "RUN_DIR": str(run_dir), "PUBSUB_PREFIX": f"gwab{run_id}", "GATEWAY_SECRET": secrets.token_urlsafe(16),
        "TEST_MODE": "true", "TEST_PROCESSING_DELAY": "1000", "RATE_LIMIT_RPS": "1000000", "RATE_LIMIT_BURST": "1000000",
        "NGINX_ERROR_LOG": str(run_dir / "nginx-error.log"), "STACK_PARTS": "",
    })
    proc = None
    try:
        proc = stack_tool.start_background(env)
        stack_tool.wait_healthy(env, proc, timeout=240)
        api = f"http://127.0.0.1:{ports['PORT']}/api/v1"
        first = requests.post(f"{api}/payments", json=PAYMENT, headers=AUTH, timeout=10)
        first.raise_for_status()
        print(json.dumps({"api": api, "payment_id": first.json()["id"], "run_dir": str(run_dir),
                          "db_url": env["DATABASE_URL"]}), flush=True)
        sys.stdin.read()  # until the measuring process closes our stdin
    finally:
        if proc is not None:
            stack_tool.stop(proc.pid)
        drop_database(admin_url, db_name)
        drop_redis_keys(env["REDIS_URL"], env["PUBSUB_PREFIX"])
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


# ---------------------------------------------------------------- the measuring side

def checkout(ref: str) -> Path:
    """A worktree of ``ref`` under .bench-ab/ with its own .venv, made once and reused."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    tree = ROOT / ".bench-ab" / commit[:12]
    if not (tree / ".git").exists():
        tree.parent.mkdir(exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True)
    if not (tree / ".venv" / "bin" / "python").exists():
        print(f"setting up {ref} ({commit[:12]}) in {tree} (make setup, a few minutes)", flush=True)
        subprocess.run(["make", "setup"], cwd=tree, check=True, stdout=subprocess.DEVNULL)
    return tree


class Side:
    """One stack, started by ``--serve`` in its tree, and how to count its processes' CPU."""

    def __init__(self, name: str, tree: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.proc = subprocess.Popen([str(tree / ".venv" / "bin" / "python"), str(Path(__file__).resolve()),
                                      "--serve", str(tree)], cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})})
        where = None
        for line in self.proc.stdout or []:  # the stack's own start-up lines come first
            if line.startswith('{"api"'):
                where = json.loads(line)
                break
            print(f"[{name}] {line}", end="", flush=True)
        if where is None:
            raise SystemExit(f"the {name} stack did not start (see the output above)")
        self.api, self.payment_id, self.run_dir = where["api"], where["payment_id"], where["run_dir"]
        self.db_url = where["db_url"]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by part, over the live processes of this stack."""
        from bench.run import cpu_seconds_by_part

        return cpu_seconds_by_part(self.run_dir)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def measure(side: Side, what: str, connections: int, seconds: int) -> dict:
    from bench.run import wrk

    before = side.cpu_seconds()
    if what == "POST":
        result = wrk(f"{side.api}/payments", connections, seconds, method="POST", body=json.dumps(PAYMENT),
                     headers={**AUTH, "Content-Type": "application/json"})
    else:
        result = wrk(f"{side.api}/payments/{side.payment_id}", connections, seconds, headers=AUTH)
    after = side.cpu_seconds()
    done = max(result["requests"], 1)
    result["cpu_parts"] = {part: (after[part] - before.get(part, 0.0)) * 1e6 / done for part in after}
    result["cpu_us"] = sum(result["cpu_parts"].values())
    return result


def wait_drained(sides: list[Side], timeout: float = 120) -> None:
    """Let both stacks finish their bank answers before the next measurement."""
    import psycopg

    deadline = time.monotonic() + timeout
    for side in sides:
        with psycopg.connect(side.db_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT count(*) FROM payments.payments WHERE status IN ('pending', 'processing')").fetchone()
                if not row or row[0] == 0:
                    break
                time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", help="the commit to compare this tree with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6, help="duration of each wrk run")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for this tree's stack only (repeatable), e.g. PAYMENTS_THREADS=6; "
                             "with --ref HEAD it measures a setting against the default")
    parser.add_argument("--env-before", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the other commit's stack only (repeatable), e.g. "
                             "GUNICORN_CMD_ARGS=--reuse-port to give an older commit a socket per worker")
    parser.add_argument("--serve", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(Path(args.serve))
    if not args.ref:
        parser.error("--ref is required")

    sys.path.insert(0, str(ROOT))
    load_before = os.getloadavg()
    other = checkout(args.ref)
    extra = dict(item.split("=", 1) for item in args.env)
    extra_before = dict(item.split("=", 1) for item in args.env_before)
    sides = [Side(f"{args.ref}" + (" " + " ".join(args.env_before) if args.env_before else ""), other, extra_before),
             Side("this tree" + (" " + " ".join(args.env) if args.env else ""), ROOT, extra)]
    plan = [("GET", 1), ("GET", 64), ("POST", 16), ("POST", 64)]
    results: dict[tuple[str, str, int], list[dict]] = {}
    try:
        for round_no in range(args.rounds):
            order = sides if round_no % 2 == 0 else sides[::-1]
            for what, connections in plan:
                for side in order:
                    r = measure(side, what, connections, args.seconds)
                    results.setdefault((side.name, what, connections), []).append(r)
                    print(f"round {round_no + 1} {side.name:>12} {what} c={connections:<3} {r['rps']:7.0f} req/s "
                          f"p50 {r['p50']:6.2f} ms  {r['cpu_us']:5.0f} us CPU/request", flush=True)
                if what == "POST":
                    wait_drained(sides)
    finally:
        for side in sides:
            side.close()

    print(f"\nload average before: {load_before[0]:.2f}; after: {os.getloadavg()[0]:.2f}; "
          f"{args.rounds} rounds of {args.seconds} s, sides alternating; median (per round)")
    print(f"{'measurement':<20} {args.ref + ' req/s':>24} {'this tree req/s':>24} {'ratio':>6} "
          f"{'CPU us/req before':>18} {'after':>8}")
    for what, connections in plan:
        before = results[(sides[0].name, what, connections)]
        after = results[(sides[1].name, what, connections)]
        b = statistics.median(r["rps"] for r in before)
        a = statistics.median(r["rps"] for r in after)
        per_round = lambda runs: "/".join(f"{r['rps']:.0f}" for r in runs)  # noqa: E731
        print(f"{what + ' c=' + str(connections):<20} {f'{b:.0f} ({per_round(before)})':>24} "
              f"{f'{a:.0f} ({per_round(after)})':>24} {a / b:6.2f} "
              f"{statistics.median(r['cpu_us'] for r in before):18.0f} {statistics.median(r['cpu_us'] for r in after):8.0f}")
    print("\nCPU us per request by process, median over the rounds (before -> this tree):")
    for what, connections in plan:
        before = results[(sides[0].name, what, connections)]
        after = results[(sides[1].name, what, connections)]
        parts = sorted({p for r in before + after for p in r["cpu_parts"]})
        shown = []
        for part in parts:
            b = statistics.median(r["cpu_parts"].get(part, 0.0) for r in before)
            a = statistics.median(r["cpu_parts"].get(part, 0.0) for r in after)
            if max(a, b) >= 5:
                shown.append(f"{part} {b:.0f} -> {a:.0f}")
        print(f"  {what} c={connections}: " + ", ".join(shown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
