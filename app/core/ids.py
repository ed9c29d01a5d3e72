"""Opaque, time-sortable ids: newest-first pagination can use the id itself as the cursor."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    # 12 hex chars of milliseconds (good until the year 10889) + 64 random bits.
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def is_valid_id(value: str) -> bool:
    return len(value) == 28 and value.isascii() and value.isalnum()
