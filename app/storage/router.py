"""Serves the local backend's presigned URLs: ``/storage/{token}``.

The token is the only credential (no session, no API key), exactly like an S3 presigned URL,
so these routes must stay outside session/CSRF/API-key middleware. With the S3 backend the
URLs point at S3 and every route here answers 404.

What is served here can never act as a page of our origin: the content type comes from the
object's sidecar (which only the server writes), only the dataset image types are served inline,
everything else is an ``attachment`` of a non-executable type, and every answer carries
``nosniff`` and a sandboxing CSP. Uploads must start with the magic bytes of the signed type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.storage.base import InvalidKey, ObjectNotFound, Storage, StorageError
from app.storage.factory import STORAGE
from app.storage.local import LocalStorage
from app.storage.signing import (
    UPLOAD_CONTENT_TYPES,
    Grant,
    InvalidToken,
    Purpose,
    content_disposition,
)

router = APIRouter(tags=["storage"], include_in_schema=False)

# Room for multipart boundaries and the small text fields around the file in a POST upload.
_FORM_OVERHEAD = 64 * 1024
_READ_CHUNK = 256 * 1024
# Served inline (shown in <img>); anything else is a download.
_INLINE_TYPES = UPLOAD_CONTENT_TYPES
# Non-inline types passed through as stored; any other stored type is sent as octet-stream.
_DOWNLOAD_TYPES = frozenset({"application/octet-stream", "application/json", "text/plain",
                             "application/zip", "text/csv"})
_MAGIC: dict[str, tuple[tuple[int, bytes], ...]] = {
    "image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "image/jpeg": ((0, b"\xff\xd8\xff"),),
    "image/webp": ((0, b"RIFF"), (8, b"WEBP")),
}
_SNIFF_BYTES = 12
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",  # the URL is the credential
}


def _local(storage: Storage) -> LocalStorage:
    if not isinstance(storage, LocalStorage):
        raise HTTPException(404, "not found")
    return storage


def _grant(storage: LocalStorage, token: str, purpose: Purpose) -> Grant:
    try:
        return storage.verify_token(token, purpose)
    except InvalidToken as exc:
        raise HTTPException(403, str(exc), headers=SECURITY_HEADERS) from exc


def _storage_failure(exc: StorageError) -> HTTPException:
    # Never a 500 or a path: a key refused by the backend is the caller's, the rest is ours.
    if isinstance(exc, InvalidKey):
        return HTTPException(400, "invalid storage key", headers=SECURITY_HEADERS)
    if isinstance(exc, ObjectNotFound):
        return HTTPException(404, "not found", headers=SECURITY_HEADERS)
    return HTTPException(503, "storage unavailable", headers=SECURITY_HEADERS)


def _check_magic(head: bytes, content_type: str | None) -> None:
    checks = _MAGIC.get(_media_type(content_type))
    if checks is None or not all(head[at:at + len(sig)] == sig for at, sig in checks):
        raise HTTPException(415, f"the file is not {content_type}", headers=SECURITY_HEADERS)


def _served_headers(stored_type: str | None, grant: Grant) -> tuple[str, dict[str, str]]:
    """The type to send and the headers that keep it from running as a page."""
    media = _media_type(stored_type)
    headers = dict(SECURITY_HEADERS)
    if grant.filename or media not in _INLINE_TYPES:
        name = grant.filename or grant.key.rsplit("/", 1)[-1]
        headers["Content-Disposition"] = content_disposition(name)
    if media in _INLINE_TYPES:
        return media, headers
    return (stored_type if media in _DOWNLOAD_TYPES else "application/octet-stream"), headers


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _check_content_type(sent: str | None, grant: Grant) -> None:
    # S3 refuses a PUT/POST whose Content-Type differs from the signed one (403); do the same.
    if grant.content_type is not None and _media_type(sent) != _media_type(grant.content_type):
        raise HTTPException(403, f"Content-Type must be {grant.content_type}")


def _check_declared_length(request: Request, limit: int | None) -> None:
    declared = request.headers.get("content-length")
    if limit is not None and declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, "upload exceeds the allowed size")


@router.get("/storage/{token}")
def download(token: str, storage: Storage = STORAGE) -> StreamingResponse:
    local = _local(storage)
    grant = _grant(local, token, "get")
    try:
        info, chunks = local.open_for_read(grant.key, _READ_CHUNK)
    except StorageError as exc:
        raise _storage_failure(exc) from exc
    media_type, headers = _served_headers(info.content_type, grant)
    headers["Content-Length"] = str(info.size)
    if info.etag:
        headers["ETag"] = f'"{info.etag}"'
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@router.put("/storage/{token}")
async def upload_put(
    token: str, request: Request, storage: Storage = STORAGE
) -> Response:
    local = _local(storage)
    grant = _grant(local, token, "put")
    _check_content_type(request.headers.get("content-type"), grant)
    _check_declared_length(request, grant.max_bytes)
    try:
        pending = await run_in_threadpool(local.begin_write, grant.key, grant.content_type)
    except StorageError as exc:
        raise _storage_failure(exc) from exc
    head = b""
    try:
        # Count what actually arrives: Content-Length may be absent (chunked) or wrong.
        async for chunk in request.stream():
            if grant.max_bytes is not None and pending.size + len(chunk) > grant.max_bytes:
                raise HTTPException(413, "upload exceeds the allowed size")
            if len(head) < _SNIFF_BYTES:
                head += chunk[:_SNIFF_BYTES - len(head)]
                if len(head) >= _SNIFF_BYTES:
                    _check_magic(head, grant.content_type)
            if chunk:
                await run_in_threadpool(pending.write, chunk)
        _check_magic(head, grant.content_type)
        await run_in_threadpool(pending.commit)
    except StorageError as exc:
        pending.abort()
        raise _storage_failure(exc) from exc
    except BaseException:
        pending.abort()
        raise
    return Response(status_code=200, headers=SECURITY_HEADERS)


def _limited_receive(
    receive: Callable[[], Awaitable[dict[str, Any]]], limit: int
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Wrap ASGI ``receive`` so form parsing stops as soon as the body passes ``limit``,
    instead of spooling an arbitrarily large body to disk first."""
    seen = 0

    async def receive_limited() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, "upload exceeds the allowed size")
        return message

    return receive_limited


