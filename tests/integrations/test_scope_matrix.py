"""The scope matrix: every /v1 route in /openapi.json is classified here, and each scope it
needs is shown to be required (a key with every other scope gets 403, on a real object of its
own org) and sufficient (a key with only those scopes gets past the check).

A new route fails ``test_every_route_is_classified`` until it is added to ``SCOPES`` (and to
the README's "API scopes" table, which mirrors it).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.identity.security import ALL_SCOPES
from tests.conftest import Tenant, make_tenant
from tests.integrations.world import World, build_world, fill, quiet_side_effects

PUBLIC = "public"  # no credentials needed
ANY = "any"  # any authenticated principal, whatever its scopes
SESSION = "session"  # a signed-in user only (API keys are refused)

D_R, D_W, J_R, J_W = "datasets:read", "datasets:write", "jobs:read", "jobs:write"
M_R, M_W, ADMIN = "models:read", "models:write", "admin"

SCOPES: dict[tuple[str, str], tuple[str, ...] | str] = {
    ("GET", "/v1/me"): ANY,
    ("POST", "/v1/auth/login"): PUBLIC,
    ("POST", "/v1/auth/logout"): PUBLIC,
    ("POST", "/v1/auth/switch-org"): SESSION,
    ("POST", "/v1/auth/password"): SESSION,
    ("POST", "/v1/auth/password-reset"): PUBLIC,
    ("POST", "/v1/auth/password-reset/{token}"): PUBLIC,
    ("POST", "/v1/invitations"): (ADMIN,),
    ("GET", "/v1/invitations"): (ADMIN,),
    ("DELETE", "/v1/invitations/{invitation_id}"): (ADMIN,),
    ("GET", "/v1/invitations/{token}"): PUBLIC,  # the link's token is the credential
    ("POST", "/v1/invitations/{token}/accept"): PUBLIC,  # signed in, or {name, password}
    ("GET", "/v1/usage"): ANY,
    ("GET", "/v1/members"): (ADMIN,),  # members' emails: signed-in users see them (any role)
    ("POST", "/v1/members"): (ADMIN,),
    ("PATCH", "/v1/members/{member_id}"): (ADMIN,),
    ("DELETE", "/v1/members/{member_id}"): (ADMIN,),
    ("GET", "/v1/api-keys"): (ADMIN,),
    ("POST", "/v1/api-keys"): (ADMIN,),
    ("DELETE", "/v1/api-keys/{key_id}"): (ADMIN,),
    ("POST", "/v1/api-keys/{key_id}/rotate"): (ADMIN,),
    ("GET", "/v1/datasets"): (D_R,),
    ("POST", "/v1/datasets"): (D_W,),
    ("GET", "/v1/datasets/{dataset_id}"): (D_R,),
    ("PATCH", "/v1/datasets/{dataset_id}"): (D_W,),
    ("DELETE", "/v1/datasets/{dataset_id}"): (D_W,),
    ("GET", "/v1/datasets/{dataset_id}/export"): (D_R,),
    ("GET", "/v1/datasets/{dataset_id}/items"): (D_R,),
    ("POST", "/v1/datasets/{dataset_id}/items"): (D_W,),
    ("PATCH", "/v1/datasets/{dataset_id}/items"): (D_W,),
    ("GET", "/v1/datasets/{dataset_id}/items/{item_id}"): (D_R,),
    ("PATCH", "/v1/datasets/{dataset_id}/items/{item_id}"): (D_W,),
    ("DELETE", "/v1/datasets/{dataset_id}/items/{item_id}"): (D_W,),
    ("POST", "/v1/datasets/{dataset_id}/uploads"): (D_W,),
    ("POST", "/v1/datasets/{dataset_id}/uploads/complete"): (D_W,),
    ("POST", "/v1/datasets/{dataset_id}/captions/bulk"): (D_W,),
    ("POST", "/v1/datasets/{dataset_id}/captions/import"): (D_W,),
    ("GET", "/v1/captioners"): (D_R,),
    ("POST", "/v1/datasets/{dataset_id}/caption-jobs"): (D_W,),
    ("GET", "/v1/datasets/{dataset_id}/caption-jobs"): (D_R,),
    ("GET", "/v1/caption-jobs/{caption_job_id}"): (D_R,),
    ("POST", "/v1/caption-jobs/{caption_job_id}/cancel"): (D_W,),
    ("GET", "/v1/caption-jobs/{caption_job_id}/events"): (D_R,),
    ("GET", "/v1/datasets/{dataset_id}/suggestions"): (D_R,),
    ("POST", "/v1/datasets/{dataset_id}/suggestions/accept"): (D_W,),
    ("POST", "/v1/datasets/{dataset_id}/suggestions/discard"): (D_W,),
    ("GET", "/v1/base-models"): (J_R,),
    ("GET", "/v1/training-templates"): (J_R,),
    ("GET", "/v1/jobs"): (J_R,),
    ("POST", "/v1/jobs"): (J_W,),
    ("GET", "/v1/jobs/{job_id}"): (J_R,),
    ("POST", "/v1/jobs/{job_id}/cancel"): (J_W,),
    ("POST", "/v1/jobs/{job_id}/retry"): (J_W,),
    ("DELETE", "/v1/jobs/{job_id}"): (J_W,),
    ("GET", "/v1/jobs/{job_id}/checkpoints"): (J_R,),
    ("GET", "/v1/jobs/{job_id}/metrics"): (J_R,),
    ("GET", "/v1/jobs/{job_id}/logs"): (J_R,),
    ("GET", "/v1/jobs/{job_id}/events"): (J_R,),
    # Finalize changes the job and creates models: it needs both.
    ("POST", "/v1/jobs/{job_id}/finalize"): (J_W, M_W),
    ("GET", "/v1/models"): (M_R,),
    ("GET", "/v1/models/{model_id}"): (M_R,),
    ("PATCH", "/v1/models/{model_id}"): (M_W,),
    ("DELETE", "/v1/models/{model_id}"): (M_W,),
    ("GET", "/v1/models/{model_id}/download"): (M_R,),
    ("GET", "/v1/models/{model_id}/usage"): (M_R,),
    ("POST", "/v1/models/{model_id}/links"): (M_W,),
    ("GET", "/v1/models/{model_id}/links"): (M_R,),
    ("DELETE", "/v1/models/{model_id}/links/{link_id}"): (M_W,),
    ("GET", "/v1/model-links/{token}/{filename}"): PUBLIC,  # the link's token is the credential
    ("GET", "/v1/webhooks"): (ADMIN,),
    ("POST", "/v1/webhooks"): (ADMIN,),
    ("GET", "/v1/webhooks/{webhook_id}"): (ADMIN,),
    ("PATCH", "/v1/webhooks/{webhook_id}"): (ADMIN,),
    ("DELETE", "/v1/webhooks/{webhook_id}"): (ADMIN,),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): (ADMIN,),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"): (ADMIN,),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (ADMIN,),
    ("GET", "/v1/audit-events"): (ADMIN,),
}
# A well-formed id that names nothing: past the scope check, the object lookup answers 404.
NOWHERE = "0" * 12 + "f" * 16


def _routes(client: TestClient) -> set[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() if path.startswith("/v1/")
            for method in ops}


def test_every_route_is_classified(client: TestClient) -> None:
    routes = _routes(client)
    assert sorted(routes - SCOPES.keys()) == [], "classify these new routes in SCOPES (+README)"
    assert sorted(SCOPES.keys() - routes) == [], "these routes no longer exist"


@pytest.fixture()
def world(client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> World:
    quiet_side_effects(monkeypatch)
    return build_world(client, tenant)


def _key(tenant: Tenant, scopes: list[str]) -> dict[str, str]:
    from app.core.db import session_scope
    from app.identity import service

    with session_scope() as db:
        _, key = service.create_api_key(db, tenant.org_id, f"matrix {scopes}", scopes)
    return {"Authorization": f"Bearer {key}"}


def test_each_scope_is_required_and_sufficient(client: TestClient, tenant: Tenant,
                                              world: World) -> None:
    keys: dict[frozenset[str], dict[str, str]] = {}

    def key(scopes: set[str]) -> dict[str, str]:
        wanted = frozenset(scopes)
        if wanted not in keys:
            keys[wanted] = _key(tenant, sorted(wanted))
        return keys[wanted]

    fake = {name: NOWHERE for name in world.ids}
    failures: list[str] = []
    for (method, path), need in sorted(SCOPES.items()):
        if isinstance(need, str):
            continue
        for scope in need:
            # Every scope but this one (and never admin, which implies them all).
            others = set(ALL_SCOPES) - {scope, ADMIN}
            r = client.request(method, fill(path, world.ids), headers=key(others), json={})
            if r.status_code != 403:
                failures.append(f"{method} {path} without {scope}: {r.status_code} {r.text[:120]}")
        # Exactly the declared scopes get past the check: the object lookup then answers 404
        # (or, without a path object, body validation 422).
        r = client.request(method, fill(path, fake), headers=key(set(need)), json={})
        if r.status_code in (401, 403):
            failures.append(f"{method} {path} with {need}: {r.status_code} {r.text[:120]}")
    assert failures == []


def test_routes_open_to_any_principal(client: TestClient, tenant: Tenant, world: World) -> None:
    no_scopes = _key(tenant, [])
    for (method, path), need in sorted(SCOPES.items()):
        url = fill(path, world.ids)
        if need == ANY:
            assert client.request(method, url, headers=no_scopes).status_code == 200, path
            assert client.request(method, url).status_code == 401, path
        elif need == PUBLIC:
            r = client.request(method, url, json={})
            assert r.status_code not in (401, 403), (path, r.status_code)
        elif need == SESSION:
            r = client.request(method, url, headers=tenant.auth, json={"org_id": NOWHERE})
            assert r.status_code == 403, (path, r.text)
            assert client.request(method, url, json={"org_id": NOWHERE}).status_code == 401


def test_another_orgs_admin_key_sees_nothing(client: TestClient, world: World) -> None:
    """Scopes never cross organizations: an admin key elsewhere gets 404 on every object."""
    stranger = make_tenant()
    for (method, path), need in sorted(SCOPES.items()):
        if "{" not in path or isinstance(need, str) or path.endswith("/events"):
            continue
        r = client.request(method, fill(path, world.ids), headers=stranger.auth, json={})
        assert r.status_code == 404, (method, path, r.status_code, r.text)
