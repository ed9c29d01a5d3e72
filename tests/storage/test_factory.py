"""Settings -> backend wiring, the cached dependency, and the router using it for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.settings import Settings, get_settings
from app.storage.factory import get_storage, reset_storage_cache, storage_from_settings
from app.storage.local import LocalStorage
from app.storage.router import router
from app.storage.s3 import S3Storage
from tests.fixtures_s3 import (  # noqa: F401  (fixtures are used by name)
    s3_bucket,
    s3_server,
    s3_settings_env,
)


@pytest.fixture
def clean_caches() -> Iterator[None]:
    get_settings.cache_clear()
    reset_storage_cache()
    yield
    get_settings.cache_clear()
    reset_storage_cache()


def test_file_url_gives_local_storage(tmp_path: Path) -> None:
    settings = Settings(
        storage_url=f"file://{tmp_path}/store", base_url="https://api.example/", secret_key="k"
    )
    storage = storage_from_settings(settings)
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "store").resolve()
    assert storage.presign_get("a/b.txt").startswith("https://api.example/storage/")


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://media", "media", ""), ("s3://media/", "media", ""), ("s3://m/a/b/", "m", "a/b")],
)
def test_s3_url_gives_s3_storage(url: str, bucket: str, prefix: str) -> None:
    settings = Settings(
        storage_url=url,
        s3_endpoint_url="http://minio:9000",
        s3_public_endpoint_url="https://files.example",
        s3_access_key_id="ak",
        s3_secret_access_key="sk",
        s3_path_style=True,
    )
    storage = storage_from_settings(settings)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == (bucket, prefix)
    assert storage._client.meta.endpoint_url == "http://minio:9000"
    # Browsers get the public host; path-style puts the bucket in the path.
    expected = f"https://files.example/{bucket}/{prefix + '/' if prefix else ''}k.png?"
    assert storage.presign_get("k.png").startswith(expected)
    up = storage.presign_put("k.png", "image/png")
    assert up.url.startswith("https://files.example/") and up.headers == {
        "Content-Type": "image/png"
    }
    post = storage.presign_post("k.png", "image/png", max_bytes=10)
    assert post.url.startswith("https://files.example/") and "policy" in post.fields


@pytest.mark.parametrize("url", ["ftp://x", "s3://", "file://", "/plain/path"])
def test_bad_storage_url(url: str) -> None:
    with pytest.raises(ValueError):
        storage_from_settings(Settings(storage_url=url))


def test_get_storage_is_cached_until_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_caches: None
) -> None:
    monkeypatch.setenv("ATELIER_STORAGE_URL", f"file://{tmp_path}/one")
    first = get_storage()
    assert get_storage() is first
    monkeypatch.setenv("ATELIER_STORAGE_URL", f"file://{tmp_path}/two")
    get_settings.cache_clear()
    reset_storage_cache()
    second = get_storage()
    assert isinstance(second, LocalStorage) and second.root == (tmp_path / "two").resolve()


@pytest.mark.usefixtures("s3_settings_env")
def test_s3_settings_env_drives_get_storage() -> None:
    storage = get_storage()
    assert isinstance(storage, S3Storage) and storage.prefix == "atelier"
    storage.check()
    storage.put("x/y.txt", b"via settings")
    assert storage.get("x/y.txt") == b"via settings"


def test_router_uses_get_storage_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_caches: None
) -> None:
    monkeypatch.setenv("ATELIER_STORAGE_URL", f"file://{tmp_path}/store")
    monkeypatch.setenv("ATELIER_BASE_URL", "http://testserver")
    app = FastAPI()
    app.include_router(router)
    storage = get_storage()
    with TestClient(app) as client:
        png = b"\x89PNG\r\n\x1a\nhi"
        up = storage.presign_put("r/a.png", "image/png")
        assert client.put(up.url, content=png, headers=up.headers).status_code == 200
        resp = client.get(storage.presign_get("r/a.png", filename="a.png"))
        assert resp.status_code == 200 and resp.content == png
        assert resp.headers["content-type"] == "image/png"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert client.get("/storage/not-a-token").status_code == 403
