"""Deadlocks are retried, not outages; every 503 says why in one log line (real PostgreSQL)."""

from __future__ import annotations

import logging
import secrets
import threading

import psycopg
import pytest
from flask import jsonify
from gateway_common.config import Settings, with_user
from gateway_common.db import Database, PoolSettings, retry_on_conflict
from gateway_common.errors import TransactionConflictError
from gateway_common.http import create_base_app


@pytest.fixture(scope="module")
def admin(database_url):
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            """
            CREATE SCHEMA conflicts;
            CREATE TABLE conflicts.rows (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0);
            INSERT INTO conflicts.rows (id) VALUES (1), (2);
            CREATE TABLE conflicts.things (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE conflicts.budget (failures INT NOT NULL);
            INSERT INTO conflicts.budget VALUES (0);
            CREATE SEQUENCE conflicts.tries;
            -- Fails the first `failures` inserts with SQLSTATE 40P01, as a deadlock victim does.
            -- A sequence counts the tries: nextval is not undone by the rollback.
            CREATE FUNCTION conflicts.deadlock_victim() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('conflicts.tries') <= (SELECT failures FROM conflicts.budget) THEN
                    RAISE EXCEPTION 'deadlock detected (simulated)' USING ERRCODE = '40P01';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER deadlock_victim BEFORE INSERT ON conflicts.things
                FOR EACH ROW WHEN (NEW.name LIKE 'victim%') EXECUTE FUNCTION conflicts.deadlock_victim();
            """
        )
    yield conn
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA conflicts CASCADE")
    conn.close()


@pytest.fixture(scope="module")
def db(database_url, admin):
    database = Database(database_url, pool=PoolSettings(max_size=6))
    yield database
    database.close()


def _fail_next(admin, failures: int) -> None:
    with admin.cursor() as cur:
        cur.execute("UPDATE conflicts.budget SET failures = %s", (failures,))
        cur.execute("SELECT setval('conflicts.tries', 1, false)")


def _things(admin, name: str) -> int:
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM conflicts.things WHERE name = %s", (name,))
        return cur.fetchone()[0]


def _deadlocking_pair(db, wrap):
    """Two transactions lock rows 1, 2 and 2, 1; PostgreSQL kills one of them as a deadlock victim."""
    barrier = threading.Barrier(2, timeout=10)
    calls, results, errors = [], [], []

    def work(first: int, second: int) -> None:
        calls.append(first)
        with db.transaction() as tx:
            tx.cursor.execute("UPDATE conflicts.rows SET n = n + 1 WHERE id = %s", (first,))
            if calls.count(first) == 1:  # only the first attempt meets the other at the barrier
                barrier.wait()
            tx.cursor.execute("UPDATE conflicts.rows SET n = n + 1 WHERE id = %s", (second,))

    def run(first: int, second: int) -> None:
        try:
            results.append(wrap(lambda: work(first, second)))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return calls, errors


def test_a_real_deadlock_is_a_conflict_not_an_outage(db, admin):
    _, errors = _deadlocking_pair(db, lambda fn: fn())
    # One transaction survives; the victim is named a conflict (409), not "database unavailable" (503).
    assert len(errors) == 1 and isinstance(errors[0], TransactionConflictError), errors
    assert errors[0].status == 409 and errors[0].code == "CONFLICT_ERROR"
    assert errors[0].__cause__.sqlstate == "40P01"


def test_a_real_deadlock_is_retried_and_both_transactions_commit(db, admin):
    with admin.cursor() as cur:
        cur.execute("SELECT sum(n) FROM conflicts.rows")
        before = cur.fetchone()[0]
    calls, errors = _deadlocking_pair(db, retry_on_conflict)
    assert errors == []
    assert len(calls) == 3  # the victim ran once more
    with admin.cursor() as cur:
        cur.execute("SELECT sum(n) FROM conflicts.rows")
        assert cur.fetchone()[0] == before + 4  # each transaction's two updates, once


