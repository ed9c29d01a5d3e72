"""Storage in a local directory: the embedded (one machine, no servers) backend.

Layout under ``root``::

    <key>                  the object's bytes, at its key's path
    .meta/<key>.json       sidecar: content type and etag (md5), so ``head`` matches S3
    .tmp/                  in-flight writes, renamed into place when complete

Keys go through ``validate_key`` (no ``..``, absolute paths or backslashes; the first segment
may not start with ``.``), so user keys can neither escape ``root`` nor touch ``.meta``/``.tmp``.
Presigned URLs point at ``{base_url}/storage/{token}`` served by ``app.storage.router``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from app.storage.base import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    PresignedUpload,
    StorageError,
    resolve_content_type,
    validate_key,
)
from app.storage.signing import Grant, Purpose, UrlSigner
from app.storage.url_cache import SignedUrlCache

_META = ".meta"
_TMP = ".tmp"
_COPY_CHUNK = 1 << 20


class PendingWrite:
    """One atomic write in progress: bytes go to a temp file in ``.tmp`` (same filesystem, so
    the final ``os.replace`` is atomic) and become visible only on ``commit``."""

    def __init__(self, storage: LocalStorage, key: str, content_type: str) -> None:
        self._storage = storage
        self.key = key
        self.content_type = content_type
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        fd, tmp = tempfile.mkstemp(dir=storage._tmp_dir, prefix="w-")
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)

    def commit(self) -> None:
        # No fsync: a crash may lose a recent upload, but never leaves a half-written object
        # under its key, which is the property callers rely on.
        self._file.close()
        etag = self._md5.hexdigest()
        try:
            self._storage._install(self._tmp, self.key, self.content_type, etag)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalStorage:
    def __init__(self, root: Path | str, *, base_url: str, secret_key: str) -> None:
        self.root = Path(root).resolve()
        self.base_url = base_url.rstrip("/")
        self.signer = UrlSigner(secret_key)
        self._download_urls = SignedUrlCache()
        self._meta_dir = self.root / _META
        self._tmp_dir = self.root / _TMP
        for d in (self.root, self._meta_dir, self._tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    # -- paths ---------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Defence in depth against symlinks planted inside root.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidKey(f"storage key {key!r} resolves outside the storage root")
        return path

    def _meta_path(self, key: str) -> Path:
        parts = key.split("/")
        return self._meta_dir.joinpath(*parts[:-1], parts[-1] + ".json")

    def _read_meta(self, key: str) -> dict[str, str]:
        try:
            return json.loads(self._meta_path(key).read_text())
        except (OSError, ValueError):
            return {}

    def _install(self, tmp: Path, key: str, content_type: str, etag: str) -> None:
        """Move a finished temp file to ``key`` and record its sidecar."""
        dest = self._path(key)
        meta = self._meta_path(key)
        try:
            # A concurrent delete may prune the freshly made parent directory between mkdir and
            # replace, so retry a couple of times instead of failing the write.
            for attempt in range(3):
                dest.parent.mkdir(parents=True, exist_ok=True)
                meta.parent.mkdir(parents=True, exist_ok=True)
                try:
                    meta.write_text(json.dumps({"content_type": content_type, "etag": etag}))
                    os.replace(tmp, dest)
                    return
                except FileNotFoundError:
                    if attempt == 2:
                        raise
        except OSError as exc:
            if not dest.is_file():  # e.g. key "a" while "a/..." exists: no orphan sidecar
                meta.unlink(missing_ok=True)
            raise StorageError(f"local write of {key!r} failed: {exc}") from exc

    def _prune(self, directory: Path, stop: Path) -> None:
        """Remove now-empty parent directories so listings do not walk dead folders."""
        while directory != stop and directory.is_relative_to(stop):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _info(self, key: str, size: int) -> ObjectInfo:
        meta = self._read_meta(key)
        return ObjectInfo(
            key=key,
            size=size,
            content_type=meta.get("content_type") or resolve_content_type(key, None),
            etag=meta.get("etag"),
        )

    # -- Storage protocol ----------------------------------------------------------------

    def begin_write(self, key: str, content_type: str | None = None) -> PendingWrite:
        validate_key(key)
        try:
            return PendingWrite(self, key, resolve_content_type(key, content_type))
        except OSError as exc:
            raise StorageError(f"local write of {key!r} failed: {exc}") from exc

    def put(self, key: str, data: bytes | BinaryIO, content_type: str | None = None) -> None:
        pending = self.begin_write(key, content_type)
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                pending.write(bytes(data))
            else:
                while chunk := data.read(_COPY_CHUNK):
                    pending.write(chunk)
        except BaseException:
            pending.abort()
            raise
        pending.commit()

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no object at {key!r}") from exc
        except OSError as exc:
            raise StorageError(f"local read of {key!r} failed: {exc}") from exc

    def open_for_read(
        self, key: str, chunk_size: int = 1 << 20
    ) -> tuple[ObjectInfo, Iterator[bytes]]:
        """Open eagerly (so a missing key raises here, not mid-response) and describe exactly
        the file that was opened, even if the key is replaced while it streams."""
        path = self._path(key)
        try:
            f = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no object at {key!r}") from exc
        except OSError as exc:
            raise StorageError(f"local read of {key!r} failed: {exc}") from exc
        info = self._info(key, os.fstat(f.fileno()).st_size)

        def chunks() -> Iterator[bytes]:
            with f:
                while chunk := f.read(chunk_size):
                    yield chunk

        return info, chunks()

    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return self.open_for_read(key, chunk_size)[1]

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return self._info(key, st.st_size)

    def download_to(self, key: str, path: str) -> None:
        dest = Path(path)
        _, chunks = self.open_for_read(key)
        part = dest.with_name(dest.name + ".part")
        try:
            with part.open("wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(part, dest)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise StorageError(f"download of {key!r} to {path} failed: {exc}") from exc

    def copy(self, src_key: str, dst_key: str) -> None:
        info, chunks = self.open_for_read(src_key)
        pending = self.begin_write(dst_key, info.content_type)
        try:
            for chunk in chunks:
                pending.write(chunk)
        except BaseException:
            pending.abort()
            raise
        pending.commit()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a plain string prefix, as on S3:
        ``"a/b"`` matches ``"a/b/c"`` and ``"a/bc"``), sorted by key."""
        if prefix:
            # Validate the directory part; the trailing partial segment may be anything.
            directory = prefix.rpartition("/")[0]
            if directory:
                validate_key(directory)
            elif prefix.startswith("."):
                return
        start = self.root.joinpath(*prefix.rpartition("/")[0].split("/")) if prefix else self.root
        found: list[tuple[str, int]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            here = Path(dirpath)
            if here == self.root:
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                filenames = [f for f in filenames if not f.startswith(".")]
            rel = here.relative_to(self.root).as_posix()
            base = "" if rel == "." else rel + "/"
            for name in filenames:
                key = base + name
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):  # deleted mid-walk
                        found.append((key, (here / name).stat().st_size))
        # Python compares str by code point, which is the UTF-8 byte order S3 lists in.
        for key, size in sorted(found):
            yield self._info(key, size)

    def delete(self, key: str) -> None:
        path = self._path(key)
        meta = self._meta_path(key)
        try:
            path.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            if path.is_dir():  # a "folder" key is not an object; S3 would ignore it too
                return
            raise StorageError(f"local delete of {key!r} failed: {exc}") from exc
        self._prune(path.parent, self.root)
        self._prune(meta.parent, self._meta_dir)

    def delete_many(self, keys: Iterable[str]) -> None:
        # No batching needed locally; validate everything first so one bad key deletes nothing.
        keys = [validate_key(k) for k in keys]
        for key in keys:
            self.delete(key)

    # -- presigned URLs ------------------------------------------------------------------

    def _url(self, token: str) -> str:
        return f"{self.base_url}/storage/{token}"

    def presign_put(
        self, key: str, content_type: str, expires_s: int = 3600, *, max_bytes: int | None = None
    ) -> PresignedUpload:
        validate_key(key)
        token = self.signer.sign(
            "put", key, expires_s, content_type=content_type, max_bytes=max_bytes
        )
        return PresignedUpload(
            url=self._url(token), method="PUT", headers={"Content-Type": content_type}
        )

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_s: int = 3600
    ) -> PresignedUpload:
        validate_key(key)
        token = self.signer.sign(
            "post", key, expires_s, content_type=content_type, max_bytes=max_bytes
        )
        # Same field names as S3's presigned POST so clients send ``fields`` verbatim.
        return PresignedUpload(
            url=self._url(token),
            method="POST",
            fields={"key": key, "Content-Type": content_type},
        )

    def presign_get(self, key: str, expires_s: int = 3600, filename: str | None = None) -> str:
        # The signer validates the key; a cached URL was validated when it was signed.
        return self._download_urls.get(key, filename, expires_s, lambda: self._url(
            self.signer.sign("get", key, expires_s, filename=filename)))

    def verify_token(self, token: str, purpose: Purpose) -> Grant:
        return self.signer.verify(token, purpose)

    def check(self) -> None:
        if not (self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)):
            raise StorageError(f"local storage root {self.root} is missing or not writable")
        for d in (self._meta_dir, self._tmp_dir):
            if not d.is_dir():
                raise StorageError(f"local storage directory {d} is missing")
