"""Passwords, API keys and session tokens: generated with high entropy, stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "atl_"
_hasher = PasswordHasher()

ALL_SCOPES = (
    "datasets:read", "datasets:write", "jobs:read", "jobs:write",
    "models:read", "models:write", "admin",
)
READ_SCOPES = tuple(s for s in ALL_SCOPES if s.endswith(":read"))
# What a new API key gets when its creator names no scopes: everything but admin.
DEFAULT_KEY_SCOPES = tuple(s for s in ALL_SCOPES if s != "admin")


def check_scopes(scopes: list[str]) -> list[str]:
    """The scopes, de-duplicated and sorted; ValueError naming any unknown one."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; allowed: {list(ALL_SCOPES)}")
    return sorted(set(scopes))

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "owner": ALL_SCOPES,
    "admin": ALL_SCOPES,
    "member": DEFAULT_KEY_SCOPES,
    "viewer": READ_SCOPES,
}
ROLE_RANK = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


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
