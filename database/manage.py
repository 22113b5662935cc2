"""Create the database, its roles and schemas, apply every service's migrations, seed.

Usage: python database/manage.py migrate   (idempotent; safe on every start)
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from gateway_common.config import DEFAULT_DATABASE_URL, with_user
from gateway_common.migrations import SERVICE_ORDER, migrate, url_for_database

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [["auth.cli", "seed"], ["webhooks.cli", "seed"]]


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist."""
    name = url.rsplit("/", 1)[-1].split("?")[0]
    conn = psycopg.connect(url_for_database(url, "postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    conn.close()


def setup(url: str) -> None:
    """Run database/setup.sql (roles, schemas, grants)."""
    conn = psycopg.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT set_config('gateway.role_password', %s, false)", (os.environ.get("DB_ROLE_PASSWORD", ""),))
        cur.execute((ROOT / "database" / "setup.sql").read_text())
    conn.close()


def main() -> int:
    """Run the requested command."""
    command = sys.argv[1] if len(sys.argv) > 1 else "migrate"
    if command != "migrate":
        print(__doc__)
        return 2
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    password = os.environ.get("DB_ROLE_PASSWORD", "gateway_dev")
    ensure_database(url)
    setup(url)
    for service in SERVICE_ORDER:
        directory = ROOT / "services" / service / "migrations"
        if directory.is_dir():
            applied = migrate(with_user(url, f"svc_{service}", password), directory, service)
            print(f"{service}: {applied} migration(s) applied")
    for module, *args in SEEDS:
        # Installed (the migrate image) or in this checkout; a checkout without the service skips it.
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            subprocess.run([sys.executable, "-m", module, *args], check=True)  # noqa: S603
    return 0


if __name__ == "__main__":
    sys.exit(main())
