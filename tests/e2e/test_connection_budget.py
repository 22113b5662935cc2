"""A stack holds at most its connection budget of PostgreSQL connections, even under load, so a
second stack (``make test`` while ``make run`` is up) fits beside it in a default PostgreSQL.

The peak is sampled from ``pg_stat_activity`` (each stack has its own database) every 20 ms while
clients create, read, list, capture and refund payments as fast as 32 threads can.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter

import pytest
import requests
from gateway_common.testing import PeakConnections

from tests.conftest import TEST_KEY, TEST_SECRET, running_stack
from tools import stack as stack_tool

pytestmark = pytest.mark.e2e

BUDGET = 30
MERCHANT = {"X-Api-Key": TEST_KEY, "X-Api-Secret": TEST_SECRET}


def _database_name(stack) -> str:
    return stack.database_url.rsplit("/", 1)[-1]


def _one_flow(api: str, i: int) -> list[int]:
    """An order, its payment, reads and lists; a direct payment; a capture and a partial refund once final."""
    statuses = []
    session = requests.Session()
    order = session.post(f"{api}/orders", json={"amount": 5000 + i}, headers=MERCHANT, timeout=30)
    statuses.append(order.status_code)
    paid = session.post(
        f"{api}/payments", json={"order_id": order.json()["id"], "method": "upi", "vpa": "ok@upi"},
        headers=MERCHANT, timeout=30,
    )
    statuses.append(paid.status_code)
    direct = session.post(f"{api}/payments", json={"amount": 700, "method": "upi", "vpa": "ok@upi"}, headers=MERCHANT,
                          timeout=30)
    statuses.append(direct.status_code)
    for _ in range(3):
        statuses.append(session.get(f"{api}/payments/{direct.json()['id']}", headers=MERCHANT, timeout=30).status_code)
    statuses.append(session.get(f"{api}/payments?limit=10", headers=MERCHANT, timeout=30).status_code)
    statuses.append(session.get(f"{api}/payments/stats", headers=MERCHANT, timeout=30).status_code)
    statuses.append(session.get(f"{api}/webhooks?limit=10", headers=MERCHANT, timeout=30).status_code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        payment = session.get(f"{api}/payments/{paid.json()['id']}", headers=MERCHANT, timeout=30).json()
        if payment["status"] in {"success", "failed"}:
            break
        time.sleep(0.2)
    if payment["status"] == "success":
        statuses.append(session.post(f"{api}/payments/{payment['id']}/capture", json={}, headers=MERCHANT,
                                     timeout=30).status_code)
        statuses.append(session.post(f"{api}/payments/{payment['id']}/refunds", json={"amount": 100},
                                     headers=MERCHANT, timeout=30).status_code)
    return statuses


def _load(api: str, flows: int) -> Counter[int]:
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        return Counter(code for codes in pool.map(lambda i: _one_flow(api, i), range(flows)) for code in codes)


def test_the_stack_budget_is_thirty_and_fits_the_default_server(stack):
    budget = stack_tool.connection_budget(stack.env)
    assert sum(budget.values()) == BUDGET, budget
    # PostgreSQL's default: max_connections 100, 3 reserved for superusers. Two stacks and the
    # integration tests' own pools (at most 32 at once) fit.
    assert stack_tool.budget_problem(budget, 100, 3, BUDGET + 32) is None
    assert "may hold up to 30" in stack_tool.budget_problem(budget, 100, 3, 80)


def test_a_stack_under_load_stays_within_its_budget(stack, gateway_backing):
    with PeakConnections(gateway_backing.admin_url, [_database_name(stack)], stack_tool.application_names()) as peak:
        codes = _load(stack.api, 150)
    assert set(codes) <= {200, 201}, codes
    assert codes[201] >= 450  # every flow created its order and payments
    assert 0 < peak.peak[_database_name(stack)] <= BUDGET, peak.peak


def test_a_second_stack_runs_beside_this_one_both_under_load(stack, gateway_backing, tmp_path):
    # What `make run` next to `make test` amounts to: two whole stacks on one PostgreSQL.
    redis_index = (int(gateway_backing.run_id[-2:], 16) + 7) % 15 + 1
    with running_stack(gateway_backing, tmp_path, f"{gateway_backing.run_id}b", redis_index) as second:
        names = [_database_name(stack), _database_name(second)]
        with PeakConnections(gateway_backing.admin_url, names, stack_tool.application_names()) as peak:
            with concurrent.futures.ThreadPoolExecutor(2) as both:
                results = list(both.map(lambda s: _load(s.api, 60), [stack, second]))
    for codes in results:
        assert set(codes) <= {200, 201}, codes
        assert codes[201] >= 180
    assert all(0 < peak.peak[name] <= BUDGET for name in names), peak.peak
