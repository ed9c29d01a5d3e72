"""The storage interface every backend implements (local directory, S3)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class PresignedUpload:
    """What a client needs to upload one object directly to storage."""

    url: str
    method: str  # "PUT" or "POST"
    headers: dict[str, str] = field(default_factory=dict)  # for PUT
    fields: dict[str, str] = field(default_factory=dict)  # for POST (multipart form fields)


class StorageError(Exception):
    """A storage operation failed after retries."""


class ObjectNotFound(StorageError):
    """The key does not exist (get/stream/download_to/copy of a missing object)."""


class InvalidKey(StorageError, ValueError):
    """The key is not acceptable to every backend (see ``validate_key``)."""


MAX_KEY_BYTES = 1024  # S3's limit; enforced everywhere so keys stay portable between backends


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe, portable object key, else raise ``InvalidKey``.

    The rules are the same for every backend so a key that works locally also works on S3 and
    can never escape a local root: relative, ``/``-separated, no empty/``.``/``..`` segments,
    no backslashes or control characters, and the first segment may not start with ``.``
    (reserved for backend internals such as the local sidecar directory).
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("storage key must be a non-empty string")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"storage key longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/") or "\\" in key or any(ord(c) < 0x20 or c == "\x7f" for c in key):
        raise InvalidKey(f"invalid storage key {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[0].startswith("."):
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> None: ...

    def get(self, key: str) -> bytes: ...

    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def download_to(self, key: str, path: str) -> None: ...

    def copy(self, src_key: str, dst_key: str) -> None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete keys in batches of at most 1000; missing keys are not an error."""
        ...

    def presign_put(
        self, key: str, content_type: str, expires_s: int = 3600, *, max_bytes: int | None = None
    ) -> PresignedUpload:
        """``max_bytes`` is enforced by the local backend; S3 cannot bound a presigned PUT, so
        callers that need a hard limit use ``presign_post`` (and verify sizes after upload)."""
        ...

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_s: int = 3600
    ) -> PresignedUpload: ...

    def presign_get(
        self, key: str, expires_s: int = 3600, filename: str | None = None
    ) -> str: ...

    def check(self) -> None:
        """Raise StorageError when the backend cannot be reached (readiness)."""
        ...


def resolve_content_type(key: str, content_type: str | None) -> str:
    """The content type both backends store when the caller gives none: guessed from the key's
    extension, else ``application/octet-stream`` (so ``head`` answers the same everywhere)."""
    if content_type:
        return content_type
    return mimetypes.guess_type(key)[0] or "application/octet-stream"
