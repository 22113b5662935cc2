"""Command line: seed the test merchant, create merchants.

    python -m auth.cli seed
    python -m auth.cli create-merchant --name NAME --email EMAIL --password PASSWORD
"""

from __future__ import annotations

import argparse
import json
import sys

from gateway_common.config import Settings
from gateway_common.db import Database, PoolSettings
from gateway_common.secretbox import SecretBox

from auth import service


def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    parser = argparse.ArgumentParser(prog="python -m auth.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed", help="create the documented test merchant if missing")
    create = sub.add_parser("create-merchant", help="create a merchant and print its credentials as JSON")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env("auth")
    db = Database(settings.service_database_url, pool=PoolSettings(max_size=1), application_name="auth-cli")
    box = SecretBox(settings.api_secret_key)
    if args.command == "seed":
        created = service.seed_test_merchant(db, box)
        print("auth: test merchant " + ("created" if created else "already present"))
    else:
        print(json.dumps(service.create_merchant(db, box, args.name, args.email, args.password)))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
