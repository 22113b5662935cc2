"""Public identifiers: a prefix plus 16 random alphanumerics from `secrets`."""

from __future__ import annotations

import re
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 16


def new_id(prefix: str) -> str:
    """Return a new id such as ``pay_Ab12Cd34Ef56Gh78``."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


def is_id(value: str, prefix: str) -> bool:
    """Tell whether ``value`` is a well-formed id with ``prefix``."""
    return bool(re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9]{16}", value or ""))
