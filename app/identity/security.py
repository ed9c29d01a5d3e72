"""Passwords, API keys and session tokens: generated with high entropy, stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Roles and scopes live in app.identity.authorization; re-exported for older imports.
from app.identity.authorization import (  # noqa: F401
    ALL_SCOPES,
    DEFAULT_KEY_SCOPES,
    READ_SCOPES,
    ROLE_RANK,
    ROLE_SCOPES,
    check_scopes,
)

API_KEY_PREFIX = "atl_"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """Returns (full key, lookup prefix, hash). The key carries 256 bits of randomness."""
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, sha256_hex(key)


def parse_api_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, _, secret = key[len(API_KEY_PREFIX):].partition("_")
    return prefix if len(prefix) == 12 and secret else None


def matches(stored_hash: str, key: str) -> bool:
    return hmac.compare_digest(stored_hash, sha256_hex(key))


def new_token() -> str:
    return secrets.token_urlsafe(32)
