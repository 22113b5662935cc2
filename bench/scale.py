"""make bench's "1 M rows" section: every list, stats and dashboard page at 1,000 and at 1,000,000 rows.

    make bench BENCH_ARGS=--million        the usual bench, then this section (about 5 more minutes)
    make bench BENCH_ARGS=--million-only   only this section

Starts its own system (throwaway database, free ports), fills the test merchant with 1,000
payments and 1,000 webhook deliveries (`make seed-demo`'s seeder), times each request (p50 of
single sequential requests, after a warm-up), then adds 999,000 of each and times them again.
Goal: API p50 <= 50 ms and dashboard pages <= 100 ms at 1 M. The table goes into
bench/RESULTS.md under "## 1 M rows".
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import psycopg
import requests

from bench.run import AUTH, SCALE_HEADING, BenchStack, replace_section
from tools import seed_demo

SMALL, LARGE = 1_000, 1_000_000
SAMPLES = 15
API_GOAL_MS, PAGE_GOAL_MS = 50.0, 100.0


def p50(session: requests.Session, url: str, **kwargs: object) -> tuple[float, int]:
    """Median wall time (ms) of single requests, after two warm-ups; and the last status."""
    times = []
    status = 0
    for i in range(SAMPLES + 2):
        started = time.perf_counter()
        response = session.get(url, timeout=60, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        status = response.status_code
        if i >= 2:
            times.append(elapsed)
    return statistics.median(times), status


def positions(db_url: str) -> dict[str, str]:
    """Ids in the middle of the merchant's history, for cursors and detail pages."""
    with psycopg.connect(db_url) as conn:
        def one(sql: str) -> str:
            return conn.execute(sql, (seed_demo.TEST_MERCHANT_ID,)).fetchone()[0]

        n = conn.execute("SELECT count(*) FROM payments.payments WHERE merchant_id = %s",
                         (seed_demo.TEST_MERCHANT_ID,)).fetchone()[0]
        return {
            "payment": one(f"SELECT id FROM payments.payments WHERE merchant_id = %s ORDER BY created_at DESC, id DESC OFFSET {n // 2} LIMIT 1"),
            "refunded": one("SELECT payment_id FROM refunds.refunds WHERE merchant_id = %s ORDER BY created_at DESC LIMIT 1"),
            "delivery": one(f"SELECT id FROM webhooks.deliveries WHERE merchant_id = %s ORDER BY seq DESC OFFSET {n // 2} LIMIT 1"),
            "delivered": one("SELECT payment_id FROM webhooks.deliveries WHERE merchant_id = %s ORDER BY seq DESC OFFSET 10 LIMIT 1"),
            # Events past the 30 days' retention are being pruned (a third of 90 days' history stays).
            "event": one(f"SELECT id FROM webhooks.events WHERE merchant_id = %s ORDER BY seq DESC OFFSET {n // 6} LIMIT 1"),
        }


def requests_to_time(ids: dict[str, str]) -> list[tuple[str, str, str]]:
    """(kind, label, path): API paths under /api/v1, dashboard paths under the dashboard."""
    return [
        ("api", "GET /payments?limit=10", "/payments?limit=10"),
        ("api", "GET /payments/list?limit=10", "/payments/list?limit=10"),
        ("api", "GET /payments?status=failed", "/payments?limit=10&status=failed"),
        ("api", "GET /payments?method=card", "/payments?limit=10&method=card"),
        ("api", "GET /payments?status=failed&method=card", "/payments?limit=10&status=failed&method=card"),
        ("api", "GET /payments?q=<payment id>", f"/payments?limit=10&q={ids['payment']}"),
        ("api", "GET /payments?starting_after=<middle>", f"/payments?limit=10&starting_after={ids['payment']}"),
        ("api", "GET /payments?ending_before=<middle>", f"/payments?limit=10&ending_before={ids['payment']}"),
        ("api", "GET /payments?offset=500 (offset costs O(offset))", "/payments?limit=10&offset=500"),
        ("api", "GET /payments/{id}", f"/payments/{ids['payment']}"),
        ("api", "GET /payments/stats", "/payments/stats"),
        ("api", "GET /orders?limit=10", "/orders?limit=10"),
        ("api", "GET /refunds?limit=10", "/refunds?limit=10"),
        ("api", "GET /payments/{id}/refunds", f"/payments/{ids['refunded']}/refunds"),
        ("api", "GET /webhooks?limit=10", "/webhooks?limit=10"),
        ("api", "GET /webhooks?payment_id=<id>", f"/webhooks?limit=20&payment_id={ids['delivered']}"),
        ("api", "GET /webhooks?starting_after=<middle>", f"/webhooks?limit=10&starting_after={ids['delivery']}"),
        ("api", "GET /events?limit=10", "/events?limit=10"),
        ("api", "GET /events?type=payment.*", "/events?limit=10&type=payment.*"),
        ("api", "GET /events?type=payment.failed", "/events?limit=10&type=payment.failed"),
        ("api", "GET /events?starting_after=<middle>", f"/events?limit=10&starting_after={ids['event']}"),
        ("api", "GET /events/{id}", f"/events/{ids['event']}"),
        ("api", "GET /test/jobs/status", "/test/jobs/status"),
        ("page", "dashboard: overview", "/dashboard"),
        ("page", "dashboard: overview poll (/dashboard/api/overview)", "/dashboard/api/overview"),
        ("page", "dashboard: transactions", "/dashboard/transactions"),
        ("page", "dashboard: transactions filtered (failed, card)", "/dashboard/transactions?status=failed&method=card"),
        ("page", "dashboard: transactions poll", "/dashboard/api/payments"),
        ("page", "dashboard: payment detail", f"/dashboard/transactions/{ids['refunded']}"),
        ("page", "dashboard: refunds", "/dashboard/refunds"),
        ("page", "dashboard: webhooks", "/dashboard/webhooks"),
        ("page", "dashboard: webhooks poll", "/dashboard/api/webhooks"),
        ("page", "dashboard: events", "/dashboard/events"),
    ]


