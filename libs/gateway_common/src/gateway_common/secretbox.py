"""Secrets kept recoverable at rest: Fernet encryption under the server key ``API_SECRET_KEY``.

The key is one or more comma-separated Fernet keys (urlsafe base64 of 32 bytes): the first
encrypts, every one decrypts, so a key is rotated by putting the new one first and re-encrypting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gateway_common.config import ConfigError


def derive_key(gateway_secret: str) -> str:
    """Return the Fernet key derived from the gateway secret (used when API_SECRET_KEY is unset)."""
    digest = hmac.new(gateway_secret.encode(), b"api-secret-encryption-key", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def new_key() -> str:
    """Return a fresh random Fernet key."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypt and decrypt short secrets (API secrets) with the server key."""

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise ConfigError("API_SECRET_KEY is empty: set it to a Fernet key (urlsafe base64 of 32 bytes)")
        try:
            self._fernet = MultiFernet([Fernet(part.encode()) for part in parts])
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "API_SECRET_KEY must be Fernet keys (urlsafe base64 of 32 bytes), comma-separated: "
                'python3 -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from exc

    def encrypt(self, plaintext: str) -> str:
        """Return the token that stores ``plaintext``."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        """Return the plaintext of a token, or None when there is none or no key opens it."""
        if not token:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None
