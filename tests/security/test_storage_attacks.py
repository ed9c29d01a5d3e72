"""Attacks on the local backend's `/storage/{token}` URLs, through the real app.

Each test is an attack that worked when every install signed with the same built-in secret and
served whatever content type a token named: forging tokens, planting HTML on our origin,
escaping the storage root.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from tests.conftest import Tenant
from tests.datasets.helpers import create_dataset, image_bytes, list_items, upload

OLD_PUBLIC_SECRET = "dev-insecure-secret-key-change-me"
PAGE = b"<html><script>fetch('/v1/api-keys',{method:'POST'})</script></html>"


def _storage() -> Any:
    from app.storage.factory import get_storage

    return get_storage()


def _forge(secret: str, purpose: str, key: str, **extra: Any) -> str:
    """A token as the signer makes it (old and new payload fields), signed with ``secret``."""
    payload = {"k": key, "e": int(time.time()) + 3600, "p": purpose, **extra}
    if key.startswith("orgs/"):
        payload.setdefault("o", key.split("/")[1])
    return URLSafeTimedSerializer(secret).dumps(payload, salt=f"atelier.storage.{purpose}")


def _item_key(client: TestClient, tenant: Tenant) -> tuple[str, bytes]:
    ds = create_dataset(client, tenant)
    data = image_bytes("PNG")
    assert len(upload(client, tenant, ds["id"], [("a.png", data)])["created"]) == 1
    from app.core.db import session_scope
    from app.models import DatasetItem

    with session_scope() as db:
        item = db.query(DatasetItem).filter(DatasetItem.dataset_id == ds["id"]).one()
        return item.storage_key, data


def test_tokens_forged_with_the_old_public_secret_are_refused(
    client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    # The victim's model file and dataset image, stored by the server.
    model_key = f"orgs/{other_tenant.org_id}/models/m1/model.safetensors"
    _storage().put(model_key, b"weights", "application/octet-stream")
    image_key, image = _item_key(client, other_tenant)

    for extra in ({}, {"ct": "text/html"}):
        r = client.get(f"/storage/{_forge(OLD_PUBLIC_SECRET, 'get', model_key, **extra)}")
        assert r.status_code == 403, r.text
        assert b"weights" not in r.content
    put = _forge(OLD_PUBLIC_SECRET, "put", image_key, ct="text/html")
    r = client.put(f"/storage/{put}", content=PAGE, headers={"Content-Type": "text/html"})
    assert r.status_code == 403
    post = _forge(OLD_PUBLIC_SECRET, "post", image_key, ct="text/html", mb=10_000)
    r = client.post(f"/storage/{post}", data={"key": image_key, "Content-Type": "text/html"},
                    files={"file": ("x.html", PAGE, "text/html")})
    assert r.status_code == 403
    assert _storage().get(image_key) == image  # untouched
    assert _storage().head(image_key).content_type == "image/png"


def test_html_cannot_be_uploaded_through_a_dataset_presigned_url(
    client: TestClient, tenant: Tenant
) -> None:
    ds = create_dataset(client, tenant)
    r = client.post(f"/v1/datasets/{ds['id']}/uploads", headers=tenant.auth, json={"files": [
        {"filename": "a.png", "content_type": "image/png", "size": len(PAGE)},
        {"filename": "b.html", "content_type": "text/html", "size": len(PAGE)},
        {"filename": "c.svg", "content_type": "image/svg+xml", "size": len(PAGE)},
    ]})
    assert r.status_code == 200, r.text
    assert {x["filename"] for x in r.json()["rejected"]} == {"b.html", "c.svg"}
    (up,) = r.json()["uploads"]
    assert up["url"].startswith("http://testserver/storage/")
    # The page under its own type, and the page disguised as the signed image type.
    as_html = client.post(up["url"], data={**up["fields"], "Content-Type": "text/html"},
                          files={"file": ("a.html", PAGE, "text/html")})
    assert as_html.status_code == 403
    disguised = client.post(up["url"], data=up["fields"], files={"file": ("a.png", PAGE,
                                                                          "image/png")})
    assert disguised.status_code == 415, disguised.text
    key = up["fields"]["key"]
    assert _storage().head(key) is None


def test_the_storage_layer_signs_uploads_only_for_image_types() -> None:
    for content_type in ("text/html", "image/svg+xml", "application/octet-stream"):
        with pytest.raises(ValueError, match="presigned uploads accept only"):
            _storage().presign_post("orgs/x/datasets/d/uploads/u", content_type, 100)
        with pytest.raises(ValueError, match="presigned uploads accept only"):
            _storage().presign_put("orgs/x/datasets/d/uploads/u", content_type)


@pytest.mark.parametrize(("stored", "inline"), [
    ("text/html", False), ("image/svg+xml", False), ("application/xhtml+xml", False),
    ("text/xml", False), ("application/json", False), ("application/octet-stream", False),
    ("image/png", True), ("image/webp", True),
])
def test_nothing_served_from_storage_runs_as_a_page(
    client: TestClient, tenant: Tenant, stored: str, inline: bool
) -> None:
    # Whatever type ended up in an object's record, the answer cannot execute on our origin.
    key = f"orgs/{tenant.org_id}/jobs/j/files/thing"
    _storage().put(key, PAGE, stored)
    r = client.get(_storage().presign_get(key))
    assert r.status_code == 200 and r.content == PAGE
    ctype = r.headers["content-type"]
    assert "html" not in ctype and "xml" not in ctype and "svg" not in ctype
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert r.headers["referrer-policy"] == "no-referrer"
    if inline:
        assert ctype == stored and "content-disposition" not in r.headers
    else:
        assert r.headers["content-disposition"].startswith("attachment;")


def test_dataset_images_are_served_inline_with_safe_headers(
    client: TestClient, tenant: Tenant
) -> None:
    ds = create_dataset(client, tenant)
    upload(client, tenant, ds["id"], [("a.png", image_bytes("PNG"))])
    (item,) = list_items(client, tenant, ds["id"])
    for url in (item["url"], item["thumbnail_url"]):
        r = client.get(url)
        assert r.status_code == 200
        assert r.headers["content-type"] in ("image/png", "image/webp")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]


@pytest.mark.parametrize("key", [
    "../atelier.db", "/etc/passwd", "orgs/x/../../atelier.db", "a\x00b", ".meta/x.json",
    "orgs/x/a\\..\\..\\atelier.db", "",
])
def test_escaping_or_malformed_keys_are_4xx(client: TestClient, key: str) -> None:
    # Even with the deployment's own secret (a leak, or a bug that signs a bad key).
    from app.core.settings import get_settings

    secret = get_settings().secret_key
    for purpose, method in (("get", "GET"), ("put", "PUT"), ("post", "POST")):
        token = _forge(secret, purpose, key, ct="image/png", mb=100)
        r = client.request(method, f"/storage/{token}", content=b"\x89PNG\r\n\x1a\n",
                           headers={"Content-Type": "image/png"})
        assert 400 <= r.status_code < 500, (key, method, r.status_code, r.text)
        assert "atelier.db" not in r.text and "Traceback" not in r.text


def test_a_token_naming_another_org_is_refused(
    client: TestClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    from app.core.settings import get_settings

    key = f"orgs/{other_tenant.org_id}/models/m/model.safetensors"
    _storage().put(key, b"weights", "application/octet-stream")
    token = _forge(get_settings().secret_key, "get", key, o=tenant.org_id)
    assert client.get(f"/storage/{token}").status_code == 403


@pytest.mark.parametrize("token", ["..%2Fatelier.db", "x" * 5000, "not-a-token", "%00"])
def test_garbage_tokens_are_4xx(client: TestClient, token: str) -> None:
    r = client.get(f"/storage/{token}")
    assert 400 <= r.status_code < 500, (token, r.status_code)