def login(dashboard: str) -> requests.Session:
    """A dashboard session of the test merchant (the login form and its CSRF token)."""
    session = requests.Session()
    form = session.get(f"{dashboard}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    data = {"email": "test@example.com", "password": "password123", **({"csrf_token": token.group(1)} if token else {})}
    response = session.post(f"{dashboard}/login", data=data, timeout=10, allow_redirects=False)
    if response.status_code not in (302, 303):
        raise RuntimeError(f"dashboard login failed: {response.status_code} {response.text[:200]}")
    return session


def measure(api: str, dashboard: str, db_url: str) -> dict[str, tuple[float, int]]:
    """p50 of each request at the data there is now."""
    ids = positions(db_url)
    api_session = requests.Session()
    api_session.headers.update(AUTH)
    page_session = login(dashboard)
    figures = {}
    for kind, label, path in requests_to_time(ids):
        if kind == "api":
            figures[label] = p50(api_session, f"{api}{path}")
        else:
            figures[label] = p50(page_session, f"{dashboard}{path}")
        print(f"  {label:<58} {figures[label][0]:8.1f} ms  ({figures[label][1]})", flush=True)
    return figures


def run(results: Path) -> int:
    """Start a system, time the requests at 1,000 and at 1,000,000 rows, write the section."""
    bench = BenchStack.new()
    api = f"http://127.0.0.1:{bench.ports['PORT']}/api/v1"
    dashboard = f"http://127.0.0.1:{bench.ports['DASHBOARD_PORT']}"
    with bench.running():
        print("1 M rows: system up; seeding 1,000 payments and deliveries", flush=True)
        seed_demo.seed(bench.db_url, SMALL, SMALL, run_migrations=False)
        small = measure(api, dashboard, bench.db_url)
        print(f"1 M rows: adding {LARGE - SMALL:,} payments and deliveries", flush=True)
        seeded = seed_demo.seed(bench.db_url, LARGE - SMALL, LARGE - SMALL, run_migrations=False).steps
        large = measure(api, dashboard, bench.db_url)
    lines = [
        "",
        "## 1 M rows",
        "",
        f"`make bench BENCH_ARGS=--million` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): the test merchant with",
        f"{SMALL:,} payments and {SMALL:,} webhook deliveries, then with {LARGE:,} of each (`make seed-demo`'s seeder:",
        f"{LARGE - SMALL:,} of each added in {seeded.get('total', 0):.0f} s). p50 of {SAMPLES} single sequential requests",
        "through the gateway (API: key and secret; pages: a dashboard session). Goal at 1 M: API <= 50 ms,",
        "dashboard pages <= 100 ms.",
        "",
        f"| request | {SMALL:,} rows | {LARGE:,} rows | goal at 1 M |",
        "|---|---|---|---|",
    ]
    failed = 0
    for kind, label, _ in requests_to_time({"payment": "", "refunded": "", "delivery": "", "delivered": "", "event": ""}):
        goal = API_GOAL_MS if kind == "api" else PAGE_GOAL_MS
        (a, sa), (b, sb) = small[label], large[label]
        ok = b <= goal and sa < 400 and sb < 400
        failed += not ok
        status = "" if sa < 400 and sb < 400 else f" (HTTP {sa}/{sb})"
        lines.append(f"| {label} | {a:.1f} ms | {b:.1f} ms{status} | <= {goal:.0f} ms {'met' if ok else 'NOT met'} |")
    lines.append("")
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    results.write_text(replace_section(text, SCALE_HEADING, "\n".join(lines)))
    print("\n".join(lines))
    print(f"\nwrote {results}")
    return 0 if failed == 0 else 1
