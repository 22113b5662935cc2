"""Command line: seed the test merchant's webhook secret.

    python -m webhooks.cli seed
"""

from __future__ import annotations

import argparse
import sys

from gateway_common.config import Settings
from gateway_common.db import Database, PoolSettings

from webhooks import service


def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    parser = argparse.ArgumentParser(prog="python -m webhooks.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed", help="give the documented test merchant its webhook secret if missing")
    parser.parse_args(argv)
    settings = Settings.from_env("webhooks")
    db = Database(settings.service_database_url, pool=PoolSettings(max_size=1), application_name="webhooks-cli")
    created = service.seed_test_merchant(db)
    print("webhooks: test merchant secret " + ("created" if created else "already present"))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
