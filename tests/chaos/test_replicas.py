"""Replicas under faults: payments, refunds and webhooks through 2-3 replicas of every API service and
worker, with one replica of each SIGKILLed mid-run and started again.

Run with ``make test-chaos`` (``pytest -m chaos``). nginx runs under honcho; every replica is started
here from the stack's own Procfile entries (tools/stack.py, SCALE), so one can be killed alone. The
throughput figures (one replica of each, then all of them, no faults) are printed: on a 2-core
machine replicas add no CPU, so the point of this test is correctness, not speed.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests

from bench.receiver import Receiver
from tools import stack as stack_tool

from .conftest import ChaosStack, PrivatePostgres, PrivateRedis, free_port, running_chaos_stack, wait_for

pytestmark = pytest.mark.chaos

SCALE = {"auth": 2, "payments": 3, "refunds": 2, "webhooks": 2,
         "payments-worker": 2, "refunds-worker": 2, "webhooks-worker": 3}
API = ("auth", "payments", "refunds", "webhooks")
FLOWS = 2000
# Flows of the throughput measurements, with one replica of each part and then with all of them.
MEASURED_FLOWS = 300
# Creators and refunders: client threads, as many as the 2 cores keep busy without starving the stack.
CLIENTS = 12
BANK_DELAY_MS = 500
# Every 10th payment gets two refunds of 60% at once (one must be refused); the others one of 50%.
DOUBLE_REFUND_EVERY = 10


def replica_names(part: str) -> list[str]:
    return [part] + [f"{part}-{n}" for n in range(2, SCALE[part] + 1)]


def _port_answers(port: str) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


def wait_replicas_ready(stack: ChaosStack, names: list[str], timeout: float = 90) -> None:
    """Wait until each named replica answers: an API replica its /health, a worker its metrics port."""
    by_name = {}
    for part in SCALE:
        for name, port in zip(replica_names(part), stack_tool.replica_ports(stack.env, part), strict=True):
            by_name[name] = (part, port)

    def ready(name: str) -> bool:
        part, port = by_name[name]
        if part in API:
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        return _port_answers(port)

    for name in names:
        proc = stack.workers.get(name)
        wait_for(f"replica {name} ready", lambda name=name, proc=proc: (proc is None or proc.poll() is None) and ready(name),
                 timeout=timeout, interval=0.2)


@pytest.fixture(scope="module")
def replica_stack(private_redis: PrivateRedis, private_postgres: PrivatePostgres) -> Iterator[ChaosStack]:
    """nginx under honcho; every replica of SCALE listed in its upstreams, only the first of each started."""
    # Each replica's port chosen free here (<PREFIX>_PORTS); one gunicorn process per API replica, so a
    # replica is one process group and the stack's processes stay within its connection budget.
    overrides = {
        "SCALE": " ".join(f"{part}={count}" for part, count in SCALE.items()),
        **{f"{part.upper()}_WORKERS": "1" for part in API},
        "TEST_PROCESSING_DELAY": str(BANK_DELAY_MS),
        # How long a killed worker's claims wait before another takes them (defaults 30 s and 60 s):
        # shorter here, so the test does not wait out the defaults.
        "REFUNDS_LEASE_SECONDS": "10",
        "WEBHOOK_LEASE_SECONDS": "15",
        # A request waits for a pooled connection rather than answering 503 after 5 s: the replicas'
        # pools are small (the budget's share), and a test below holds them all on a table lock.
        "DB_POOL_TIMEOUT": "30",
    }
    for part, prefix in stack_tool.SCALABLE.items():
        ports = [str(free_port()) for _ in range(SCALE.get(part, 1))]
        overrides[f"{prefix}_PORTS"] = ",".join(ports)
        overrides[f"{prefix}_PORT"] = ports[0]
    firsts = tuple(SCALE)
    with running_chaos_stack(private_redis, private_postgres, stack_parts=("nginx",), processes=firsts,
                             overrides=overrides, ready=lambda stack: wait_replicas_ready(stack, list(firsts))) as stack:
        yield stack


# --------------------------------------------------------------------------- the merchant's side


@dataclass
class Flows:
    """What the clients did: payments and refunds they created, and every answer that was not a success."""

    payments: dict[str, int] = field(default_factory=dict)  # payment id -> amount
    refunds: dict[str, tuple[str, int]] = field(default_factory=dict)  # refund id -> (payment id, amount)
    refused: dict[str, int] = field(default_factory=dict)  # payment id -> refunds refused as exceeding it
    failures: list[tuple[str, int, str]] = field(default_factory=list)  # (request, status or 0, body)
    answers: Counter = field(default_factory=Counter)
    requests: int = 0
    started: float = 0.0
    finished: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_local = threading.local()


def _call(flows: Flows, what: str, method: str, url: str, headers: dict, body: dict | None = None) -> requests.Response | None:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    try:
        response = session.request(method, url, json=body, headers=headers, timeout=30)
    except requests.RequestException as exc:
        with flows.lock:
            flows.requests += 1
            flows.failures.append((what, 0, repr(exc)[:300]))
        return None
    with flows.lock:
        flows.requests += 1
        flows.answers[(what, response.status_code)] += 1
        if response.status_code >= 500:
            flows.failures.append((what, response.status_code, response.text[:300]))
    return response


def run_flows(api: str, headers: dict, count: int, tag: str, on_created=None) -> Flows:
    """Run ``count`` flows: create a payment (Idempotency-Key), read it until final, refund it (Idempotency-Key).

    Creators and refunders run side by side: a payment is read again every 0.3 s from the bank's delay on.
    """
    flows = Flows(started=time.monotonic())
    due: list[tuple[float, int, str]] = []
    due_lock = threading.Condition()
    created_count = [0]
    remaining = [count]
    counter = iter(range(10**9))

    def create(i: int) -> None:
        amount = 10_000 + i
        response = _call(flows, "POST /payments", "POST", f"{api}/payments",
                         {**headers, "Idempotency-Key": f"{tag}-pay-{i}"},
                         {"amount": amount, "currency": "INR", "method": "upi", "vpa": "success@upi"})
        with due_lock:
            if response is not None and response.status_code == 201:
                payment = response.json()
                flows.payments[payment["id"]] = amount
                heapq.heappush(due, (time.monotonic() + BANK_DELAY_MS / 1000, next(counter), payment["id"]))
                created_count[0] += 1
            else:
                remaining[0] -= 1
                if response is not None:
                    flows.failures.append(("POST /payments", response.status_code, response.text[:300]))
            due_lock.notify()
        if on_created is not None:
            on_created(created_count[0])

    def refund(payment_id: str) -> None:
        amount = flows.payments[payment_id]
        n = int(payment_id.encode().hex(), 16) % DOUBLE_REFUND_EVERY
        parts = [amount * 6 // 10, amount * 6 // 10] if n == 0 else [amount // 2]

        def one(k: int, part: int) -> None:
            response = _call(flows, "POST /payments/{id}/refunds", "POST", f"{api}/payments/{payment_id}/refunds",
                             {**headers, "Idempotency-Key": f"{tag}-rfnd-{payment_id}-{k}"}, {"amount": part, "reason": tag})
            if response is None:
                return
            with flows.lock:
                if response.status_code == 201:
                    flows.refunds[response.json()["id"]] = (payment_id, part)
                elif response.status_code == 400 and "exceeds" in response.text:
                    flows.refused[payment_id] = flows.refused.get(payment_id, 0) + 1
                elif response.status_code < 500:
                    flows.failures.append(("POST /payments/{id}/refunds", response.status_code, response.text[:300]))

        if len(parts) == 1:
            one(0, parts[0])
        else:
            both = [threading.Thread(target=one, args=(k, part)) for k, part in enumerate(parts)]
            for thread in both:
                thread.start()
            for thread in both:
                thread.join()

    def refunder() -> None:
        while True:
            with due_lock:
                while not due or due[0][0] > time.monotonic():
                    if remaining[0] == 0:
                        return
                    due_lock.wait(timeout=0.05 if due else 0.2)
                _, _, payment_id = heapq.heappop(due)
            try:
                response = _call(flows, "GET /payments/{id}", "GET", f"{api}/payments/{payment_id}", headers)
                status = response.json().get("status") if response is not None and response.status_code == 200 else None
                if status in ("pending", "processing"):
                    with due_lock:
                        heapq.heappush(due, (time.monotonic() + 0.3, next(counter), payment_id))
                    continue
                if status == "success":
                    refund(payment_id)
                elif response is not None and response.status_code != 200:
                    flows.failures.append(("GET /payments/{id}", response.status_code, response.text[:300]))
            except Exception as exc:  # an answer this client cannot read is a failure to report, not a hang
                flows.failures.append(("flow of " + payment_id, 0, repr(exc)[:300]))
            with due_lock:
                remaining[0] -= 1
                due_lock.notify_all()

    refunders = [threading.Thread(target=refunder, daemon=True) for _ in range(CLIENTS)]
    for thread in refunders:
        thread.start()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(create, range(count)))
    for thread in refunders:
        thread.join(timeout=300)
    flows.finished = time.monotonic()
    return flows


# --------------------------------------------------------------------------- checks against the database


def settled(stack: ChaosStack, flows: Flows, receiver: Receiver, merchant_id: str) -> dict | None:
    """What is still under way for these flows; None when everything is final, processed and delivered."""
    payment_ids, refund_ids = list(flows.payments), list(flows.refunds)
    open_payments = stack.query(
        "SELECT count(*) FROM payments.payments WHERE id = ANY(%s) AND status NOT IN ('success', 'failed')", (payment_ids,))[0][0]
    open_refunds = stack.query(
        "SELECT count(*) FROM refunds.refunds WHERE id = ANY(%s) AND status <> 'processed'", (refund_ids,))[0][0]
    behind = stack.query(
        "SELECT count(*) FROM payments.payments p WHERE p.id = ANY(%s) AND p.amount_refunded <> "
        "(SELECT coalesce(sum(r.amount), 0) FROM refunds.refunds r WHERE r.payment_id = p.id AND r.status = 'processed')",
        (payment_ids,))[0][0]
    expected = expected_events(stack, merchant_id)
    received = {event_id for _, _, event_id in receiver.received()}
    undelivered = len(set(expected) - received)
    if open_payments or open_refunds or behind or undelivered:
        return {"payments not final": open_payments, "refunds not processed": open_refunds,
                "payments whose amount_refunded lags": behind, "events not delivered": undelivered}
    return None


def expected_events(stack: ChaosStack, merchant_id: str) -> dict[str, tuple[str, str]]:
    """Every event of the merchant in both outboxes: event id -> (event type, payment or refund id)."""
    rows = stack.query(
        "SELECT event_id, event_type, payload->'data'->'payment'->>'id' FROM payments.outbox WHERE merchant_id = %s "
        "UNION ALL SELECT event_id, event_type, payload->'data'->'refund'->>'id' FROM refunds.outbox WHERE merchant_id = %s",
        (merchant_id, merchant_id),
    )
    return {event_id: (event_type, subject) for event_id, event_type, subject in rows}


def problems_after(stack: ChaosStack, flows: Flows, receiver: Receiver, merchant_id: str) -> list[str]:
    """Every broken promise, in words (empty when none)."""
    problems: list[str] = []
    payment_ids = list(flows.payments)
    # Every payment final exactly once: a final status, and one final event.
    rows = stack.query(
        "SELECT p.id, p.status, (SELECT count(*) FROM payments.outbox o WHERE o.event_type IN ('payment.success', 'payment.failed') "
        "AND o.payload->'data'->'payment'->>'id' = p.id) FROM payments.payments p WHERE p.id = ANY(%s)", (payment_ids,))
    if len(rows) != len(payment_ids):
        problems.append(f"{len(payment_ids) - len(rows)} payments the clients were given are not in the database")
    not_once = [(pid, status, n) for pid, status, n in rows if status not in ("success", "failed") or n != 1]
    if not_once:
        problems.append(f"{len(not_once)} payments not final exactly once (id, status, final events): {not_once[:5]}")
    extra = stack.query("SELECT count(*) FROM payments.payments WHERE merchant_id = %s AND NOT (id = ANY(%s))",
                        (merchant_id, payment_ids))[0][0]
    if extra:
        problems.append(f"{extra} payments no client was told about (a POST done twice?)")

    # Every refund once: the refunds in the database are the ones clients were given, each processed once.
    db_refunds = stack.query(
        "SELECT r.id, r.payment_id, r.amount, r.status, "
        "(SELECT count(*) FROM refunds.outbox o WHERE o.event_type = 'refund.processed' AND o.payload->'data'->'refund'->>'id' = r.id) "
        "FROM refunds.refunds r WHERE r.merchant_id = %s", (merchant_id,))
    known = set(flows.refunds)
    unknown = [row[0] for row in db_refunds if row[0] not in known]
    if unknown:
        problems.append(f"{len(unknown)} refunds no client was told about (a POST done twice?): {unknown[:5]}")
    if len(db_refunds) - len(unknown) != len(known):
        problems.append(f"{len(known) - (len(db_refunds) - len(unknown))} refunds given to clients are missing")
    not_once = [row for row in db_refunds if row[3] != "processed" or row[4] != 1]
    if not_once:
        problems.append(f"{len(not_once)} refunds not processed exactly once (id, payment, amount, status, events): {not_once[:5]}")

    # The refund invariant: never more than the payment; amount_refunded is the processed refunds' sum;
    # of two 60% refunds sent at once, exactly one was accepted.
    over = stack.query(
        "SELECT p.id, p.amount, p.amount_refunded, coalesce(sum(r.amount), 0) FROM payments.payments p "
        "LEFT JOIN refunds.refunds r ON r.payment_id = p.id WHERE p.id = ANY(%s) GROUP BY p.id "
        "HAVING coalesce(sum(r.amount), 0) > p.amount OR p.amount_refunded <> coalesce(sum(r.amount) FILTER (WHERE r.status = 'processed'), 0)",
        (payment_ids,))
    if over:
        problems.append(f"{len(over)} payments break the refund invariant (id, amount, amount_refunded, refunds): {over[:5]}")
    per_payment = Counter(payment_id for payment_id, _ in flows.refunds.values())
    doubles = [pid for pid in flows.refused if per_payment[pid] != 1 or flows.refused[pid] != 1]
    if doubles:
        problems.append(f"{len(doubles)} payments given two 60% refunds at once did not take exactly one: {doubles[:5]}")
    if not flows.refused:
        problems.append("no payment got two refunds at once: the invariant was not put to the test")

    # Every webhook delivered at least once; what came twice is the same event id again, never a second
    # event for the same thing; one delivery row per event.
    expected = expected_events(stack, merchant_id)
    received = receiver.received()
    counts = Counter(event_id for _, _, event_id in received)
    missing = set(expected) - set(counts)
    if missing:
        problems.append(f"{len(missing)} events never delivered, e.g. {[expected[e] for e in list(missing)[:5]]}")
    strangers = set(counts) - set(expected)
    if strangers:
        problems.append(f"{len(strangers)} deliveries of events that are not in any outbox: {list(strangers)[:5]}")
    ids_per_fact = defaultdict(set)
    for event, subject, event_id in received:
        ids_per_fact[(event, subject)].add(event_id)
    twice = {fact: ids for fact, ids in ids_per_fact.items() if len(ids) > 1}
    if twice:
        problems.append(f"{len(twice)} facts delivered under two event ids: {list(twice.items())[:3]}")
    rows = stack.query("SELECT event_id, count(*) FROM webhooks.deliveries WHERE merchant_id = %s GROUP BY event_id HAVING count(*) > 1",
                       (merchant_id,))
    if rows:
        problems.append(f"{len(rows)} events with more than one delivery row: {rows[:5]}")

    # No 5xx (nor a dropped connection) reached a client.
    if flows.failures:
        problems.append(f"{len(flows.failures)} requests failed for the clients: {Counter((w, s) for w, s, _ in flows.failures)}; "
                        f"e.g. {flows.failures[:3]}")
    return problems


def retried_by_nginx(stack: ChaosStack) -> Counter:
    """Requests nginx sent to another replica because the first died or refused (from its error log)."""
    log = stack.run_dir / "nginx-error.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    found: Counter = Counter()
    for line in text.splitlines():
        if "while connecting to upstream" in line and "refused" in line:
            found["refused at connect"] += 1
        elif re.search(r"(prematurely closed|reset by peer).*while reading response header", line):
            method = "POST" if '"POST ' in line else "other"
            found[f"{method} cut off by a dying replica"] += 1
    return found


def new_merchant_id(stack: ChaosStack, headers: dict) -> str:
    response = requests.get(f"{stack.api}/merchant", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["id"]


@contextlib.contextmanager
def receiving_webhooks(stack: ChaosStack, headers: dict) -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        response = requests.put(f"{stack.api}/webhooks/config", json={"webhook_url": receiver.url}, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        yield receiver
    finally:
        receiver.close()


def measured(stack: ChaosStack, tag: str, count: int) -> tuple[float, float]:
    """Run ``count`` flows for a new merchant; return (client flows/s, flows/s until all settled). Asserts they are sound."""
    headers = stack.new_merchant(f"Replicas {tag}")
    merchant_id = new_merchant_id(stack, headers)
    with receiving_webhooks(stack, headers) as receiver:
        flows = run_flows(stack.api, headers, count, f"{tag}-{secrets.token_hex(3)}")
        wait_for(f"{tag}: everything settled", lambda: settled(stack, flows, receiver, merchant_id) is None, timeout=120, interval=0.5)
        done = time.monotonic()
        problems = problems_after(stack, flows, receiver, merchant_id)
    assert not problems, f"{tag}:\n" + "\n".join(problems)
    return len(flows.payments) / (flows.finished - flows.started), len(flows.payments) / (done - flows.started)


# --------------------------------------------------------------------------- the test


def test_replicas_of_every_service_and_worker_survive_sigkill_mid_run(replica_stack: ChaosStack):
    stack = replica_stack
    every = [name for part in SCALE for name in replica_names(part)]

    # Throughput with one replica of each part (the others are down: nginx sends their share elsewhere).
    single = measured(stack, "one-replica", MEASURED_FLOWS)
    for name in every:
        if name not in stack.workers:
            stack.start_worker(name)
    wait_replicas_ready(stack, every)
    several = measured(stack, "all-replicas", MEASURED_FLOWS)

    # The run under faults: once 40% of the payments are made, one replica of each part is SIGKILLed and,
    # two seconds later, started again.
    headers = stack.new_merchant("Replicas under faults")
    merchant_id = new_merchant_id(stack, headers)
    victims = [replica_names(part)[-1] for part in SCALE]
    killed = threading.Event()
    kill_report: dict[str, float] = {}

    def kill_and_restart() -> None:
        for name in victims:
            stack.kill_worker(name)
        kill_report["killed at"] = time.monotonic()
        time.sleep(2)
        for name in victims:
            stack.start_worker(name)
        wait_replicas_ready(stack, victims)
        kill_report["back after"] = time.monotonic() - kill_report["killed at"]

    killer = threading.Thread(target=kill_and_restart, daemon=True)

    def on_created(created: int) -> None:
        if created >= FLOWS * 4 // 10 and not killed.is_set():
            killed.set()
            killer.start()

    with receiving_webhooks(stack, headers) as receiver:
        flows = run_flows(stack.api, headers, FLOWS, f"faults-{secrets.token_hex(3)}", on_created=on_created)
        killer.join(timeout=120)
        assert "back after" in kill_report, f"the killed replicas did not come back: {kill_report}"
        try:
            wait_for("everything settled after the kills", lambda: settled(stack, flows, receiver, merchant_id) is None,
                     timeout=150, interval=1)
        except pytest.fail.Exception:
            pytest.fail(f"not settled: {settled(stack, flows, receiver, merchant_id)}\n{stack.worker_diagnostics()}", pytrace=False)
        settled_at = time.monotonic()
        problems = problems_after(stack, flows, receiver, merchant_id)
        redelivered = sum(n - 1 for n in Counter(e for _, _, e in receiver.received()).values())
        deliveries = len(receiver.received())

    assert len(flows.payments) == FLOWS, (f"{FLOWS - len(flows.payments)} payments not created; the clients saw: "
                                          f"{[f for f in flows.failures if f[0] == 'POST /payments'][:5]}")
    retried = retried_by_nginx(stack)
    print(f"\nreplicas {SCALE}; killed {victims} after {FLOWS * 4 // 10} payments, all back "
          f"{kill_report['back after']:.1f}s later\n"
          f"throughput, flows/s (payment, read until final, refund; client side / until all processed and delivered): "
          f"one replica each {single[0]:.0f} / {single[1]:.0f}; {sum(SCALE.values())} replicas {several[0]:.0f} / {several[1]:.0f}; "
          f"under the kills {FLOWS / (flows.finished - flows.started):.0f} / {FLOWS / (settled_at - flows.started):.0f}\n"
          f"{FLOWS} payments, {len(flows.refunds)} refunds ({sum(flows.refused.values())} refused as exceeding), "
          f"{flows.requests} requests: {dict(Counter(status for (_, status) in flows.answers.elements()))}; "
          f"{deliveries} webhook deliveries ({redelivered} redelivered); nginx sent on: {dict(retried)}")
    assert not problems, "\n".join(problems)


def held_by(stack: ChaosStack, names: list[str], client_ports: set[int]) -> dict[str, int]:
    """How many of these PostgreSQL client ports each named replica's processes hold (from /proc)."""
    inode_port = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            inode_port[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            children[int(stat.read_text().rsplit(")", 1)[1].split()[1])].append(int(stat.parent.name))
    held = {}
    for name in names:
        pids = [stack.workers[name].pid]
        pids += children.get(pids[0], [])
        ports = []
        for pid in pids:
            for fd in Path(f"/proc/{pid}/fd").glob("*"):
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        ports.append(inode_port.get(link[8:-1]))
        held[name] = sum(1 for port in ports if port in client_ports)
    return held


def test_a_post_cut_off_by_a_dying_replica_is_sent_again_only_with_its_key(replica_stack: ChaosStack):
    """POSTs held in the payments replicas by a table lock; the replica holding most is SIGKILLed.

    Eight carry an Idempotency-Key, one does not: the victim holds at least two keyed POSTs (9 over
    3 replicas), which must still answer 201, once each; the unkeyed one answers 201, or, if it was
    in the victim, the 503 that says it may have been done.
    """
    stack = replica_stack
    headers = stack.new_merchant("Replicas cut off")
    names = replica_names("payments")
    log_file = stack.run_dir / "nginx-error.log"
    log_before = len(log_file.read_text(errors="replace"))
    results: dict[str, tuple[int, str]] = {}
    waiting = ("SELECT client_port FROM pg_stat_activity WHERE application_name = 'payments' AND wait_event_type = 'Lock' "
               "AND query LIKE '%%payments.payments%%'")
    lock = psycopg.connect(stack.postgres.url(stack.database))
    try:
        # Payments can be read but not written while this lock is held: each POST waits in its replica.
        lock.execute("LOCK TABLE payments.payments IN SHARE MODE")

        def post(name: str, key: str | None) -> None:
            response = requests.post(f"{stack.api}/payments", headers={**headers, **({"Idempotency-Key": key} if key else {})},
                                     json={"amount": 2500, "currency": "INR", "method": "upi", "vpa": "success@upi",
                                           "order_id": name}, timeout=60)
            results[name] = (response.status_code, response.text)

        posts = [threading.Thread(target=post, args=(f"cut-keyed-{n}", f"cut-{secrets.token_hex(4)}")) for n in range(8)]
        posts.append(threading.Thread(target=post, args=("cut-unkeyed-0", None)))
        for thread in posts:
            thread.start()
        # Each replica's pool holds 3 connections (the budget's share): most of the 9 wait in PostgreSQL
        # (nginx's two workers may send one replica more than 3; those wait for a connection in it).
        def in_postgresql() -> set[int] | None:
            first = {port for (port,) in stack.query(waiting)}
            time.sleep(1.0)
            second = {port for (port,) in stack.query(waiting)}
            return second if second == first and len(second) >= 7 else None

        held = held_by(stack, names, wait_for("the POSTs waiting in their replicas for the lock", in_postgresql, timeout=30))
        victim = max(held, key=held.get)
        stack.kill_worker(victim)
        time.sleep(0.5)
    finally:
        lock.commit()
        lock.close()
    for thread in posts:
        thread.join(timeout=60)
    stack.start_worker(victim)
    wait_replicas_ready(stack, [victim])

    assert sum(held.values()) >= 7 and held[victim] >= 3, held
    keyed = {name: answer for name, answer in results.items() if "-keyed-" in name}
    assert len(keyed) == 8 and all(status == 201 for status, _ in keyed.values()), results
    unkeyed_status, unkeyed_body = results["cut-unkeyed-0"]
    assert unkeyed_status == 201 or (unkeyed_status == 503 and "may or may not have been done: send it again with an "
                                     "Idempotency-Key" in unkeyed_body), unkeyed_body
    made = dict(stack.query("SELECT order_id, count(*) FROM payments.payments WHERE order_id LIKE 'cut-%%' GROUP BY 1"))
    assert all(made.get(name) == 1 for name in keyed), made
    assert made.get("cut-unkeyed-0", 0) <= 1, made
    # nginx's log names each POST cut off in the victim: the keyed ones among them were sent again.
    port = stack_tool.replica_ports(stack.env, "payments")[names.index(victim)]
    log = log_file.read_text(errors="replace")[log_before:]
    cut = sum(1 for line in log.splitlines() if "[error]" in line and '"POST /api/v1/payments HTTP/1.1"' in line
              and f"upstream: \"http://127.0.0.1:{port}/" in line)
    assert cut >= held[victim], log[-3000:]
    assert cut - (unkeyed_status == 503) >= 2, f"fewer than 2 keyed POSTs were cut off: {cut} cut, unkeyed {unkeyed_status}"
