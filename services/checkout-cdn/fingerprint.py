"""Give every file in public/assets/ a content-hash name and update the references.

Run after editing an asset: ``python services/checkout-cdn/fingerprint.py``.
Fingerprinted names let nginx serve assets as immutable for a year; the pages and
checkout.js keep stable names and are revalidated instead.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

PUBLIC = Path(__file__).resolve().parent / "public"
ASSETS = PUBLIC / "assets"
HASH_LENGTH = 10
NAME = re.compile(rf"^(?P<stem>.+?)(?:\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}}))?\.(?P<ext>[a-z0-9]+)$")
REFERRING_SUFFIXES = {".html", ".css", ".js", ".svg"}


def content_hash(path: Path) -> str:
    """Return the short content hash used in asset names."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_LENGTH]


def expected_name(path: Path) -> str:
    """Return the fingerprinted name ``path`` should have."""
    match = NAME.match(path.name)
    if match is None:
        raise ValueError(f"unexpected asset name: {path.name}")
    return f"{match['stem']}.{content_hash(path)}.{match['ext']}"


def fingerprint() -> list[tuple[str, str]]:
    """Rename stale assets and rewrite references until every name matches its content."""
    done: list[tuple[str, str]] = []
    # Rewriting a reference changes the referring asset's hash, so repeat until stable.
    while renames := _fingerprint_once():
        done.extend(renames)
    return done


def _fingerprint_once() -> list[tuple[str, str]]:
    """Rename each stale asset once and rewrite references to it; return the renames."""
    renames = []
    for path in sorted(ASSETS.iterdir()):
        if path.is_file() and path.name != expected_name(path):
            renames.append((path.name, expected_name(path)))
            path.rename(path.with_name(expected_name(path)))
    if renames:
        for path in PUBLIC.rglob("*"):
            if path.is_file() and path.suffix in REFERRING_SUFFIXES:
                text = path.read_text()
                updated = text
                for old, new in renames:
                    updated = updated.replace(f"/assets/{old}", f"/assets/{new}")
                if updated != text:
                    path.write_text(updated)
    return renames


if __name__ == "__main__":
    for old, new in fingerprint():
        print(f"{old} -> {new}")
    sys.exit(0)