@router.post("/storage/{token}", status_code=204)
async def upload_post(
    token: str, request: Request, storage: Storage = STORAGE
) -> Response:
    """The presigned-POST equivalent: multipart form with ``file`` (and S3's ``key`` and
    ``Content-Type`` fields, which must match what was signed)."""
    local = _local(storage)
    grant = _grant(local, token, "post")
    body_limit = None if grant.max_bytes is None else grant.max_bytes + _FORM_OVERHEAD
    _check_declared_length(request, body_limit)
    if body_limit is not None:
        request = Request(request.scope, _limited_receive(request.receive, body_limit))
    async with request.form(max_files=1, max_fields=20) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, "multipart field 'file' is required")
        field_key = form.get("key")
        if field_key is not None and field_key != grant.key:
            raise HTTPException(403, "key does not match the signed key")
        content_type = form.get("Content-Type")
        _check_content_type(content_type if isinstance(content_type, str) else None, grant)
        if grant.max_bytes is not None and (upload.size or 0) > grant.max_bytes:
            raise HTTPException(413, "upload exceeds the allowed size")
        await upload.seek(0)
        _check_magic(await upload.read(_SNIFF_BYTES), grant.content_type)
        await upload.seek(0)
        try:
            await run_in_threadpool(local.put, grant.key, upload.file, grant.content_type)
        except StorageError as exc:
            raise _storage_failure(exc) from exc
    return Response(status_code=204, headers=SECURITY_HEADERS)
