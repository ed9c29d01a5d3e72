"""Caption editing, bulk operations, the uncaptioned filter, import, and export round trips."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.datasets.helpers import (
    create_dataset,
    image_bytes,
    list_items,
    make_zip,
    read_zip,
    upload,
)


def _dataset_with(client: TestClient, tenant: Tenant, names: list[str]
                  ) -> tuple[str, dict[str, dict[str, Any]]]:
    ds = create_dataset(client, tenant)
    result = upload(client, tenant, ds["id"], [(n, image_bytes()) for n in names])
    return ds["id"], {i["filename"]: i for i in result["created"]}


def _captions(client: TestClient, tenant: Tenant, dataset_id: str) -> dict[str, str | None]:
    return {i["filename"]: i["caption"] for i in list_items(client, tenant, dataset_id)}


def test_edit_one_many_and_filter(client: TestClient, tenant: Tenant) -> None:
    dsid, items = _dataset_with(client, tenant, ["a.png", "b.png", "c.png"])
    r = client.patch(f"/v1/datasets/{dsid}/items/{items['a.png']['id']}",
                     json={"caption": "  a red fox  "}, headers=tenant.auth)
    assert r.status_code == 200 and r.json()["caption"] == "a red fox"
    r = client.patch(f"/v1/datasets/{dsid}/items", headers=tenant.auth, json={"items": [
        {"id": items["b.png"]["id"], "caption": "a blue fox"},
        {"id": items["c.png"]["id"], "caption": "   "},  # blank counts as uncaptioned
    ]})
    assert r.status_code == 200 and r.json()["updated"] == 2
    assert _captions(client, tenant, dsid) == {
        "a.png": "a red fox", "b.png": "a blue fox", "c.png": None}
    uncaptioned = list_items(client, tenant, dsid, uncaptioned="true")
    assert [i["filename"] for i in uncaptioned] == ["c.png"]
    ds = client.get(f"/v1/datasets/{dsid}", headers=tenant.auth).json()
    assert (ds["item_count"], ds["captioned_count"]) == (3, 2)

    # An id outside the dataset fails the whole bulk edit, naming where.
    r = client.patch(f"/v1/datasets/{dsid}/items", headers=tenant.auth, json={"items": [
        {"id": items["a.png"]["id"], "caption": "changed"}, {"id": "missing", "caption": "x"}]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "items", "1", "id"]
    assert _captions(client, tenant, dsid)["a.png"] == "a red fox"


def test_bulk_operations(client: TestClient, tenant: Tenant) -> None:
    dsid, items = _dataset_with(client, tenant, ["a.png", "b.png"])
    client.patch(f"/v1/datasets/{dsid}/items/{items['a.png']['id']}",
                 json={"caption": "a photo of a cat"}, headers=tenant.auth)

    def op(**body: Any) -> int:
        r = client.post(f"/v1/datasets/{dsid}/captions/bulk", json=body, headers=tenant.auth)
        assert r.status_code == 200, r.text
        return r.json()["updated"]

    assert op(op="prepend", text="sks", separator=", ") == 2
    assert _captions(client, tenant, dsid) == {"a.png": "sks, a photo of a cat", "b.png": "sks"}
    assert op(op="append", text="high quality", separator=", ") == 2
    assert op(op="replace", find="cat", replace="dog") == 1
    assert _captions(client, tenant, dsid) == {
        "a.png": "sks, a photo of a dog, high quality", "b.png": "sks, high quality"}
    assert op(op="clear", item_ids=[items["b.png"]["id"]]) == 1
    assert _captions(client, tenant, dsid)["b.png"] is None
    r = client.post(f"/v1/datasets/{dsid}/captions/bulk", json={"op": "replace"},
                    headers=tenant.auth)
    assert r.status_code == 422


def test_export_then_import_round_trips(client: TestClient, tenant: Tenant) -> None:
    ds = create_dataset(client, tenant, "Round trip")
    jpeg_named_png = image_bytes("JPEG")
    upload(client, tenant, ds["id"], [
        ("a.png", image_bytes()), ("b.png", image_bytes()), ("x.png", jpeg_named_png),
        ("pack.zip", make_zip({"sub/a.png": image_bytes(), "sub/a.txt": b"nested a"})),
    ])
    items = {i["filename"]: i for i in list_items(client, tenant, ds["id"])}
    captions = {"a.png": "first, with ünïcode", "b.png": "second\nline", "x.png": None,
                "sub/a.png": "nested a"}
    client.patch(f"/v1/datasets/{ds['id']}/items", headers=tenant.auth, json={"items": [
        {"id": items[n]["id"], "caption": c} for n, c in captions.items()]})

    r = client.get(f"/v1/datasets/{ds['id']}/export", headers=tenant.auth)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert "Round trip.zip" in r.headers["content-disposition"]
    files = read_zip(r.content)
    # The JPEG uploaded as x.png exports with its real extension; uncaptioned has no .txt.
    assert set(files) == {"a.png", "a.txt", "b.png", "b.txt", "x.jpg", "sub/a.png",
                          "sub/a.txt", "data.jsonl"}
    assert files["x.jpg"] == jpeg_named_png
    assert files["a.txt"].decode() == "first, with ünïcode"
    lines = [json.loads(line) for line in files["data.jsonl"].decode().splitlines()]
    assert {line["image"]: line["text"] for line in lines} == {
        "a.png": "first, with ünïcode", "b.png": "second\nline", "x.jpg": "",
        "sub/a.png": "nested a"}

    def clear() -> None:
        client.post(f"/v1/datasets/{ds['id']}/captions/bulk", json={"op": "clear"},
                    headers=tenant.auth)

    def import_(name: str, data: bytes) -> dict[str, Any]:
        r = client.post(f"/v1/datasets/{ds['id']}/captions/import", headers=tenant.auth,
                        files={"file": (name, data)})
        assert r.status_code == 200, r.text
        return r.json()

    clear()
    result = import_("data.jsonl", files["data.jsonl"])
    assert result == {"updated": 3, "unmatched": [], "errors": []}
    assert _captions(client, tenant, ds["id"]) == captions
    clear()
    assert import_("export.zip", r.content)["updated"] == 3  # .txt files inside the zip
    assert _captions(client, tenant, ds["id"]) == captions

    # The export is also a valid upload: a new dataset gets the same images and captions.
    copy = create_dataset(client, tenant, "copy")
    again = upload(client, tenant, copy["id"], [("export.zip", r.content)])
    assert again["rejected"] == []
    assert {i["filename"]: i["caption"] for i in again["created"]} == {
        "a.png": captions["a.png"], "b.png": captions["b.png"], "x.jpg": None,
        "sub/a.png": "nested a"}


def test_import_reports_bad_lines_and_unknown_images(client: TestClient, tenant: Tenant) -> None:
    dsid, _ = _dataset_with(client, tenant, ["cat.png"])
    jsonl = b"\n".join([
        b'{"image": "images/cat.png", "text": "a cat"}',  # folders ignored when unambiguous
        b'{"image": "dog.png", "text": "a dog"}',
        b"not json",
        b'{"text": "no image"}',
        b'{"image": "cat.png", "text": 5}',
    ])
    r = client.post(f"/v1/datasets/{dsid}/captions/import", headers=tenant.auth,
                    files={"file": ("data.jsonl", jsonl)})
    body = r.json()
    assert body["updated"] == 1 and body["unmatched"] == ["dog.png"]
    assert [e.split(":")[0] for e in body["errors"]] == ["line 3", "line 4", "line 5"]
    assert _captions(client, tenant, dsid) == {"cat.png": "a cat"}
