"""Webhook signatures: ``Atelier-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``.

The timestamp is signed with the body so a captured request cannot be replayed later; receivers
reject signatures older than a tolerance (5 minutes by default). docs/webhooks.md shows how.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Atelier-Signature"
EVENT_HEADER = "Atelier-Event"
DELIVERY_HEADER = "Atelier-Delivery"
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    return f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"


def compute(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={compute(secret, t, body)}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when ``header`` is a fresh, valid signature of ``body`` (what receivers do)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    return hmac.compare_digest(compute(secret, t, body), parts.get("v1", ""))
