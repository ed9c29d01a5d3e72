"""Signed, expiring tokens for the local backend's presigned URLs.

A token is the whole grant (purpose, key, content type, size limit, download filename, expiry)
signed with the service's ``secret_key``; the router trusts nothing that is not in it. Each
purpose has its own salt so a download token can never be replayed as an upload token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer

Purpose = Literal["get", "put", "post"]

# S3 caps presigned URLs at 7 days; the same ceiling here, checked by itsdangerous on top of
# the exact expiry inside the payload, bounds the damage of a leaked long-lived token.
MAX_EXPIRES_S = 7 * 24 * 3600


class InvalidToken(Exception):
    """The token is forged, for another purpose, malformed, or expired."""


@dataclass(frozen=True)
class Grant:
    purpose: Purpose
    key: str
    expires_at: int  # unix seconds; valid while now < expires_at
    content_type: str | None = None
    max_bytes: int | None = None
    filename: str | None = None


class UrlSigner:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign storage URLs")
        self._serializer = URLSafeTimedSerializer(secret_key)

    def sign(
        self,
        purpose: Purpose,
        key: str,
        expires_s: int,
        *,
        content_type: str | None = None,
        max_bytes: int | None = None,
        filename: str | None = None,
    ) -> str:
        if not 0 <= expires_s <= MAX_EXPIRES_S:
            raise ValueError(f"expires_s must be between 0 and {MAX_EXPIRES_S}")
        payload: dict[str, Any] = {"k": key, "e": int(time.time()) + expires_s}
        if content_type is not None:
            payload["ct"] = content_type
        if max_bytes is not None:
            payload["mb"] = max_bytes
        if filename is not None:
            payload["fn"] = filename
        return self._serializer.dumps(payload, salt=_salt(purpose))

    def verify(self, token: str, purpose: Purpose) -> Grant:
        try:
            payload = self._serializer.loads(token, salt=_salt(purpose), max_age=MAX_EXPIRES_S)
        except BadSignature as exc:  # SignatureExpired is a subclass
            raise InvalidToken("invalid storage token") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("k"), str):
            raise InvalidToken("malformed storage token")
        if time.time() >= payload.get("e", 0):
            raise InvalidToken("storage token expired")
        return Grant(
            purpose=purpose,
            key=payload["k"],
            expires_at=payload["e"],
            content_type=payload.get("ct"),
            max_bytes=payload.get("mb"),
            filename=payload.get("fn"),
        )


def _salt(purpose: Purpose) -> str:
    return f"atelier.storage.{purpose}"


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value that survives any filename (RFC 6266 / RFC 5987):
    an ASCII fallback for old clients plus the exact UTF-8 name."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
