"""Multipart and zip uploads: verification, reasons, and that good files of the same request are
kept — on both storage backends."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.datasets import limits
from tests.conftest import Tenant
from tests.datasets.helpers import (
    create_dataset,
    fetch,
    image_bytes,
    list_items,
    make_zip,
    png_bomb,
    reasons,
    stored_keys,
    upload,
)


def test_multipart_mixed_good_and_bad(client: TestClient, tenant: Tenant, backend: str) -> None:
    ds = create_dataset(client, tenant)
    good_png, good_jpg, good_webp = (image_bytes("PNG"), image_bytes("JPEG"),
                                     image_bytes("WEBP"))
    truncated = image_bytes("PNG", (64, 64))[:300]
    result = upload(client, tenant, ds["id"], [
        ("a.png", good_png), ("b.jpg", good_jpg), ("c.webp", good_webp),
        ("fake.png", b"this is not an image at all"), ("broken.png", truncated),
        ("anim.gif", _gif()), ("again.png", good_png), ("empty.png", b""),
    ])
    assert sorted(i["filename"] for i in result["created"]) == ["a.png", "b.jpg", "c.webp"]
    why = reasons(result)
    assert "not a recognised image" in why["fake.png"]
    assert "corrupt" in why["broken.png"]
    assert "unsupported image format GIF" in why["anim.gif"]
    assert why["again.png"] == "duplicate of a.png"
    assert why["empty.png"] == "empty file"

    items = {i["filename"]: i for i in list_items(client, tenant, ds["id"])}
    assert set(items) == {"a.png", "b.jpg", "c.webp"}
    png = items["a.png"]
    assert (png["width"], png["height"], png["bytes"]) == (32, 24, len(good_png))
    assert fetch(client, png["url"]) == good_png
    thumb = Image.open(io.BytesIO(fetch(client, png["thumbnail_url"])))
    assert thumb.format == "WEBP" and max(thumb.size) <= limits.THUMB_SIZE
    org, dsid = tenant.org_id, ds["id"]
    assert set(stored_keys(tenant, dsid)) == {
        *(f"orgs/{org}/datasets/{dsid}/items/{i['id']}.{ext}"
          for i, ext in ((items["a.png"], "png"), (items["b.jpg"], "jpg"),
                         (items["c.webp"], "webp"))),
        *(f"orgs/{org}/datasets/{dsid}/thumbs/{i['id']}.webp" for i in items.values()),
    }
    got = client.get(f"/v1/datasets/{dsid}", headers=tenant.auth).json()
    assert got["item_count"] == 3 and got["captioned_count"] == 0
    assert got["total_bytes"] == sum(i["bytes"] for i in items.values())


def test_zip_with_folders_captions_and_junk(client: TestClient, tenant: Tenant,
                                            backend: str) -> None:
    ds = create_dataset(client, tenant)
    dup = image_bytes()
    archive = make_zip({
        "set/cats/001.png": image_bytes(), "set/cats/001.txt": b"a cat on a mat\n",
        "set/dogs/002.jpg": image_bytes("JPEG"),
        "set/data.jsonl": b'{"image": "dogs/002.jpg", "text": "a dog"}\n',
        "set/003.webp": image_bytes("WEBP"),
        "set/dup-a.png": dup, "set/dup-b.png": dup,
        "__MACOSX/set/._001.png": b"junk", "set/.DS_Store": b"junk", "set/Thumbs.db": b"x",
        "set/inner.zip": make_zip({"x.png": image_bytes()}),
        "../escape.png": image_bytes(), "/abs/root.png": image_bytes(),
        "set/readme.md": b"# not an image",
    })
    result = upload(client, tenant, ds["id"],
                    [("photos.zip", archive), ("solo.png", image_bytes())])
    created = {i["filename"]: i for i in result["created"]}
    assert set(created) == {"set/cats/001.png", "set/dogs/002.jpg", "set/003.webp",
                            "set/dup-a.png", "solo.png"}
    assert created["set/cats/001.png"]["caption"] == "a cat on a mat"
    assert created["set/dogs/002.jpg"]["caption"] == "a dog"
    assert created["set/003.webp"]["caption"] is None
    why = reasons(result)
    assert why["photos.zip:set/dup-b.png"] == "duplicate of set/dup-a.png"
    assert "nested archives" in why["photos.zip:set/inner.zip"]
    assert "unsafe path" in why["photos.zip:../escape.png"]
    assert "unsafe path" in why["photos.zip:/abs/root.png"]
    assert "not a recognised image" in why["photos.zip:set/readme.md"]
    assert not any("MACOSX" in name or "DS_Store" in name or "Thumbs" in name for name in why)
    assert len(stored_keys(tenant, ds["id"])) == 2 * 5  # image + thumbnail each


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "GIF")
    return out.getvalue()


def test_limits_bombs_and_broken_zips(client: TestClient, tenant: Tenant,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 60_000)
    ds = create_dataset(client, tenant)
    big = image_bytes("PNG", (200, 120))  # noise does not compress: ~72 KB
    many = make_zip({f"f{i}.png": b"" for i in range(limits.MAX_ZIP_ENTRIES + 1)})
    ratio_bomb = make_zip({"zeros.png": b"\x00" * (8 * limits.MB), "ok.png": image_bytes()})
    result = upload(client, tenant, ds["id"], [
        ("big.png", big), ("bomb.png", png_bomb()), ("good.png", image_bytes()),
        ("many.zip", many), ("ratio.zip", ratio_bomb), ("empty.zip", make_zip({})),
        ("junk-only.zip", make_zip({"__MACOSX/._a.png": b"x", ".hidden": b"y"})),
        ("broken.zip", b"PK\x03\x04 definitely not a zip"),
    ])
    assert [i["filename"] for i in result["created"]] == ["good.png", "ok.png"]
    why = reasons(result)
    assert f"{len(big)} bytes; the per-file limit is 60000 bytes" in why["big.png"]
    assert "decompression bomb" in why["bomb.png"] and "400000000 pixels" in why["bomb.png"]
    assert f"{limits.MAX_ZIP_ENTRIES + 1} entries" in why["many.zip"]
    assert "zip bomb" in why["ratio.zip:zeros.png"]
    assert why["empty.zip"] == why["junk-only.zip"] == "zip contains no images"
    assert "not a valid zip archive" in why["broken.zip"]


def test_zip_total_uncompressed_size_is_capped(client: TestClient, tenant: Tenant,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_ZIP_UNCOMPRESSED_BYTES", 10_000)
    ds = create_dataset(client, tenant)
    result = upload(client, tenant, ds["id"], [
        ("huge.zip", make_zip({"a.png": image_bytes("PNG", (80, 80))})),
    ])
    assert "zip expands to" in reasons(result)["huge.zip"]
    assert result["created"] == []


def test_exif_orientation_is_applied(client: TestClient, tenant: Tenant) -> None:
    ds = create_dataset(client, tenant)
    # Orientation 6: stored landscape, meant to be shown rotated 90° clockwise (portrait).
    photo = image_bytes("JPEG", (40, 20), exif_orientation=6)
    item = upload(client, tenant, ds["id"], [("phone.jpg", photo)])["created"][0]
    assert (item["width"], item["height"]) == (20, 40)
    stored = Image.open(io.BytesIO(fetch(client, item["url"])))
    assert stored.size == (20, 40)
    assert stored.getexif().get(0x0112) in (None, 1)
    # The same photo again is still recognised as a duplicate (re-encoding is deterministic).
    again = upload(client, tenant, ds["id"], [("copy.jpg", photo)])
    assert reasons(again) == {"copy.jpg": "duplicate of phone.jpg"}


def test_duplicates_across_requests_and_datasets(client: TestClient, tenant: Tenant) -> None:
    one, two = create_dataset(client, tenant, "one"), create_dataset(client, tenant, "two")
    png = image_bytes()
    assert len(upload(client, tenant, one["id"], [("x.png", png)])["created"]) == 1
    assert reasons(upload(client, tenant, one["id"], [("y.png", png)])) == {
        "y.png": "duplicate of x.png"}
    # De-duplication is per dataset: another dataset may hold the same picture.
    assert len(upload(client, tenant, two["id"], [("x.png", png)])["created"]) == 1


def test_org_storage_limit(client: TestClient, tenant: Tenant) -> None:
    from app.core.db import session_scope
    from app.models import Organization

    ds = create_dataset(client, tenant)
    first = image_bytes("PNG", (40, 40))
    upload(client, tenant, ds["id"], [("first.png", first)])
    with session_scope() as db:
        org = db.get(Organization, tenant.org_id)
        assert org is not None
        org.storage_limit_bytes = len(first) + 6000
    files = [("a.png", image_bytes("PNG", (40, 40))), ("b.png", image_bytes("PNG", (40, 40)))]
    r = client.post(f"/v1/datasets/{ds['id']}/items", headers=tenant.auth,
                    files=[("files", f) for f in files])
    assert r.status_code == 413, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["quota"] == "storage_limit_bytes" and body["limit"] == len(first) + 6000
    assert body["used"] == len(first)
    assert str(body["limit"]) in body["detail"]
    assert len(list_items(client, tenant, ds["id"])) == 1
    # A request that fits is stored.
    small = image_bytes("PNG", (8, 8))
    assert len(upload(client, tenant, ds["id"], [("small.png", small)])["created"]) == 1


def test_upload_needs_files_and_write_scope(client: TestClient, tenant: Tenant) -> None:
    from tests.conftest import make_tenant

    ds = create_dataset(client, tenant)
    r = client.post(f"/v1/datasets/{ds['id']}/items", headers=tenant.auth,
                    data={"other": "x"}, files=[("nope", ("a.png", b"x"))])
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "files"]
    reader = make_tenant(scopes=["datasets:read"])
    own = client.post("/v1/datasets", json={"name": "x"}, headers=reader.auth)
    assert own.status_code == 403
