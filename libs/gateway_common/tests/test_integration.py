"""Integration tests of the shared library on real PostgreSQL and Redis."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading

import psycopg
import pytest
import redis
from flask import jsonify
from gateway_common.config import Settings
from gateway_common.db import Database, PoolSettings
from gateway_common.errors import BadRequestError, ServiceUnavailableError
from gateway_common.events import Outbox, Relay, Route, events_from_task
from gateway_common.http import create_base_app, idempotent
from gateway_common.migrations import render_template
from gateway_common.testing import drop_redis_keys, find_repo_root
from gateway_common.workers import make_celery


@pytest.fixture(scope="module")
def scratch_settings(redis_url, gateway_backing):
    """Settings of the scratch service, under a Redis prefix of this run that is deleted afterwards."""
    prefix = f"gwscratch{gateway_backing.run_id}"
    yield Settings(service="scratch", redis_url=redis_url, pubsub_prefix=prefix)
    drop_redis_keys(redis_url, prefix)


@pytest.fixture(scope="module")
def scratch(database_url):
    """A scratch schema with an outbox, idempotency keys and a counter table."""
    conn = psycopg.connect(database_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA scratch")
        cur.execute(render_template("outbox_idempotency", "scratch"))
        cur.execute("CREATE TABLE scratch.things (id SERIAL PRIMARY KEY, name TEXT NOT NULL)")
    conn.close()
    db = Database(database_url, pool=PoolSettings(max_size=20))
    yield db
    db.close()


def test_transaction_commits_rolls_back_and_runs_after_commit_hooks(scratch):
    ran = []
    with scratch.transaction() as tx:
        tx.cursor.execute("INSERT INTO scratch.things (name) VALUES ('kept')")
        tx.on_commit(lambda: ran.append("committed"))
    with pytest.raises(RuntimeError), scratch.transaction() as tx:
        tx.cursor.execute("INSERT INTO scratch.things (name) VALUES ('lost')")
        tx.on_commit(lambda: ran.append("never"))
        raise RuntimeError("boom")
    with scratch.transaction() as tx:
        tx.cursor.execute("SELECT name FROM scratch.things")
        names = [r["name"] for r in tx.cursor.fetchall()]
    assert names == ["kept"]
    assert ran == ["committed"]


def test_unreachable_database_is_service_unavailable():
    db = Database("postgresql://postgres@127.0.0.1:1/none", pool=PoolSettings(max_size=1))
    with pytest.raises(ServiceUnavailableError):
        db.ping()


def test_relay_publishes_committed_events_once_to_celery_and_pubsub(scratch, redis_url, scratch_settings):
    settings = scratch_settings
    celery_app = make_celery(settings, "scratch")
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{settings.pubsub_prefix}:celery:scratch-queue")
    pubsub = client.pubsub()
    merchant = "550e8400-e29b-41d4-a716-446655440000"
    pubsub.subscribe(f"unit:events:{merchant}")
    pubsub.get_message(timeout=1)
    outbox = Outbox("scratch")
    with scratch.transaction() as tx:
        first = outbox.add(tx, "payment.created", merchant, {"payment": {"id": "pay_1"}})
        outbox.add(tx, "refund.created", merchant, {"refund": {"id": "rfnd_1"}})
    with pytest.raises(RuntimeError), scratch.transaction() as tx:
        outbox.add(tx, "payment.failed", merchant, {})
        raise RuntimeError("rolled back: never published")
    relay = Relay(scratch, "scratch", [Route("payment.*", "scratch.handle", "scratch-queue")], celery_app, client, "unit")
    assert relay.run_once() == 2
    assert relay.run_once() == 0
    assert client.llen(f"{settings.pubsub_prefix}:celery:scratch-queue") == 1  # one task, the one matching event
    message = json.loads(client.lindex(f"{settings.pubsub_prefix}:celery:scratch-queue", 0))
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert message["headers"]["task"] == "scratch.handle"
    assert events_from_task(args[0]) == [first]  # the stored payload, as one JSON array
    messages = []
    for _ in range(10):
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "message":
            messages.append(message["data"])
        if len(messages) == 2:
            break
    assert len(messages) == 2
    assert first["id"].encode() in messages[0]
    assert set(first) == {"id", "event", "timestamp", "merchant_id", "data"}


def _drain(relay) -> None:
    while relay.run_once():
        pass


def test_relay_waits_for_a_slow_commit_and_never_skips_it(scratch, database_url, redis_url, scratch_settings):
    settings = scratch_settings
    client = redis.Redis.from_url(redis_url)
    relay = Relay(scratch, "scratch", [Route("payment.*", "scratch.handle", "scratch-queue")], make_celery(settings, "scratch"), client, "unit")
    _drain(relay)
    merchant = "550e8400-e29b-41d4-a716-446655440000"
    outbox = Outbox("scratch")
    slow = psycopg.connect(database_url)  # a transaction that takes its seq first and commits last
    try:
        with slow.cursor() as cur:
            cur.execute(
                "INSERT INTO scratch.outbox (event_id, event_type, merchant_id, payload) "
                "VALUES ('evt_slow', 'payment.created', %s, '{}') RETURNING seq",
                (merchant,),
            )
            slow_seq = cur.fetchone()[0]
        with scratch.transaction() as tx:
            fast = outbox.add(tx, "payment.created", merchant, {})
        assert relay.run_once() == 0  # the fast row waits: the slow transaction might still commit before it
        slow.commit()
        assert relay.run_once() == 2
        with scratch.transaction() as tx:
            tx.cursor.execute("SELECT seq FROM scratch.outbox_relay")
            place = tx.cursor.fetchone()["seq"]
            tx.cursor.execute("SELECT seq FROM scratch.outbox WHERE event_id = %s", (fast["id"],))
            assert place == tx.cursor.fetchone()["seq"] > slow_seq  # the slow row went out, first
        # A rolled-back insert leaves a gap that holds nothing up.
        with slow.cursor() as cur:
            cur.execute("INSERT INTO scratch.outbox (event_id, event_type, merchant_id, payload) VALUES ('evt_gone', 'payment.created', %s, '{}')", (merchant,))
        slow.rollback()
        with scratch.transaction() as tx:
            outbox.add(tx, "payment.created", merchant, {})
        assert relay.run_once() == 1
    finally:
        slow.close()


def test_relay_held_back_by_an_open_transaction_says_so(scratch, database_url, redis_url, caplog, scratch_settings):
    settings = scratch_settings
    relay = Relay(scratch, "scratch", [], make_celery(settings, "scratch"), redis.Redis.from_url(redis_url), "unit")
    _drain(relay)
    open_tx = psycopg.connect(database_url)  # someone's transaction, left open after a write
    try:
        with open_tx.cursor() as cur:
            cur.execute("INSERT INTO scratch.things (name) VALUES ('left open')")
        with scratch.transaction() as tx:
            tx.cursor.execute(
                "INSERT INTO scratch.outbox (event_id, event_type, merchant_id, payload, created_at) "
                "VALUES ('evt_waiting', 'payment.created', '550e8400-e29b-41d4-a716-446655440000', '{}', "
                "now() - interval '2 minutes')"
            )
        relay = Relay(scratch, "scratch", [], make_celery(settings, "scratch"), redis.Redis.from_url(redis_url), "unit")
        with caplog.at_level(logging.WARNING, logger="gateway_common.events"):
            assert relay.run_once() == 0  # an idle relay's first step looks for held-back events
        waited = re.search(r"events have waited (\d+) s for a transaction that is still open", caplog.text)
        assert waited and 119 <= int(waited.group(1)) <= 130
        open_tx.rollback()
        assert relay.run_once() == 1  # late, not lost
    finally:
        open_tx.close()


def test_relay_reads_in_numeric_xid_order_when_xids_gain_a_digit(scratch, redis_url, scratch_settings):
    settings = scratch_settings
    relay = Relay(scratch, "scratch", [], make_celery(settings, "scratch"), redis.Redis.from_url(redis_url), "unit", batch_size=1)
    _drain(relay)
    with scratch.transaction() as tx:  # rows of transactions 9 and 10: "10" < "9" as text
        tx.cursor.execute("UPDATE scratch.outbox_relay SET xid = '8', seq = 0")
        tx.cursor.execute(
            "INSERT INTO scratch.outbox (event_id, event_type, merchant_id, payload, xid) VALUES "
            "('evt_xid10', 'payment.created', '550e8400-e29b-41d4-a716-446655440000', '{}', '10'), "
            "('evt_xid9', 'payment.created', '550e8400-e29b-41d4-a716-446655440000', '{}', '9')"
        )
    places = []
    for _ in range(2):
        assert relay.run_once() == 1
        with scratch.transaction() as tx:
            tx.cursor.execute("SELECT xid::text AS xid FROM scratch.outbox_relay")
            places.append(tx.cursor.fetchone()["xid"])
    assert places == ["9", "10"]  # 9 first: moving to 10 first would have skipped it for good
    _drain(relay)


def test_only_one_relay_publishes_an_outbox_at_a_time(scratch, database_url, redis_url, scratch_settings):
    settings = scratch_settings
    client = redis.Redis.from_url(redis_url)
    relay = Relay(scratch, "scratch", [], make_celery(settings, "scratch"), client, "unit")
    _drain(relay)
    with scratch.transaction() as tx:
        Outbox("scratch").add(tx, "payment.created", "550e8400-e29b-41d4-a716-446655440000", {})
    other = psycopg.connect(database_url)  # another relay, in the middle of its batch
    try:
        with other.cursor() as cur:
            cur.execute("SELECT seq FROM scratch.outbox_relay FOR UPDATE")
        assert relay.run_once() == 0
        other.rollback()
        assert relay.run_once() == 1
    finally:
        other.close()


def test_a_relay_without_its_place_says_so(scratch, redis_url, caplog, scratch_settings):
    settings = scratch_settings
    relay = Relay(scratch, "scratch", [], make_celery(settings, "scratch"), redis.Redis.from_url(redis_url), "unit")
    _drain(relay)
    with scratch.transaction() as tx:
        tx.cursor.execute("DELETE FROM scratch.outbox_relay RETURNING xid::text AS xid, seq")
        place = tx.cursor.fetchone()
    try:
        with caplog.at_level(logging.ERROR, logger="gateway_common.events"):
            assert relay.run_once() == 0
        assert "scratch.outbox_relay) has no row" in caplog.text
    finally:
        with scratch.transaction() as tx:
            tx.cursor.execute("INSERT INTO scratch.outbox_relay (xid, seq) VALUES (%s::xid8, %s)", (place["xid"], place["seq"]))


def test_idempotent_view_runs_once_under_concurrency_and_replays_bytes(scratch):
    settings = Settings(service="scratch")
    app, _ = create_base_app(settings, title="scratch")
    calls = []

    @app.post("/things")
    @idempotent(scratch, "scratch", scope=lambda: "merchant-1", secret=settings.fingerprint_key)
    def create_thing():
        from flask import request

        body = request.get_json()
        if body.get("name") == "bad":
            raise BadRequestError("name is bad")
        with scratch.transaction() as tx:
            tx.cursor.execute("INSERT INTO scratch.things (name) VALUES (%s) RETURNING id", (body["name"],))
            new_id = tx.cursor.fetchone()["id"]
            tx.cursor.execute("SELECT pg_sleep(0.2)")
        calls.append(new_id)
        response = jsonify({"id": new_id, "name": body["name"]})
        response.status_code = 201
        return response

    results = []

    def post() -> None:
        with app.test_client() as client:
            r = client.post("/things", json={"name": "once"}, headers={"Idempotency-Key": "k-1"})
            results.append((r.status_code, r.get_data(), r.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert {status for status, _, _ in results} == {201}
    assert len({body for _, body, _ in results}) == 1
    assert sorted(r for _, _, r in results if r) == ["true"] * 7

    client = app.test_client()
    mismatch = client.post("/things", json={"name": "other"}, headers={"Idempotency-Key": "k-1"})
    assert mismatch.status_code == 422 and mismatch.json["error"]["code"] == "IDEMPOTENCY_KEY_MISMATCH"
    bad = client.post("/things", json={"name": "bad"}, headers={"Idempotency-Key": "k-2"})
    assert bad.status_code == 400
    again = client.post("/things", json={"name": "bad"}, headers={"Idempotency-Key": "k-2"})
    assert again.status_code == 400 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == bad.get_data()
    too_long = client.post("/things", json={"name": "x"}, headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400


def test_nul_characters_in_input_are_a_400_not_a_500(scratch):
    app, _ = create_base_app(Settings(service="scratch"), title="scratch")

    @app.get("/things")
    def find():
        from flask import request

        with scratch.transaction() as tx:
            tx.cursor.execute("SELECT count(*) AS n FROM scratch.things WHERE name = %s", (request.args["name"],))
            return jsonify(tx.cursor.fetchone())

    response = app.test_client().get("/things?name=a%00b")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_drop_redis_keys_deletes_only_the_runs_prefix(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("droprun1:celery:_kombu.binding.payments", "x")
    client.rpush("droprun1:celery:payments", "task")
    client.set("droprun10:celery:payments", "another run whose prefix starts the same")
    client.set("droprun1", "no separator: not under the prefix")
    try:
        assert drop_redis_keys(redis_url, "droprun1") == 2
        assert sorted(client.scan_iter(match="droprun*")) == [b"droprun1", b"droprun10:celery:payments"]
        assert drop_redis_keys(redis_url, "droprun1") == 0
    finally:
        client.delete("droprun10:celery:payments", "droprun1")
        client.close()


def test_setup_sql_lets_a_service_role_made_elsewhere_log_in(database_url):
    """A role of a service's name that exists but cannot log in (CREATE ROLE's default) gets LOGIN.

    Roles belong to the cluster, so this runs in one transaction that is rolled back: ALTER ROLE is
    transactional, and no other session ever sees svc_webhooks without LOGIN.
    """
    setup = (find_repo_root() / "database" / "setup.sql").read_text()
    conn = psycopg.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("ALTER ROLE svc_webhooks NOLOGIN")
            cur.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'svc_webhooks'")
            assert cur.fetchone() == (False,)
            cur.execute(setup)
            cur.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'svc\\_%' ORDER BY rolname")
            assert cur.fetchall() == [
                ("svc_auth", True),
                ("svc_payments", True),
                ("svc_refunds", True),
                ("svc_webhooks", True),
            ]
    finally:
        conn.rollback()
        conn.close()


def test_relay_prunes_published_outbox_rows_a_day_old_a_bounded_batch_a_step_until_caught_up(
    database_url, redis_url, scratch_settings
):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS outboxprune CASCADE")
        conn.execute("CREATE SCHEMA outboxprune")
        conn.execute(render_template("outbox_idempotency", "outboxprune"))
        merchant = "550e8400-e29b-41d4-a716-446655440000"
        conn.execute(
            "INSERT INTO outboxprune.outbox (event_id, event_type, merchant_id, payload, created_at) "
            "SELECT 'evt_old' || g, 'payment.created', %s, '{}', now() - interval '2 days' FROM generate_series(1, 12000) g",
            (merchant,),
        )
        conn.execute(
            "INSERT INTO outboxprune.outbox (event_id, event_type, merchant_id, payload) "
            "SELECT 'evt_new' || g, 'payment.created', %s, '{}' FROM generate_series(1, 10) g",
            (merchant,),
        )
        # Every row is published: the relay's place is past them all.
        conn.execute("UPDATE outboxprune.outbox_relay SET (xid, seq) = (SELECT max(xid), max(seq) FROM outboxprune.outbox)")
    db = Database(database_url, pool=PoolSettings(max_size=2))
    relay = Relay(db, "outboxprune", [], make_celery(scratch_settings, "scratch"), redis.Redis.from_url(redis_url), "unit")

    def left() -> tuple[int, int]:
        with db.transaction() as tx:
            tx.cursor.execute("SELECT count(*) FILTER (WHERE event_id LIKE 'evt_old%%') AS old,"
                              " count(*) FILTER (WHERE event_id LIKE 'evt_new%%') AS new FROM outboxprune.outbox")
            row = tx.cursor.fetchone()
            return row["old"], row["new"]

    try:
        seen = []
        for _ in range(4):
            assert relay.run_once() == 0  # nothing new to publish; each step prunes one batch while one is due
            seen.append(left())
        # At most one batch (5,000) a step, and full batches are followed at once by the next, so a
        # backlog of any size is caught up without waiting 10 s a batch; rows younger than a day stay.
        assert seen == [(7000, 10), (2000, 10), (0, 10), (0, 10)]
    finally:
        db.close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA outboxprune CASCADE")
