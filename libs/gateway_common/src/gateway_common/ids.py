"""Public identifiers: a prefix plus 16 random alphanumerics from `secrets`."""

from __future__ import annotations

import re
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 16


# Bytes below this map uniformly onto ALPHABET (248 = 4 * 62); the rest are drawn again.
_UNBIASED_LIMIT = 256 - 256 % len(ALPHABET)


def new_id(prefix: str) -> str:
    """Return a new id such as ``pay_Ab12Cd34Ef56Gh78``.

    One ``secrets.token_bytes`` call per id (``secrets.choice`` reads the OS RNG once per character).
    """
    chars: list[str] = []
    while len(chars) < ID_LENGTH:
        chars.extend(ALPHABET[b % len(ALPHABET)] for b in secrets.token_bytes(ID_LENGTH + 4) if b < _UNBIASED_LIMIT)
    return prefix + "".join(chars[:ID_LENGTH])


def is_id(value: str, prefix: str) -> bool:
    """Tell whether ``value`` is a well-formed id with ``prefix``."""
    return bool(re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9]{16}", value or ""))
