"""The webhooks migrations upgrade a database that already holds merchants' endpoints and deliveries.

The events work's migrations (0007-0009) came after the Razorpay format's (0003) and the endpoint
index (0006) had shipped: a database migrated to that head, with data in it, must take them.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
from gateway_common.config import with_user
from gateway_common.migrations import migrate
from gateway_common.testing import ROLE_PASSWORD, create_database, drop_database, find_repo_root

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
# What main shipped before the events work landed.
SHIPPED = ["0001_create_endpoints_deliveries.sql", "0002_create_received_events.sql", "0003_add_endpoint_format.sql",
           "0006_deliveries_by_endpoint.sql"]


def test_a_populated_database_at_the_shipped_head_upgrades(gateway_backing, tmp_path):
    name = f"gwmig_{gateway_backing.run_id}"
    # Roles and schemas, and another service's migrations (an empty list would mean every service's).
    url = create_database(gateway_backing.admin_url, name, find_repo_root(), services=["auth"])
    service_url = with_user(url, "svc_webhooks", ROLE_PASSWORD)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for file in SHIPPED:
        shutil.copy(MIGRATIONS / file, shipped / file)
    try:
        assert migrate(service_url, shipped, "webhooks") == len(SHIPPED)
        with_url, without_url = str(uuid.uuid4()), str(uuid.uuid4())
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO webhooks.endpoints (id, merchant_id, url, secret, format) VALUES "
                "('we_AAAAAAAAAAAAAAAA', %s, 'http://127.0.0.1:9/hook', 'whsec_a', 'razorpay'),"
                "('we_BBBBBBBBBBBBBBBB', %s, NULL, 'whsec_b', 'gateway')",
                (with_url, without_url),
            )
            conn.execute(
                "INSERT INTO webhooks.deliveries (id, merchant_id, endpoint_id, event_id, event_type, body, url, status) "
                "VALUES ('whlog_AAAAAAAAAAAAAAAA', %s, 'we_AAAAAAAAAAAAAAAA', 'evt_1', 'payment.success', '{}', "
                "'http://127.0.0.1:9/hook', 'failed')",
                (with_url,),
            )
        assert migrate(service_url, MIGRATIONS, "webhooks") == len(list(MIGRATIONS.glob("*.sql"))) - len(SHIPPED)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, is_default, format, status, enabled_events, consecutive_failures FROM webhooks.endpoints "
                "ORDER BY id"
            ).fetchall()
            assert rows == [("we_AAAAAAAAAAAAAAAA", True, "razorpay", "enabled", ["*"], 0),
                            ("we_BBBBBBBBBBBBBBBB", True, "gateway", "enabled", ["*"], 0)]
            assert conn.execute("SELECT status FROM webhooks.deliveries").fetchall() == [("failed",)]
            # The upgraded schema takes what the new code writes: a second endpoint, a stored event.
            conn.execute("INSERT INTO webhooks.endpoints (id, merchant_id, url, secret) "
                         "VALUES ('we_CCCCCCCCCCCCCCCC', %s, 'http://127.0.0.1:9/two', 'whsec_c')", (with_url,))
            conn.execute("INSERT INTO webhooks.events (id, merchant_id, type, category, created_at, body) "
                         "VALUES ('evt_2', %s, 'payment.failed', 'payment', now(), '{}')", (with_url,))
        assert migrate(service_url, MIGRATIONS, "webhooks") == 0
    finally:
        drop_database(gateway_backing.admin_url, name)
