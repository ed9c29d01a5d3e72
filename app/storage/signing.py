"""Signed, expiring tokens for the local backend's presigned URLs.

A token is the whole grant (purpose, org, key, content type, size limit, download filename,
expiry) signed with the deployment's own random ``secret_key``; the router trusts nothing that
is not in it. Each purpose has its own salt so a download token can never be replayed as an
upload token. The org is named in the token and must match the key's ``orgs/{org}/`` prefix,
and the key is validated again on the way in, so even a token signed by a leaked secret cannot
name a path outside the storage root. Uploads may only carry the image types in
``UPLOAD_CONTENT_TYPES``: nothing written through a token can ever be served as a page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.url_safe import URLSafeSerializerMixin

from app.storage.base import InvalidKey, validate_key

Purpose = Literal["get", "put", "post"]

# S3 caps presigned URLs at 7 days; the same ceiling here, checked by itsdangerous on top of
# the exact expiry inside the payload, bounds the damage of a leaked long-lived token.
MAX_EXPIRES_S = 7 * 24 * 3600
# What a presigned upload may store: the dataset image types (checked again by magic bytes).
UPLOAD_CONTENT_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
MAX_TOKEN_CHARS = 4096


class InvalidToken(Exception):
    """The token is forged, for another purpose, malformed, or expired."""


@dataclass(frozen=True)
class Grant:
    purpose: Purpose
    key: str
    org: str | None
    expires_at: int  # unix seconds; valid while now < expires_at
    content_type: str | None = None
    max_bytes: int | None = None
    filename: str | None = None


class _Serializer(URLSafeTimedSerializer):
    def dump_payload(self, obj: Any) -> bytes:
        # Without the zlib attempt: these payloads are a few dozen bytes, and trying to
        # compress each one was a large part of a list page's presigning. loads() reads both.
        return base64_encode(super(URLSafeSerializerMixin, self).dump_payload(obj))


class UrlSigner:
    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("a secret key is required to sign storage URLs")
        self._serializer = _Serializer(secret_key)

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
        validate_key(key)
        if purpose != "get" and content_type not in UPLOAD_CONTENT_TYPES:
            raise ValueError(f"presigned uploads accept only {sorted(UPLOAD_CONTENT_TYPES)}")
        payload: dict[str, Any] = {
            "k": key, "o": org_of_key(key), "p": purpose, "e": int(time.time()) + expires_s,
        }
        if content_type is not None:
            payload["ct"] = content_type
        if max_bytes is not None:
            payload["mb"] = max_bytes
        if filename is not None:
            payload["fn"] = filename
        return self._serializer.dumps(payload, salt=_salt(purpose))

    def verify(self, token: str, purpose: Purpose) -> Grant:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("malformed storage token")
        try:
            payload = self._serializer.loads(token, salt=_salt(purpose), max_age=MAX_EXPIRES_S)
        except BadSignature as exc:  # SignatureExpired is a subclass
            raise InvalidToken("invalid storage token") from exc
        except Exception as exc:  # undecodable payload behind a valid signature
            raise InvalidToken("malformed storage token") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("k"), str):
            raise InvalidToken("malformed storage token")
        if payload.get("p") != purpose or not isinstance(payload.get("e"), int):
            raise InvalidToken("malformed storage token")
        try:
            validate_key(payload["k"])
        except InvalidKey as exc:
            raise InvalidToken("malformed storage token") from exc
        if payload.get("o") != org_of_key(payload["k"]):
            raise InvalidToken("storage token is for another organization")
        if purpose != "get" and payload.get("ct") not in UPLOAD_CONTENT_TYPES:
            raise InvalidToken("storage token allows no acceptable content type")
        if time.time() >= payload["e"]:
            raise InvalidToken("storage token expired")
        return Grant(
            purpose=purpose,
            key=payload["k"],
            org=payload["o"],
            expires_at=payload["e"],
            content_type=payload.get("ct"),
            max_bytes=payload.get("mb"),
            filename=payload.get("fn"),
        )


def org_of_key(key: str) -> str | None:
    """The organization a key belongs to (``orgs/{org}/...``), or None outside ``orgs/``."""
    parts = key.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "orgs" else None


def _salt(purpose: Purpose) -> str:
    return f"atelier.storage.{purpose}"


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value that survives any filename (RFC 6266 / RFC 5987):
    an ASCII fallback for old clients plus the exact UTF-8 name."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