@pytest.fixture
def app(db):
    app, _ = create_base_app(Settings(service="scratch"), title="scratch")
    views = []

    @app.post("/things/<name>")
    def create(name: str):
        views.append(name)
        if name.startswith("committed"):
            with db.transaction() as tx:  # work that commits before the conflicting transaction
                tx.cursor.execute("INSERT INTO conflicts.things (name) VALUES (%s)", (name,))
        with db.transaction() as tx:
            tx.cursor.execute("INSERT INTO conflicts.things (name) VALUES (%s)", ("victim-" + name,))
        return jsonify({"name": name}), 201

    app.extensions["views"] = views
    return app


def test_a_request_whose_transaction_is_a_deadlock_victim_is_retried(app, admin):
    _fail_next(admin, 2)
    response = app.test_client().post("/things/a1")
    assert response.status_code == 201, response.get_json()
    assert app.extensions["views"] == ["a1"] * 3
    assert _things(admin, "victim-a1") == 1


def test_a_conflict_that_persists_is_a_409_that_changed_nothing(app, admin, caplog):
    _fail_next(admin, 1000)
    with caplog.at_level(logging.INFO, logger="gateway_common.db"):
        response = app.test_client().post("/things/a2", headers={"X-Request-Id": "req-conflict-1"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "CONFLICT_ERROR"
    assert response.headers["Retry-After"] == "1"
    assert len(app.extensions["views"]) == 5  # bounded
    assert _things(admin, "victim-a2") == 0
    assert "transaction conflict persisted after 5 attempts (DeadlockDetected, SQLSTATE 40P01)" in caplog.text
    retries = [r for r in caplog.records if r.name == "gateway_common.db"]
    assert len(retries) == 5  # four retries and the give-up, each naming its request and cause
    assert {(r.request_id, r.error_class, r.sqlstate) for r in retries} == {("req-conflict-1", "DeadlockDetected", "40P01")}


def test_a_request_is_not_retried_once_part_of_it_committed(app, admin):
    _fail_next(admin, 1)
    response = app.test_client().post("/things/committed-a3")
    assert response.status_code == 409
    assert app.extensions["views"] == ["committed-a3"]  # running it again would repeat committed work
    assert _things(admin, "committed-a3") == 1


def _one_line_for(caplog, request_id: str) -> logging.LogRecord:
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    return lines[0]


def test_a_503_logs_one_line_that_says_why(caplog):
    db = Database("postgresql://postgres@127.0.0.1:1/none", pool=PoolSettings(max_size=1))
    app, _ = create_base_app(Settings(service="scratch"), title="scratch")

    @app.get("/ping")
    def ping():
        db.ping()
        return jsonify({})

    with caplog.at_level(logging.INFO, logger="gateway.http"):
        response = app.test_client().get("/ping", headers={"X-Request-Id": "req-down-1"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    line = _one_line_for(caplog, "req-down-1")
    assert line.levelno == logging.ERROR and line.status == 503
    assert line.error_class == "OperationalError"
    assert line.reason == "database unreachable or connection lost"
    assert "127.0.0.1" in line.error and "port 1" in line.error


def test_too_many_clients_is_named_as_such(database_url, admin, caplog):
    role = f"gw_limited_{secrets.token_hex(4)}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    db = Database(with_user(database_url, role, None), pool=PoolSettings(max_size=1))
    app, _ = create_base_app(Settings(service="scratch"), title="scratch")

    @app.get("/ping")
    def ping():
        db.ping()
        return jsonify({})

    try:
        with caplog.at_level(logging.INFO, logger="gateway.http"):
            response = app.test_client().get("/ping", headers={"X-Request-Id": "req-full-1"})
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP ROLE {role}")
    assert response.status_code == 503
    line = _one_line_for(caplog, "req-full-1")
    assert line.reason == "too many clients: PostgreSQL's connection limit is reached"
    assert "too many connections" in line.error and line.error_class == "OperationalError"
