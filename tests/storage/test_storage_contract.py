"""One contract, both backends: every test here runs against LocalStorage (served over real
HTTP by the storage router under uvicorn) and S3Storage (against moto's server over HTTP)."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.storage.base import InvalidKey, ObjectNotFound, Storage, StorageError
from app.storage.factory import storage_dependency
from app.storage.local import LocalStorage
from app.storage.router import router
from app.storage.s3 import S3Storage
from tests.fixtures_s3 import (  # noqa: F401  (fixtures are used by name)
    free_port,
    make_s3_storage,
    s3_server,
    unique_bucket_name,
)

SECRET = "test-secret-key"
# Uploads through presigned URLs must start with the signed image type's magic bytes.
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WEBP_MAGIC = b"RIFF\x00\x00\x00\x00WEBP"


class LocalServer:
    """The storage router under uvicorn in a thread; tests swap the storage it serves."""

    def __init__(self) -> None:
        self.storage: Storage | None = None
        app = FastAPI()
        app.include_router(router)
        app.dependency_overrides[storage_dependency] = lambda: self.storage
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def local(local_server: LocalServer, tmp_path: Path) -> Iterator[LocalStorage]:
    """LocalStorage served by the running router (local-only tests use this directly)."""
    storage = LocalStorage(tmp_path / "store", base_url=local_server.url, secret_key=SECRET)
    local_server.storage = storage
    yield storage
    local_server.storage = None


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> S3Storage:
    endpoint: str = request.getfixturevalue("s3_server")
    # A prefix exercises the key <-> prefixed-key mapping on every call.
    return make_s3_storage(endpoint, unique_bucket_name(), "tenant")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    return request.getfixturevalue(request.param)


# -- basic object operations -------------------------------------------------------------


def test_put_get_head(storage: Storage) -> None:
    storage.put("a/one.bin", b"hello", "application/x-test")
    assert storage.get("a/one.bin") == b"hello"
    info = storage.head("a/one.bin")
    assert info is not None
    assert (info.key, info.size, info.content_type) == ("a/one.bin", 5, "application/x-test")
    assert info.etag == hashlib.md5(b"hello").hexdigest()
    assert storage.head("a/missing.bin") is None
    with pytest.raises(ObjectNotFound):
        storage.get("a/missing.bin")


def test_put_file_object_and_default_content_type(storage: Storage) -> None:
    storage.put("img/x.png", io.BytesIO(b"\x89PNG..."))
    assert storage.get("img/x.png") == b"\x89PNG..."
    info = storage.head("img/x.png")
    assert info is not None and info.content_type == "image/png"
    storage.put("raw/blob", b"z")
    info = storage.head("raw/blob")
    assert info is not None and info.content_type == "application/octet-stream"


def test_put_overwrites(storage: Storage) -> None:
    storage.put("k.txt", b"first")
    storage.put("k.txt", b"second")
    assert storage.get("k.txt") == b"second"


def test_stream_in_chunks(storage: Storage) -> None:
    data = bytes(range(256)) * 40  # 10 KiB
    storage.put("s/data.bin", data)
    chunks = list(storage.stream("s/data.bin", chunk_size=1000))
    assert b"".join(chunks) == data
    assert len(chunks) > 1 and all(len(c) <= 1000 for c in chunks)


def test_stream_missing_raises_before_iteration(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.stream("s/missing.bin")


def test_download_to(storage: Storage, tmp_path: Path) -> None:
    storage.put("d/file.bin", b"x" * 3000)
    dest = tmp_path / "out.bin"
    storage.download_to("d/file.bin", str(dest))
    assert dest.read_bytes() == b"x" * 3000
    with pytest.raises(ObjectNotFound):
        storage.download_to("d/missing.bin", str(tmp_path / "nope.bin"))


def test_list_by_prefix_is_sorted_and_string_prefixed(storage: Storage) -> None:
    keys = ["p/b/2.txt", "p/a/1.txt", "p/ab.txt", "p/a/0.txt", "q/z.txt", "p/b/1.txt"]
    for key in keys:
        storage.put(key, key.encode())
    listed = list(storage.list("p/a"))
    # S3 semantics: a plain string prefix, so "p/a" also matches "p/ab.txt".
    assert [o.key for o in listed] == ["p/a/0.txt", "p/a/1.txt", "p/ab.txt"]
    assert [o.size for o in listed] == [len(k) for k in ("p/a/0.txt", "p/a/1.txt", "p/ab.txt")]
    assert [o.key for o in storage.list("p/b/")] == ["p/b/1.txt", "p/b/2.txt"]
    assert [o.key for o in storage.list("")] == sorted(keys)
    assert list(storage.list("nothing/")) == []


def test_copy(storage: Storage) -> None:
    storage.put("c/src.json", b'{"a": 1}', "application/json")
    storage.copy("c/src.json", "c/sub/dst.json")
    assert storage.get("c/sub/dst.json") == b'{"a": 1}'
    info = storage.head("c/sub/dst.json")
    assert info is not None and info.content_type == "application/json"
    assert storage.get("c/src.json") == b'{"a": 1}'  # source untouched
    with pytest.raises(ObjectNotFound):
        storage.copy("c/missing.json", "c/other.json")


def test_delete(storage: Storage) -> None:
    storage.put("del/a.txt", b"a")
    storage.delete("del/a.txt")
    assert storage.head("del/a.txt") is None
    storage.delete("del/a.txt")  # missing is not an error
    assert list(storage.list("del/")) == []


def test_delete_many_over_one_batch(storage: Storage) -> None:
    keys = [f"many/{i:05d}.txt" for i in range(1205)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: storage.put(k, b"."), keys))
    storage.put("keep/me.txt", b"k")

    batches: list[int] = []
    if isinstance(storage, S3Storage):
        # Count DeleteObjects calls and their sizes at the botocore level.
        def spy(params: dict[str, Any], **_: Any) -> None:
            batches.append(len(params["Delete"]["Objects"]))

        storage._client.meta.events.register("provide-client-params.s3.DeleteObjects", spy)

    # A generator (not a list) and a missing key mixed in: both must be fine.
    storage.delete_many(k for k in [*keys, "many/not-there.txt"])

    assert list(storage.list("many/")) == []
    assert storage.get("keep/me.txt") == b"k"
    if isinstance(storage, S3Storage):
        assert batches == [1000, 206]


def test_s3_delete_many_reports_failures(s3: S3Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    # DeleteObjects answers 200 with per-key Errors; those must not pass silently.
    def failing(**kwargs: Any) -> dict[str, Any]:
        return {"Errors": [{"Key": "tenant/x", "Code": "AccessDenied", "Message": "nope"}]}

    monkeypatch.setattr(s3._client, "delete_objects", failing)
    with pytest.raises(StorageError, match="AccessDenied"):
        s3.delete_many(["x", "y"])


@pytest.mark.parametrize(
    "key",
    [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/passwd",
        "a\\b.txt",
        "a//b",
        "a/./b",
        "",
        ".meta/x.json",
        ".tmp/x",
        "a/b/",
        "a/\x00b",
    ],
)
def test_bad_keys_rejected(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.put(key, b"x")
    with pytest.raises(InvalidKey):
        storage.get(key)


def test_traversal_never_touches_outside_root(local: LocalStorage) -> None:
    outside = local.root.parent / "escape.txt"
    for key in ("../escape.txt", "x/../../escape.txt"):
        with pytest.raises(InvalidKey):
            local.put(key, b"pwned")
        with pytest.raises(InvalidKey):
            local.presign_get(key)
    assert not outside.exists()


def test_check(storage: Storage) -> None:
    storage.check()


def test_s3_check_fails_when_unreachable(request: pytest.FixtureRequest) -> None:
    endpoint: str = request.getfixturevalue("s3_server")
    dead = make_s3_storage(
        f"http://127.0.0.1:{free_port()}", "no-such", create=False, max_attempts=1
    )
    with pytest.raises(StorageError, match="head_bucket"):
        dead.check()
    missing = make_s3_storage(endpoint, unique_bucket_name(), create=False)
    with pytest.raises(StorageError):
        missing.check()


# -- presigned URLs ----------------------------------------------------------------------


def test_presigned_put_upload(storage: Storage) -> None:
    up = storage.presign_put("up/put.png", "image/png")
    assert up.method == "PUT"
    resp = httpx.put(up.url, content=PNG_MAGIC + b"png-bytes", headers=up.headers)
    assert resp.status_code == 200, resp.text
    assert storage.get("up/put.png") == PNG_MAGIC + b"png-bytes"
    info = storage.head("up/put.png")
    assert info is not None and info.content_type == "image/png"


def test_presigned_post_upload(storage: Storage) -> None:
    up = storage.presign_post("up/post.webp", "image/webp", max_bytes=1000)
    assert up.method == "POST"
    resp = httpx.post(
        up.url, data=up.fields, files={"file": ("post.webp", WEBP_MAGIC + b"v", "image/webp")}
    )
    assert resp.status_code in (200, 201, 204), resp.text
    assert storage.get("up/post.webp") == WEBP_MAGIC + b"v"
    info = storage.head("up/post.webp")
    assert info is not None and info.content_type == "image/webp"


def test_presigned_get_download(storage: Storage) -> None:
    storage.put("dl/model.safetensors", b"weights" * 100, "application/octet-stream")
    url = storage.presign_get("dl/model.safetensors", filename="my model é.safetensors")
    resp = httpx.get(url)
    assert resp.status_code == 200
    assert resp.content == b"weights" * 100
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''my%20model%20%C3%A9.safetensors" in disposition
    plain = httpx.get(storage.presign_get("dl/model.safetensors"))
    assert plain.status_code == 200
    if isinstance(storage, LocalStorage):  # never inline from our origin unless an image
        assert plain.headers["content-disposition"].startswith("attachment;")
    else:
        assert "content-disposition" not in plain.headers


def test_local_presigned_get_missing_is_404(local: LocalStorage) -> None:
    assert httpx.get(local.presign_get("dl/missing.bin")).status_code == 404


def test_local_expired_token_rejected(local: LocalStorage) -> None:
    local.put("e/x.txt", b"x")
    assert httpx.get(local.presign_get("e/x.txt", expires_s=0)).status_code == 403
    up = local.presign_put("e/y.png", "image/png", expires_s=0)
    assert httpx.put(up.url, content=PNG_MAGIC, headers=up.headers).status_code == 403
    assert local.head("e/y.png") is None


def test_local_forged_or_misused_token_rejected(local: LocalStorage) -> None:
    local.put("f/x.txt", b"x")
    url = local.presign_get("f/x.txt")
    assert httpx.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB")).status_code == 403
    other = LocalStorage(local.root, base_url=local.base_url, secret_key="another-secret")
    assert httpx.get(other.presign_get("f/x.txt")).status_code == 403
    # A download token cannot be replayed as an upload (per-purpose salt).
    assert httpx.put(url, content=b"overwrite").status_code == 403
    assert local.get("f/x.txt") == b"x"


def test_local_put_size_limit(local: LocalStorage) -> None:
    up = local.presign_put("lim/a.png", "image/png", max_bytes=10)
    ok = httpx.put(up.url, content=PNG_MAGIC + b"01", headers=up.headers)
    assert ok.status_code == 200
    big = httpx.put(up.url, content=PNG_MAGIC + b"01X", headers=up.headers)
    assert big.status_code == 413
    # Chunked (no Content-Length): the limit is enforced on the bytes that arrive.
    chunked = httpx.put(up.url, content=iter([PNG_MAGIC, b"01", b"X"]), headers=up.headers)
    assert chunked.status_code == 413
    assert local.get("lim/a.png") == PNG_MAGIC + b"01"  # the failed uploads left nothing behind
    assert list((local.root / ".tmp").iterdir()) == []


def test_local_post_size_limit(local: LocalStorage) -> None:
    up = local.presign_post("lim/p.png", "image/png", max_bytes=10)
    resp = httpx.post(up.url, data=up.fields, files={"file": ("p.png", PNG_MAGIC + b"x" * 3)})
    assert resp.status_code == 413
    huge = httpx.post(up.url, data=up.fields, files={"file": ("p.png", b"x" * 200_000)})
    assert huge.status_code == 413
    assert local.head("lim/p.png") is None


def test_local_upload_content_type_must_match(local: LocalStorage) -> None:
    up = local.presign_put("ct/a.png", "image/png")
    resp = httpx.put(up.url, content=b"x", headers={"Content-Type": "text/html"})
    assert resp.status_code == 403
    post = local.presign_post("ct/b.png", "image/png", max_bytes=100)
    fields = {**post.fields, "Content-Type": "text/html"}
    assert httpx.post(post.url, data=fields, files={"file": ("b", b"x")}).status_code == 403
    assert local.head("ct/a.png") is None and local.head("ct/b.png") is None


def test_local_router_404_for_non_local_backend(local_server: LocalServer, tmp_path: Path) -> None:
    local = LocalStorage(tmp_path, base_url=local_server.url, secret_key=SECRET)
    local.put("a.txt", b"a")
    local_server.storage = object()  # type: ignore[assignment]  # stands in for S3Storage
    try:
        assert httpx.get(local.presign_get("a.txt")).status_code == 404
    finally:
        local_server.storage = None


def test_local_check_fails_without_root(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "root", base_url="http://x", secret_key=SECRET)
    local.check()
    for d in (local.root / ".meta", local.root / ".tmp", local.root):
        d.rmdir()
    with pytest.raises(StorageError):
        local.check()


def test_local_file_and_folder_key_clash_is_clean(local: LocalStorage) -> None:
    # S3 allows both "a" and "a/b"; a directory cannot. The write fails loudly and leaves
    # no sidecar or temp file behind.
    local.put("clash/a/b.txt", b"b")
    with pytest.raises(StorageError):
        local.put("clash/a", b"a")
    assert local.head("clash/a") is None
    assert not (local.root / ".meta" / "clash" / "a.json").exists()
    assert list((local.root / ".tmp").iterdir()) == []
    assert [o.key for o in local.list("clash/")] == ["clash/a/b.txt"]


def test_s3_missing_bucket_is_an_error_not_a_missing_object(request: pytest.FixtureRequest) -> None:
    endpoint: str = request.getfixturevalue("s3_server")
    storage = make_s3_storage(endpoint, unique_bucket_name(), create=False)
    with pytest.raises(StorageError, match="NoSuchBucket") as excinfo:
        storage.get("a.txt")
    assert not isinstance(excinfo.value, ObjectNotFound)
