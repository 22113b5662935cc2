"""Apply a service's plain SQL migrations with yoyo, tracked in the service's schema.

Tables that are a shared mechanism (the outbox, the relay's place, the Idempotency-Key store)
are defined once here, as SQL templates in ``gateway_common/sql/`` with the schema as their one
parameter. A service takes one in with a migration of its own that calls ``use_template``, so
yoyo applies and records it in that service's sequence like any other migration.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import yoyo
from yoyo import get_backend, read_migrations

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]*$")
# The templates a service may take in, by name.
TEMPLATES = ("outbox_idempotency",)
# The order services' migrations are applied in (database/manage.py, the tests' databases).
SERVICE_ORDER = ["auth", "payments", "refunds", "webhooks"]


def url_for_database(url: str, name: str) -> str:
    """Return ``url`` pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def quote_schema(schema: str) -> str:
    """Return ``schema`` quoted for SQL; refuse anything but a plain lower-case name."""
    if not _SCHEMA.match(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    return f'"{schema}"'


def render_template(name: str, schema: str) -> str:
    """Return template ``name`` (``gateway_common/sql/<name>.sql``) for ``schema``."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown migration template {name!r}; known: {', '.join(TEMPLATES)}")
    quoted = quote_schema(schema)
    text = resources.files("gateway_common").joinpath("sql", f"{name}.sql").read_text()
    return text.replace("{schema}", quoted)


def use_template(name: str, schema: str) -> None:
    """Add template ``name`` for ``schema`` as the step of the yoyo migration being loaded."""
    yoyo.step(render_template(name, schema))


def migrate(url: str, directory: str | Path, schema: str) -> int:
    """Apply pending migrations in ``directory``; return how many ran."""
    sep = "&" if "?" in url else "?"
    # yoyo's psycopg 3 backend; search_path puts yoyo's own tracking tables in the service's schema.
    scheme, rest = url.split("://", 1)
    driver_url = f"{scheme.split('+')[0]}+psycopg://{rest}"
    backend = get_backend(f"{driver_url}{sep}options={quote(f'-csearch_path={schema}')}")
    migrations = read_migrations(str(directory))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)
