"""Builders for test files (images, zips, bombs) and small API helpers."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import Tenant


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (32, 24), *, seed: bytes | None = None,
                exif_orientation: int | None = None) -> bytes:
    """A small noise image (random, so each call has a new sha256 unless ``seed`` is given)."""
    w, h = size
    pixels = (seed * (w * h * 3 // len(seed) + 1))[: w * h * 3] if seed else os.urandom(w * h * 3)
    im = Image.frombytes("RGB", size, pixels)
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    im.save(out, fmt, **kwargs)
    return out.getvalue()


def png_bomb(side: int = 20_000) -> bytes:
    """A valid 1-bit grayscale PNG of side x side pixels that compresses to ~50 KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def create_dataset(client: TestClient, tenant: Tenant, name: str = "faces") -> dict[str, Any]:
    r = client.post("/v1/datasets", json={"name": name}, headers=tenant.auth)
    assert r.status_code == 201, r.text
    return r.json()


def upload(client: TestClient, tenant: Tenant, dataset_id: str,
           files: list[tuple[str, bytes]], content_type: str = "application/octet-stream"
           ) -> dict[str, Any]:
    r = client.post(
        f"/v1/datasets/{dataset_id}/items", headers=tenant.auth,
        files=[("files", (name, data, content_type)) for name, data in files],
    )
    assert r.status_code == 200, r.text
    return r.json()


def reasons(result: dict[str, Any]) -> dict[str, str]:
    return {r["filename"]: r["reason"] for r in result["rejected"]}


def list_items(client: TestClient, tenant: Tenant, dataset_id: str, **params: Any
               ) -> list[dict[str, Any]]:
    r = client.get(f"/v1/datasets/{dataset_id}/items", params={"limit": 200, **params},
                   headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def stored_keys(tenant: Tenant, dataset_id: str) -> list[str]:
    from app.storage.factory import get_storage

    return [o.key for o in get_storage().list(f"orgs/{tenant.org_id}/datasets/{dataset_id}/")]


def fetch(client: TestClient, url: str) -> bytes:
    """GET a presigned URL: the local backend's through the app, S3's from moto directly."""
    if url.startswith("http://testserver/"):
        r = client.get(url)
        assert r.status_code == 200, url
        return r.content
    import httpx

    r2 = httpx.get(url, timeout=10)
    assert r2.status_code == 200, (url, r2.text)
    return r2.content
