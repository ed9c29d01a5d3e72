"""Opaque, time-sortable ids: newest-first pagination can use the id itself as the cursor."""

from __future__ import annotations

import itertools
import secrets
import time

_sequence = itertools.count()


def new_id() -> str:
    # 12 hex chars of milliseconds, a per-process sequence (so ids made in the same millisecond
    # keep their creation order), then 48 random bits: 28 characters.
    return f"{int(time.time() * 1000):012x}{next(_sequence) % 65536:04x}{secrets.token_hex(6)}"


def is_valid_id(value: str) -> bool:
    return len(value) == 28 and value.isascii() and value.isalnum()
