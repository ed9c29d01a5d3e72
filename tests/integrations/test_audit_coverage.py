"""Every mutating /v1 route leaves an audit event: each one is performed successfully once and
``GET /v1/audit-events`` must then show the expected action for the expected target.

A mutating route in /openapi.json that is missing from ``ACTIONS`` fails the test, so a new
route must say what it records.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant, login, make_tenant
from tests.integrations.world import (
    BASE_MODEL,
    CAPTIONER,
    World,
    build_world,
    png,
    quiet_side_effects,
)

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Ctx:
    client: TestClient
    tenant: Tenant
    world: World

    @property
    def ids(self) -> dict[str, str]:
        return self.world.ids

    def call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        return self.client.request(method, path.format(**self.ids), headers=self.tenant.auth,
                                   **kwargs)  # type: ignore[arg-type]


def _switch_org(c: Ctx) -> httpx.Response:
    other = make_tenant()
    from app.core.db import session_scope
    from app.identity import service
    from app.models import Organization, User

    with session_scope() as db:
        user = db.query(User).filter(User.email == c.tenant.email).one()
        service.add_member(db, db.get(Organization, other.org_id), user, "member")  # type: ignore[arg-type]
    csrf = login(c.client, c.tenant.email, c.tenant.password)
    r = c.client.post("/v1/auth/switch-org", json={"org_id": other.org_id},
                      headers={"X-CSRF-Token": csrf})
    c.client.cookies.clear()
    c.tenant = other  # the login is recorded in the org entered (checked with its key)
    return r


def _logout(c: Ctx) -> httpx.Response:
    csrf = login(c.client, c.tenant.email, c.tenant.password)
    r = c.client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    c.client.cookies.clear()
    return r


def _login(c: Ctx) -> httpx.Response:
    r = c.client.post("/v1/auth/login",
                      json={"email": c.tenant.email, "password": c.tenant.password})
    c.client.cookies.clear()
    return r


def _accept_invitation(c: Ctx) -> httpx.Response:
    url = c.call("POST", "/v1/invitations", json={
        "email": f"joiner-{c.tenant.slug}@example.com", "role": "viewer"}).json()["url"]
    newcomer = TestClient(c.client.app)  # the invitee's own browser
    return newcomer.post(f"/v1/invitations/{url.rsplit('/', 1)[-1]}/accept",
                         json={"name": "Joiner", "password": "pw-joiner-secret"})


def _reset_password(c: Ctx) -> httpx.Response:
    from app.core.db import session_scope
    from app.identity import password_reset
    from app.models import User

    with session_scope() as db:  # the token the mail would carry
        token = password_reset.issue(db, db.query(User).filter(
            User.email == c.tenant.email).one())
    # The same password again: later steps still sign in with it.
    return c.client.post(f"/v1/auth/password-reset/{token}",
                         json={"password": c.tenant.password})


def _change_password(c: Ctx) -> httpx.Response:
    csrf = login(c.client, c.tenant.email, c.tenant.password)
    r = c.client.post("/v1/auth/password", headers={"X-CSRF-Token": csrf}, json={
        "current_password": c.tenant.password, "new_password": c.tenant.password})
    c.client.cookies.clear()
    return r


def _complete_upload(c: Ctx) -> httpx.Response:
    data = png(4242)
    made = c.call("POST", "/v1/datasets/{dataset_id}/uploads", json={"files": [
        {"filename": "direct.png", "content_type": "image/png", "size": len(data)}]}).json()
    up = made["uploads"][0]
    sent = c.client.post(up["url"], data=up["fields"],
                         files={"file": ("direct.png", data, "image/png")})
    assert sent.status_code == 204, sent.text
    return c.call("POST", "/v1/datasets/{dataset_id}/uploads/complete",
                  json={"upload_ids": [up["upload_id"]]})


def _import_captions(c: Ctx) -> httpx.Response:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("0.txt", "imported caption")
    return c.call("POST", "/v1/datasets/{dataset_id}/captions/import",
                  files={"file": ("captions.zip", buf.getvalue(), "application/zip")})


def _create_job(c: Ctx) -> httpx.Response:
    # A dataset of its own: the queued job pins it, and the world's dataset is deleted later.
    dataset = c.call("POST", "/v1/datasets", json={"name": "for a job"}).json()
    c.call("POST", f"/v1/datasets/{dataset['id']}/items",
           files=[("files", ("j.png", png(31337), "image/png"))])
    return c.call("POST", "/v1/jobs", json={
        "name": "audited", "dataset_id": dataset["id"], "type": "lora",
        "base_model": BASE_MODEL, "caption_prefix": "zkw", "max_train_steps": 4})


def _create_caption_job(c: Ctx) -> httpx.Response:
    # A dataset of its own: the world's dataset already has an active caption job.
    dataset = c.call("POST", "/v1/datasets", json={"name": "to caption"}).json()
    c.call("POST", f"/v1/datasets/{dataset['id']}/items",
           files=[("files", ("c.png", png(4711), "image/png"))])
    return c.call("POST", f"/v1/datasets/{dataset['id']}/caption-jobs",
                  json={"captioner": CAPTIONER})


Perform = Callable[[Ctx], httpx.Response]
# (method, path) -> (expected action, how to perform it successfully)
ACTIONS: dict[tuple[str, str], tuple[str, Perform]] = {
    ("POST", "/v1/auth/login"): ("auth.login", _login),
    ("POST", "/v1/auth/logout"): ("auth.logout", _logout),
    ("POST", "/v1/api-keys"): ("api_key.create", lambda c: c.call(
        "POST", "/v1/api-keys", json={"name": "audited", "scopes": ["jobs:read"]})),
    ("POST", "/v1/api-keys/{key_id}/rotate"): ("api_key.rotate", lambda c: c.call(
        "POST", "/v1/api-keys/{key_id}/rotate")),
    ("DELETE", "/v1/api-keys/{key_id}"): ("api_key.revoke", lambda c: c.call(
        "DELETE", "/v1/api-keys/{key_id}")),
    ("POST", "/v1/members"): ("invitation.create", lambda c: c.call(
        "POST", "/v1/members", json={"email": "audited-new@example.com", "role": "viewer"})),
    ("POST", "/v1/invitations"): ("invitation.create", lambda c: c.call(
        "POST", "/v1/invitations", json={"email": "audited-inv@example.com", "role": "viewer"})),
    ("POST", "/v1/invitations/{token}/accept"): ("invitation.accept", _accept_invitation),
    ("DELETE", "/v1/invitations/{invitation_id}"): ("invitation.revoke", lambda c: c.call(
        "DELETE", "/v1/invitations/{invitation_id}")),
    ("POST", "/v1/auth/password-reset"): ("auth.password_reset.request", lambda c:
        c.client.post("/v1/auth/password-reset", json={"email": c.tenant.email})),
    ("POST", "/v1/auth/password-reset/{token}"): ("auth.password_reset", _reset_password),
    ("POST", "/v1/auth/password"): ("auth.password_change", _change_password),
    ("PATCH", "/v1/members/{member_id}"): ("member.update", lambda c: c.call(
        "PATCH", "/v1/members/{member_id}", json={"role": "viewer"})),
    ("DELETE", "/v1/members/{member_id}"): ("member.remove", lambda c: c.call(
        "DELETE", "/v1/members/{member_id}")),
    ("POST", "/v1/datasets"): ("dataset.create", lambda c: c.call(
        "POST", "/v1/datasets", json={"name": "audited"})),
    ("PATCH", "/v1/datasets/{dataset_id}"): ("dataset.update", lambda c: c.call(
        "PATCH", "/v1/datasets/{dataset_id}", json={"description": "audited"})),
    ("POST", "/v1/datasets/{dataset_id}/items"): ("dataset.items.upload", lambda c: c.call(
        "POST", "/v1/datasets/{dataset_id}/items",
        files=[("files", ("more.png", png(777), "image/png"))])),
    ("PATCH", "/v1/datasets/{dataset_id}/items"): ("dataset.items.update", lambda c: c.call(
        "PATCH", "/v1/datasets/{dataset_id}/items",
        json={"items": [{"id": c.ids["item_id"], "caption": "bulk"}]})),
    ("PATCH", "/v1/datasets/{dataset_id}/items/{item_id}"): ("dataset.item.update",
                                                            lambda c: c.call(
        "PATCH", "/v1/datasets/{dataset_id}/items/{item_id}", json={"caption": "one"})),
    ("POST", "/v1/datasets/{dataset_id}/uploads"): ("dataset.uploads.create", lambda c: c.call(
        "POST", "/v1/datasets/{dataset_id}/uploads", json={"files": [
            {"filename": "x.png", "content_type": "image/png", "size": 10}]})),
    ("POST", "/v1/datasets/{dataset_id}/uploads/complete"): ("dataset.uploads.complete",
                                                             _complete_upload),
    ("POST", "/v1/datasets/{dataset_id}/captions/bulk"): ("dataset.captions.bulk",
                                                          lambda c: c.call(
        "POST", "/v1/datasets/{dataset_id}/captions/bulk", json={"op": "append", "text": "x"})),
    ("POST", "/v1/datasets/{dataset_id}/captions/import"): ("dataset.captions.import",
                                                            _import_captions),
    ("POST", "/v1/datasets/{dataset_id}/caption-jobs"): ("caption_job.create",
                                                         _create_caption_job),
    ("POST", "/v1/caption-jobs/{caption_job_id}/cancel"): ("caption_job.cancel", lambda c:
        c.call("POST", "/v1/caption-jobs/{caption_job_id}/cancel")),
    ("POST", "/v1/datasets/{dataset_id}/suggestions/accept"): (
        "dataset.suggestions.accept", lambda c: c.call(
            "POST", "/v1/datasets/{dataset_id}/suggestions/accept",
            json={"items": [{"item_id": c.ids["item_id"]}]})),
    ("POST", "/v1/datasets/{dataset_id}/suggestions/discard"): (
        "dataset.suggestions.discard", lambda c: c.call(
            "POST", "/v1/datasets/{dataset_id}/suggestions/discard", json={"all": True})),
    ("POST", "/v1/jobs"): ("job.create", _create_job),
    ("POST", "/v1/jobs/{job_id}/cancel"): ("job.cancel", lambda c: c.call(
        "POST", f"/v1/jobs/{c.world.queued_job_id}/cancel")),
    ("POST", "/v1/jobs/{job_id}/retry"): ("job.retry", lambda c: c.call(
        "POST", f"/v1/jobs/{c.world.failed_job_id}/retry")),
    ("POST", "/v1/jobs/{job_id}/finalize"): ("job.finalized", lambda c: c.call(
        "POST", f"/v1/jobs/{c.world.finalizable_job_id}/finalize", json={"steps": [2]})),
    ("PATCH", "/v1/models/{model_id}"): ("model.renamed", lambda c: c.call(
        "PATCH", "/v1/models/{model_id}", json={"name": "renamed"})),
    ("POST", "/v1/webhooks"): ("webhook.create", lambda c: c.call(
        "POST", "/v1/webhooks", json={"url": "http://127.0.0.1:9/other"})),
    ("PATCH", "/v1/webhooks/{webhook_id}"): ("webhook.update", lambda c: c.call(
        "PATCH", "/v1/webhooks/{webhook_id}", json={"description": "audited"})),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (
        "webhook.redeliver", lambda c: c.call(
            "POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")),
    ("POST", "/v1/models/{model_id}/links"): ("model_link.create", lambda c: c.call(
        "POST", "/v1/models/{model_id}/links", json={"name": "audited"})),
    # Deletions last: they remove objects the routes above still use.
    ("DELETE", "/v1/models/{model_id}/links/{link_id}"): ("model_link.revoke", lambda c: c.call(
        "DELETE", "/v1/models/{model_id}/links/{link_id}")),
    ("DELETE", "/v1/models/{model_id}"): ("model.deleted", lambda c: c.call(
        "DELETE", "/v1/models/{model_id}")),
    ("DELETE", "/v1/webhooks/{webhook_id}"): ("webhook.delete", lambda c: c.call(
        "DELETE", "/v1/webhooks/{webhook_id}")),
    ("DELETE", "/v1/datasets/{dataset_id}/items/{item_id}"): ("dataset.item.delete",
                                                              lambda c: c.call(
        "DELETE", "/v1/datasets/{dataset_id}/items/{item_id}")),
    ("DELETE", "/v1/datasets/{dataset_id}"): ("dataset.delete", lambda c: c.call(
        "DELETE", "/v1/datasets/{dataset_id}")),
    ("DELETE", "/v1/jobs/{job_id}"): ("job.delete", lambda c: c.call(
        "DELETE", f"/v1/jobs/{c.world.failed_job_id}")),
    ("POST", "/v1/auth/switch-org"): ("auth.login", _switch_org),  # changes c.tenant: last
}


def test_every_mutating_route_is_covered(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    mutating = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1/")
                for m in ops if m.upper() in MUTATING}
    assert sorted(mutating - ACTIONS.keys()) == [], "say what these routes audit in ACTIONS"
    assert sorted(ACTIONS.keys() - mutating) == [], "these routes no longer exist"


def _events(client: TestClient, tenant: Tenant) -> list[dict]:
    r = client.get("/v1/audit-events?limit=200", headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_each_mutating_route_records_its_action(client: TestClient, tenant: Tenant,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    quiet_side_effects(monkeypatch)
    ctx = Ctx(client, tenant, build_world(client, tenant))
    missing: list[str] = []
    for (method, path), (action, perform) in ACTIONS.items():
        seen = {e["id"] for e in _events(client, ctx.tenant)}
        r = perform(ctx)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        new = [e for e in _events(client, ctx.tenant) if e["id"] not in seen]
        if action not in {e["action"] for e in new}:
            missing.append(f"{method} {path}: expected {action}, got {[e['action'] for e in new]}")
            continue
        event = next(e for e in new if e["action"] == action)
        assert event["actor_type"] in ("api_key", "user") and event["actor_id"], event
        assert event["created_at"] and event["ip"], event
    assert missing == []
