"""API keys, sessions, CSRF, roles and the problem+json error shape."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tenant, add_user, login, make_tenant
from tests.security.accounts_helpers import accept_new, invite, token_of, unique_email


def assert_problem(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


def test_me_with_api_key(client: TestClient, tenant: Tenant) -> None:
    r = client.get("/v1/me", headers=tenant.auth)
    assert r.status_code == 200
    body = r.json()
    assert body["organization"]["id"] == tenant.org_id
    assert body["principal"]["type"] == "api_key"
    assert "datasets:read" in body["scopes"]


def test_missing_malformed_and_unknown_keys_are_401(client: TestClient, tenant: Tenant) -> None:
    assert_problem(client.get("/v1/me"), 401)
    assert_problem(client.get("/v1/me", headers={"Authorization": "Basic abc"}), 401)
    assert_problem(client.get("/v1/me", headers={"Authorization": "Bearer atl_nope"}), 401)
    forged = tenant.api_key[:-4] + "AAAA"
    assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_created_key_shown_once_and_revocable(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/v1/api-keys", json={"name": "ci", "scopes": ["jobs:read"]},
                    headers=tenant.auth)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith("atl_") and len(created["key"]) > 40
    listed = client.get("/v1/api-keys", headers=tenant.auth).json()["items"]
    assert all("key" not in k for k in listed)
    assert created["id"] in {k["id"] for k in listed}

    new_auth = {"Authorization": f"Bearer {created['key']}"}
    me = client.get("/v1/me", headers=new_auth)
    assert me.status_code == 200 and me.json()["scopes"] == ["jobs:read"]
    used = client.get("/v1/api-keys", headers=tenant.auth).json()["items"]
    assert next(k for k in used if k["id"] == created["id"])["last_used_at"] is not None

    assert client.delete(f"/v1/api-keys/{created['id']}", headers=tenant.auth).status_code == 204
    body = assert_problem(client.get("/v1/me", headers=new_auth), 401)
    assert "revoked" in body["detail"]


def test_wrong_scope_is_403(client: TestClient, service_env: dict[str, str]) -> None:
    reader = make_tenant(scopes=["jobs:read"])
    body = assert_problem(client.get("/v1/api-keys", headers=reader.auth), 403)
    assert "admin" in body["detail"]
    assert_problem(client.post("/v1/api-keys", json={"name": "x"}, headers=reader.auth), 403)


def test_admin_scope_implies_every_scope(client: TestClient, service_env: dict[str, str]
                                         ) -> None:
    admin_only = make_tenant(scopes=["admin"])
    r = client.post("/v1/api-keys", json={"name": "x", "scopes": ["jobs:read"]},
                    headers=admin_only.auth)
    assert r.status_code == 201
    assert "models:write" in client.get("/v1/me", headers=admin_only.auth).json()["scopes"]


def test_validation_errors_list_locations(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/v1/api-keys", json={"name": "", "scopes": ["root"], "bogus": 1},
                    headers=tenant.auth)
    body = assert_problem(r, 422)
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "name") in locs and ("body", "scopes") in locs and ("body", "bogus") in locs


def test_unknown_route_and_bad_json_are_problems(client: TestClient, tenant: Tenant) -> None:
    assert_problem(client.get("/v1/nothing-here", headers=tenant.auth), 404)
    r = client.post("/v1/api-keys", content=b"{not json", headers={
        **tenant.auth, "content-type": "application/json"})
    assert_problem(r, 422)


def test_login_session_csrf_and_logout(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/v1/auth/login", json={"email": tenant.email, "password": "wrong"})
    assert_problem(r, 401)
    csrf = login(client, tenant.email, tenant.password)
    assert "atelier_session" in client.cookies
    me = client.get("/v1/me")
    assert me.status_code == 200 and me.json()["principal"]["type"] == "user"
    assert me.json()["principal"]["role"] == "owner"

    # Unsafe method without the CSRF header is refused; with it, it works.
    assert_problem(client.post("/v1/api-keys", json={"name": "k"}), 403)
    assert_problem(client.post("/v1/api-keys", json={"name": "k"},
                               headers={"X-CSRF-Token": "forged"}), 403)
    ok = client.post("/v1/api-keys", json={"name": "k"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text

    old_cookie = client.cookies.get("atelier_session")
    assert_problem(client.post("/v1/auth/logout"), 403)  # no forced logout by another site
    assert client.post("/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert_problem(client.get("/v1/me"), 401)
    # The old cookie is dead server-side too, not only deleted in the browser.
    assert_problem(client.get("/v1/me", cookies={"atelier_session": old_cookie}), 401)


def test_session_cookie_is_httponly(client: TestClient, tenant: Tenant) -> None:
    r = client.post("/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("atelier_session="))
    csrf = next(c for c in cookies if c.startswith("atelier_csrf="))
    assert "HttpOnly" in session and "SameSite=lax" in session
    assert "HttpOnly" not in csrf


def test_members_roles(client: TestClient, tenant: Tenant) -> None:
    address = unique_email("new")
    # Nobody sets another person's password: adding a member is an invitation.
    body = assert_problem(client.post("/v1/members", json={
        "email": address.upper(), "role": "viewer", "password": "long-enough-pw"},
        headers=tenant.auth), 422)
    assert "password" in body["detail"]
    r = client.post("/v1/members", json={"email": address.upper(), "role": "viewer"},
                    headers=tenant.auth)
    assert r.status_code == 201, r.text
    invitation = r.json()
    assert invitation["email"] == address and invitation["role"] == "viewer"
    assert {"id", "email", "role", "expires_at", "url"} <= invitation.keys()
    accepted = accept_new(client, invitation["url"])
    assert accepted["organization"]["id"] == tenant.org_id
    members = client.get("/v1/members", headers=tenant.auth).json()["items"]
    member = next(m for m in members if m["email"] == address)
    assert member["role"] == "viewer"
    assert_problem(client.post("/v1/members", json={"email": address},
                               headers=tenant.auth), 409)
    r = client.patch(f"/v1/members/{member['id']}", json={"role": "member"}, headers=tenant.auth)
    assert r.status_code == 200 and r.json()["role"] == "member"

    members = client.get("/v1/members", headers=tenant.auth).json()["items"]
    owner = next(m for m in members if m["role"] == "owner")
    # An API key never changes ownership (app/identity/authorization.py).
    body = assert_problem(client.patch(f"/v1/members/{owner['id']}", json={"role": "admin"},
                                       headers=tenant.auth), 403)
    assert "owner" in body["detail"]
    assert client.delete(f"/v1/members/{member['id']}", headers=tenant.auth).status_code == 204


def test_viewer_cannot_manage(client: TestClient, tenant: Tenant) -> None:
    email, password = add_user(tenant, "viewer")
    csrf = login(client, email, password)
    assert client.get("/v1/members").status_code == 200
    r = client.post("/v1/members", json={"email": "x@example.com"},
                    headers={"X-CSRF-Token": csrf})
    assert_problem(r, 403)
    assert_problem(client.post("/v1/api-keys", json={"name": "k"},
                               headers={"X-CSRF-Token": csrf}), 403)


def test_admin_cannot_touch_owner(client: TestClient, tenant: Tenant) -> None:
    email, password = add_user(tenant, "admin")
    csrf = login(client, email, password)
    r = client.post("/v1/members", json={"email": "o2@example.com", "role": "owner"},
                    headers={"X-CSRF-Token": csrf})
    assert_problem(r, 403)


def test_org_switcher(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    # The first tenant's owner is invited to the second org and accepts, signed in.
    url = invite(client, other_tenant, tenant.email)["url"]
    csrf = login(client, tenant.email, tenant.password)
    r = client.post(f"/v1/invitations/{token_of(url)}/accept", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    login(client, tenant.email, tenant.password)
    me = client.get("/v1/me").json()
    assert {o["id"] for o in me["organizations"]} == {tenant.org_id, other_tenant.org_id}
    csrf = client.cookies.get("atelier_csrf")
    r = client.post("/v1/auth/switch-org", json={"org_id": other_tenant.org_id},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert client.get("/v1/me").json()["organization"]["id"] == other_tenant.org_id
    assert client.get("/v1/me").json()["principal"]["role"] == "member"


def test_demo_style_internal_domain_can_sign_in(client: TestClient, tenant: Tenant) -> None:
    local = f"someone-{tenant.slug}@atelier.local"
    r = client.post("/v1/members", json={"email": f" {local.title()}", "role": "member"},
                    headers=tenant.auth)
    assert r.status_code == 201 and r.json()["email"] == local
    accept_new(client, r.json()["url"], password="long-enough-pw")
    login(client, local, "long-enough-pw")
    assert_problem(client.post("/v1/auth/login", json={"email": "not-an-email",
                                                       "password": "x"}), 422)
