"""Apply a service's plain SQL migrations with yoyo, tracked in the service's schema."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from yoyo import get_backend, read_migrations


def migrate(url: str, directory: str | Path, schema: str) -> int:
    """Apply pending migrations in ``directory``; return how many ran."""
    sep = "&" if "?" in url else "?"
    # search_path puts yoyo's own tracking tables in the service's schema.
    backend = get_backend(f"{url}{sep}options={quote(f'-csearch_path={schema}')}")
    migrations = read_migrations(str(directory))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)
