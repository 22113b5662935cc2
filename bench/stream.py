"""make bench's "Live event stream" section: 20 listeners of GET /events/stream during a burst of events.

    make bench BENCH_ARGS=--stream        the usual bench, then this section (about a minute more)
    make bench BENCH_ARGS=--stream-only   only this section

Starts its own system (throwaway database, free ports), connects LISTENERS listeners to the test
merchant's stream through nginx, then sends a burst of PAYMENTS payments with wrk (each makes
payment.created, payment.pending and payment.success: three events). Reports how fast the events
were stored and streamed, whether every listener got every event exactly once, and how long after a
payment turned final its payment.success reached the listeners. The table goes into
bench/RESULTS.md under "## Live event stream".
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import requests
from gateway_common.testing import PeakConnections

from bench.run import AUTH, STREAM_HEADING, BenchStack, final_times, pct, replace_section, wrk_burst
from tools import stack as stack_tool

LISTENERS = 20
PAYMENTS = 1000
EVENTS_PER_PAYMENT = 3
GOAL_RATE = 1000  # events a second, to every listener
ARRIVAL_GOAL_MS = 1000  # payment final -> payment.success at a listener, p95


class Listener(threading.Thread):
    """One stream client: the first arrival time of each event id, and of each payment's payment.success."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.arrivals: dict[str, float] = {}
        self.success_at: dict[str, float] = {}
        self.repeats = 0
        self.connected = threading.Event()
        self.error: str | None = None
        self._response: requests.Response | None = None

    def run(self) -> None:
        event_id = kind = None
        try:
            with requests.get(self.url, headers=AUTH, stream=True, timeout=(5, 60)) as response:
                self._response = response
                if response.status_code != 200:
                    self.error = f"HTTP {response.status_code}"
                    return
                for line in response.iter_lines():
                    now = time.time()
                    if line.startswith(b": connected"):
                        self.connected.set()
                    elif line.startswith(b"id: "):
                        event_id = line[4:].decode()
                    elif line.startswith(b"event: "):
                        kind = line[7:]
                    elif line.startswith(b"data: ") and event_id is not None:
                        if event_id in self.arrivals:
                            self.repeats += 1
                        else:
                            self.arrivals[event_id] = now
                            if kind == b"payment.success":
                                self.success_at[json.loads(line[6:])["data"]["payment"]["id"]] = now
                        event_id = kind = None
        except (requests.RequestException, AttributeError, ValueError) as exc:
            if self._response is None or not self.connected.is_set():
                self.error = type(exc).__name__
        finally:
            self.connected.set()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()


def measure(api: str, db_url: str, tag: str) -> list[tuple[str, str, str]]:
    """Run the burst with the listeners attached; return the section's rows."""
    listeners = [Listener(f"{api}/events/stream") for _ in range(LISTENERS)]
    for listener in listeners:
        listener.start()
    for listener in listeners:
        listener.connected.wait(30)
    broken = [listener.error for listener in listeners if listener.error]
    if broken:
        return [("stream: listeners connected", f"{LISTENERS - len(broken)} of {LISTENERS} ({broken[0]})", "")]
    started = time.time()
    body = json.dumps({"amount": 10000, "currency": "INR", "method": "upi", "vpa": "success@upi", "order_id": tag})
    wrk_burst(f"{api}/payments", PAYMENTS, body, db_url, tag)
    with psycopg.connect(db_url) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM payments.payments WHERE order_id = %s", (tag,))]
    expected = EVENTS_PER_PAYMENT * len(ids)
    deadline = time.time() + 120
    while time.time() < deadline and min(len(listener.arrivals) for listener in listeners) < expected:
        time.sleep(0.2)
    for listener in listeners:
        listener.close()
    finals = final_times(db_url, ids)
    got = [len(listener.arrivals) for listener in listeners]
    repeats = sum(listener.repeats for listener in listeners)
    firsts = [min(listener.arrivals.values()) for listener in listeners if listener.arrivals]
    lasts = [max(listener.arrivals.values()) for listener in listeners if listener.arrivals]
    span = max(lasts) - min(firsts) if firsts else 0.0
    rate = min(got) / span if span > 0 else 0.0
    lag = [at - finals[payment_id] for listener in listeners for payment_id, at in listener.success_at.items()
           if payment_id in finals]
    rows = [
        ("stream: listeners (one merchant, through nginx)", f"{LISTENERS}", ""),
        (f"stream: burst of {len(ids)} payments (wrk, c=32), events made", f"{expected}", ""),
        ("stream: events each listener got (fewest / most), repeats", f"{min(got)} / {max(got)} of {expected}, {repeats}",
         "goal every one, once" + (" met" if min(got) == expected and repeats == 0 else " NOT met")),
        ("stream: events per second to each listener (first to last arrival)", f"{rate:.0f} /s over {span:.1f} s",
         f"goal >= {GOAL_RATE} /s" + (" met" if rate >= GOAL_RATE else " NOT met")),
        ("stream: all events at every listener, after the first request", f"{max(lasts) - started:.1f} s" if lasts else "—", ""),
    ]
    if lag:
        p95 = pct(lag, 0.95) * 1000
        rows.append(("stream: payment final -> payment.success at a listener, p50 / p95",
                     f"{pct(lag, 0.5) * 1000:.0f} ms / {p95:.0f} ms",
                     f"goal p95 <= {ARRIVAL_GOAL_MS} ms" + (" met" if p95 <= ARRIVAL_GOAL_MS else " NOT met")))
    return rows


def run(results: Path) -> int:
    """Start a system, measure the stream under the burst, write the section."""
    bench = BenchStack.new()
    api = f"http://127.0.0.1:{bench.ports['PORT']}/api/v1"
    with bench.running():
        print(f"stream: system up; {LISTENERS} listeners, a burst of {PAYMENTS} payments", flush=True)
        with PeakConnections(bench.admin_url, [bench.db_name], stack_tool.application_names(), every=0.05) as peak:
            rows = measure(api, bench.db_url, f"stream_{bench.run_id}")
        budget = sum(stack_tool.connection_budget(bench.env).values())
        rows.append(("stream: PostgreSQL connections held by the stack, peak", f"{peak.peak[bench.db_name]}",
                     f"budget {budget} (the stream process: 1)"))
    lines = [
        "",
        STREAM_HEADING.strip(),
        "",
        f"`make bench BENCH_ARGS=--stream` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): {LISTENERS} clients",
        "listen to the test merchant's `GET /api/v1/events/stream` through nginx (its own process, one PostgreSQL",
        f"connection) while wrk sends a burst of {PAYMENTS} payments (three events each, 1 s bank delay).",
        "",
        "| measurement | result | goal |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
    ]
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    results.write_text(replace_section(text, STREAM_HEADING, "\n".join(lines)))
    print("\n".join(lines))
    print(f"\nwrote {results}")
    return 0 if all("NOT met" not in goal for _, _, goal in rows) else 1
