"""Long-lived, revocable model links (InvokeAI's install-from-URL), attacked first.

A link's URLs need no API key: the token in the path is the credential. These tests show who
may make and revoke links, that a link serves exactly its model's files (on local and S3
storage), and that a revoked, expired, guessed or foreign token gets one and the same 404.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.core.db import session_scope
from app.core.errors import NotFound
from app.library import links
from app.models import AuditEvent, ModelLink
from app.storage.base import Storage
from tests.conftest import Tenant, make_tenant
from tests.library.helpers import make_job


def _model(api: TestClient, storage: Storage, tenant: Tenant, type: str = "pivotal",
           name: str = "Red Cat") -> dict:
    fx = make_job(storage, tenant.org_id, steps=[3], type=type, name=name, state_file=False)
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [3]}, headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()["models"][0]


def _link(api: TestClient, tenant: Tenant, model_id: str, **body: object) -> dict:
    r = api.post(f"/v1/models/{model_id}/links", json=body, headers=tenant.auth)
    assert r.status_code == 201, r.text
    return r.json()


def _path(url: str) -> str:
    assert url.startswith("http://testserver/v1/model-links/"), url
    return url.removeprefix("http://testserver")


def _gone(api: TestClient, url: str) -> dict:
    """A link URL must answer 404 with the one body every dead link gets."""
    r = api.get(_path(url) if url.startswith("http") else url)
    assert r.status_code == 404, (r.status_code, r.text[:200])
    return r.json()


def _forge(url: str, token: str) -> str:
    _, _, rest = _path(url).removeprefix("/v1/model-links/").partition("/")
    return f"/v1/model-links/{token}/{rest}"


def test_link_serves_every_file_without_credentials(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    model = _model(api, storage, tenant)
    link = _link(api, tenant, model["id"], name="studio InvokeAI", expires_in_days=30)
    assert link["name"] == "studio InvokeAI" and link["revoked_at"] is None
    lifetime = datetime.fromisoformat(link["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    by_name = {f["name"]: f for f in model["files"]}
    assert {f["name"] for f in link["files"]} == set(by_name)
    for f in link["files"]:
        r = api.get(_path(f["url"]))  # no Authorization header, no cookie
        assert r.status_code == 200, r.text
        assert hashlib.sha256(r.content).hexdigest() == by_name[f["name"]]["sha256"]
        assert r.headers["content-length"] == str(by_name[f["name"]]["bytes"])
        # InvokeAI names the downloaded file from filename="..." in Content-Disposition.
        assert f'filename="{by_name[f["name"]]["download_name"]}"' in (
            r.headers["content-disposition"])
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-type"] == "application/octet-stream"
        assert "orgs/" not in str(r.headers) and "amazonaws" not in str(r.headers)
    listed = api.get(f"/v1/models/{model['id']}/links", headers=tenant.auth).json()["items"]
    (row,) = listed
    assert row["id"] == link["id"] and row["last_used_at"] is not None
    # Metadata only: the token (or its hash) is never shown again.
    token = _path(link["files"][0]["url"]).split("/")[3]
    assert token not in str(listed) and hashlib.sha256(token.encode()).hexdigest() not in (
        str(listed))
    assert set(row) == {"id", "model_id", "name", "created_by", "created_at", "expires_at",
                        "revoked_at", "last_used_at"}


def test_defaults_and_bounds(api: TestClient, storage: Storage, tenant: Tenant) -> None:
    model = _model(api, storage, tenant, type="lora")
    r = api.post(f"/v1/models/{model['id']}/links", headers=tenant.auth)  # no body at all
    assert r.status_code == 201, r.text
    lifetime = datetime.fromisoformat(r.json()["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=89) < lifetime <= timedelta(days=90)
    for days in (0, 366, -1):
        r = api.post(f"/v1/models/{model['id']}/links", json={"expires_in_days": days},
                     headers=tenant.auth)
        assert r.status_code == 422, r.text
        assert "expires_in_days" in r.text


def test_another_org_cannot_create_list_or_revoke(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    model = _model(api, storage, tenant)
    link = _link(api, tenant, model["id"])
    other = make_tenant()
    base = f"/v1/models/{model['id']}/links"
    assert api.post(base, json={}, headers=other.auth).status_code == 404
    assert api.get(base, headers=other.auth).status_code == 404
    assert api.delete(f"{base}/{link['id']}", headers=other.auth).status_code == 404
    # Their own model's path with our link id: still not theirs.
    theirs = _model(api, storage, other, type="lora", name="Theirs")
    r = api.delete(f"/v1/models/{theirs['id']}/links/{link['id']}", headers=other.auth)
    assert r.status_code == 404
    # A link id of another model of the same org is a 404 under this model too.
    mine = _model(api, storage, tenant, type="lora", name="Second")
    r = api.delete(f"/v1/models/{mine['id']}/links/{link['id']}", headers=tenant.auth)
    assert r.status_code == 404
    assert api.get(_path(link["files"][0]["url"])).status_code == 200  # untouched


def test_read_only_keys_may_list_but_not_create_or_revoke(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    model = _model(api, storage, tenant, type="lora")
    link = _link(api, tenant, model["id"])
    reader = make_tenant(["models:read"])  # a key of another org: scopes first, then tenancy
    from app.identity import service

    with session_scope() as db:
        _, key = service.create_api_key(db, tenant.org_id, "reader", ["models:read"])
    auth = {"Authorization": f"Bearer {key}"}
    base = f"/v1/models/{model['id']}/links"
    assert api.get(base, headers=auth).status_code == 200
    assert api.post(base, json={}, headers=auth).status_code == 403
    assert api.delete(f"{base}/{link['id']}", headers=auth).status_code == 403
    assert api.get(base, headers=reader.auth).status_code == 404


def test_revoked_link_stops_at_once_and_revoke_is_audited_once(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    model = _model(api, storage, tenant)
    link = _link(api, tenant, model["id"])
    url = link["files"][0]["url"]
    assert api.get(_path(url)).status_code == 200
    r = api.delete(f"/v1/models/{model['id']}/links/{link['id']}", headers=tenant.auth)
    assert r.status_code == 204
    for f in link["files"]:
        _gone(api, f["url"])
    again = api.delete(f"/v1/models/{model['id']}/links/{link['id']}", headers=tenant.auth)
    assert again.status_code == 204  # idempotent
    (row,) = api.get(f"/v1/models/{model['id']}/links", headers=tenant.auth).json()["items"]
    assert row["revoked_at"] is not None
    with session_scope() as db:
        actions = list(db.scalars(select(AuditEvent.action).where(
            AuditEvent.org_id == tenant.org_id, AuditEvent.action.like("model_link.%"))))
    assert sorted(actions) == ["model_link.create", "model_link.revoke"]


def test_dead_links_all_answer_the_same(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    """Revoked, expired, guessed, malformed, or a real token with a name that is not one of
    its files: one status, one body, so nothing tells which tokens exist."""
    model = _model(api, storage, tenant)
    revoked, expired, live = (_link(api, tenant, model["id"]) for _ in range(3))
    api.delete(f"/v1/models/{model['id']}/links/{revoked['id']}", headers=tenant.auth)
    with session_scope() as db:
        db.execute(update(ModelLink).where(ModelLink.id == expired["id"]).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    url = live["files"][0]["url"]
    bodies = [
        _gone(api, revoked["files"][0]["url"]),
        _gone(api, expired["files"][0]["url"]),
        _gone(api, _forge(url, secrets.token_urlsafe(32))),  # a guess of the right shape
        _gone(api, _forge(url, "x")),
        _gone(api, _forge(url, "a" * 5000)),
        _gone(api, _path(url).rsplit("/", 1)[0] + "/trainable.safetensors"),
        _gone(api, _path(url).rsplit("/", 1)[0] + "/..%2F..%2Fsecret"),
        _gone(api, _path(url) + "/more"),
    ]
    assert all(b == bodies[0] for b in bodies), bodies
    assert "orgs/" not in str(bodies) and model["id"] not in str(bodies)
    assert api.get(_path(url)).status_code == 200  # the live one still works


def test_a_token_serves_only_its_own_model(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    a = _model(api, storage, tenant, name="Model A")
    b = _model(api, storage, tenant, name="Model B")
    link_a = _link(api, tenant, a["id"])
    sha_a = {f["name"]: f["sha256"] for f in a["files"]}
    sha_b = {f["name"]: f["sha256"] for f in b["files"]}
    base = _path(link_a["files"][0]["url"]).rsplit("/", 1)[0]
    for f in b["files"]:
        # B's stored names are A's too: the token still answers with A's bytes, never B's.
        r = api.get(f"{base}/{f['name']}")
        assert r.status_code == 200
        digest = hashlib.sha256(r.content).hexdigest()
        assert digest == sha_a[f["name"]] and digest != sha_b[f["name"]]
        # B's download names from its own model name are not A's files (an embedding is
        # named by the trigger word, which both share).
        if f["download_name"] not in {g["download_name"] for g in a["files"]}:
            _gone(api, f"{base}/{f['download_name']}")
    # B's id or key in the path instead of a file name reaches nothing either.
    _gone(api, f"{base}/{b['id']}")


def test_deleting_the_model_kills_its_links(
    api: TestClient, storage: Storage, tenant: Tenant
) -> None:
    model = _model(api, storage, tenant)
    link = _link(api, tenant, model["id"])
    assert api.delete(f"/v1/models/{model['id']}", headers=tenant.auth).status_code == 204
    _gone(api, link["files"][0]["url"])
    with session_scope() as db:
        assert db.scalar(select(ModelLink).where(ModelLink.id == link["id"])) is None


def test_cap_on_active_links(
    api: TestClient, storage: Storage, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(links, "MAX_ACTIVE_PER_MODEL", 2)
    model = _model(api, storage, tenant, type="lora")
    first = _link(api, tenant, model["id"])
    _link(api, tenant, model["id"])
    r = api.post(f"/v1/models/{model['id']}/links", json={}, headers=tenant.auth)
    assert r.status_code == 409 and "revoke" in r.json()["detail"]
    api.delete(f"/v1/models/{model['id']}/links/{first['id']}", headers=tenant.auth)
    _link(api, tenant, model["id"])  # a revoked link frees its place


@pytest.mark.parametrize("order", ["revoke_first", "use_first"])
def test_revoke_and_use_race(
    api: TestClient, storage: Storage, tenant: Tenant, order: str
) -> None:
    """Two transactions on the same link, each holding it while the other starts: a use never
    succeeds after the revoke committed, and a use that got in first finishes cleanly."""
    model = _model(api, storage, tenant, type="lora")
    link = _link(api, tenant, model["id"])
    token = _path(link["files"][0]["url"]).split("/")[3]
    outcome: dict[str, object] = {}

    def use_in_thread(started: threading.Event) -> None:
        with session_scope() as db:
            started.set()
            try:
                links.use(db, token, "lora.safetensors")
                outcome["use"] = "served"
            except NotFound:
                outcome["use"] = "404"

    def revoke_in_thread(started: threading.Event) -> None:
        with session_scope() as db:
            started.set()
            row = db.get(ModelLink, link["id"])
            assert row is not None
            outcome["revoke"] = links.revoke(db, row)

    with session_scope() as db:
        started = threading.Event()
        if order == "revoke_first":
            row = db.get(ModelLink, link["id"])
            assert row is not None and links.revoke(db, row)  # holds the row until commit
            other = threading.Thread(target=use_in_thread, args=(started,))
        else:
            links.use(db, token, "lora.safetensors")  # holds the row until commit
            other = threading.Thread(target=revoke_in_thread, args=(started,))
        other.start()
        assert started.wait(5)
        other.join(0.5)
        assert other.is_alive(), "the second transaction did not wait for the first"
    other.join(10)
    assert not other.is_alive()
    if order == "revoke_first":
        assert outcome == {"use": "404"}
    else:
        assert outcome == {"revoke": True}
    _gone(api, link["files"][0]["url"])  # either way, revoked from now on
