"""Attacks on roles and API keys (issue 11): a key never exceeds the member who made it,
keys never change ownership, an org keeps an owner, key expiry is bounded.

TestClient against the test PostgreSQL database; every test builds its own orgs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import session_scope
from app.identity.authorization import ROLE_RANK, ROLE_SCOPES
from app.models import ApiKey, Membership, User
from tests.conftest import ROOT, Tenant, add_user, login


class Person:
    """A signed-in user with their own cookie jar (a second browser)."""

    def __init__(self, client: TestClient, email: str, password: str) -> None:
        self.http = TestClient(client.app)
        self.email = email
        self.csrf = login(self.http, email, password)

    def call(self, method: str, url: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.http.request(method, url, headers={"X-CSRF-Token": self.csrf}, **kw)

    def mint(self, scopes: list[str] | None = None) -> tuple[str, dict[str, str]]:
        body: dict[str, object] = {"name": "mine"}
        if scopes is not None:
            body["scopes"] = scopes
        r = self.call("POST", "/v1/api-keys", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"], {"Authorization": f"Bearer {r.json()['key']}"}


def _roles(org_id: str) -> dict[str, str]:
    with session_scope() as db:
        rows = db.execute(select(User.email, Membership.role).join(User)
                          .where(Membership.org_id == org_id)).all()
        return {email: role for email, role in rows}


def _member_id(org_id: str, email: str) -> str:
    with session_scope() as db:
        mid = db.scalar(select(Membership.id).join(User).where(
            Membership.org_id == org_id, User.email == email))
        assert mid is not None
        return mid


def _owners(org_id: str) -> int:
    with session_scope() as db:
        return db.scalar(select(func.count()).select_from(Membership).where(
            Membership.org_id == org_id, Membership.role == "owner")) or 0


def _admin(client: TestClient, tenant: Tenant) -> Person:
    return Person(client, *add_user(tenant, "admin"))


def test_admin_key_cannot_take_ownership(client: TestClient, tenant: Tenant) -> None:
    admin = _admin(client, tenant)
    _, key = admin.mint(["admin"])
    before = _roles(tenant.org_id)
    me, owner = _member_id(tenant.org_id, admin.email), _member_id(tenant.org_id, tenant.email)

    r = client.patch(f"/v1/members/{me}", json={"role": "owner"}, headers=key)
    assert r.status_code == 403, r.text
    r = client.patch(f"/v1/members/{owner}", json={"role": "viewer"}, headers=key)
    assert r.status_code == 403, r.text
    r = client.delete(f"/v1/members/{owner}", headers=key)
    assert r.status_code == 403, r.text
    r = client.post("/v1/members", json={"email": "crony@example.com", "role": "owner"},
                    headers=key)
    assert r.status_code == 403, r.text
    assert _roles(tenant.org_id) == before


def test_owner_made_key_cannot_change_ownership(client: TestClient, tenant: Tenant) -> None:
    owner = Person(client, tenant.email, tenant.password)
    _, key = owner.mint(["admin"])
    email, _ = add_user(tenant, "admin")
    r = client.patch(f"/v1/members/{_member_id(tenant.org_id, email)}", json={"role": "owner"},
                     headers=key)
    assert r.status_code == 403 and "API keys" in r.json()["detail"]
    # Below owner the key works for its owner.
    r = client.patch(f"/v1/members/{_member_id(tenant.org_id, email)}", json={"role": "member"},
                     headers=key)
    assert r.status_code == 200, r.text
    # Signed in, the owner can do it.
    r = owner.call("PATCH", f"/v1/members/{_member_id(tenant.org_id, email)}",
                   json={"role": "owner"})
    assert r.status_code == 200, r.text


def test_operator_key_acts_as_admin_at_most(client: TestClient, tenant: Tenant) -> None:
    owner = _member_id(tenant.org_id, tenant.email)
    assert client.patch(f"/v1/members/{owner}", json={"role": "admin"},
                        headers=tenant.auth).status_code == 403
    assert client.post("/v1/members", json={"email": "x@example.com", "role": "owner"},
                       headers=tenant.auth).status_code == 403
    assert _roles(tenant.org_id) == {tenant.email: "owner"}


def test_removed_admins_key_is_revoked(client: TestClient, tenant: Tenant) -> None:
    admin = _admin(client, tenant)
    key_id, key = admin.mint(["admin"])
    assert client.get("/v1/me", headers=key).status_code == 200
    owner = Person(client, tenant.email, tenant.password)
    r = owner.call("DELETE", f"/v1/members/{_member_id(tenant.org_id, admin.email)}")
    assert r.status_code == 204, r.text

    assert client.get("/v1/me", headers=key).status_code == 401
    r = client.post("/v1/members", json={"email": admin.email, "role": "owner"}, headers=key)
    assert r.status_code == 401
    assert admin.email not in _roles(tenant.org_id)
    with session_scope() as db:  # revoked in the removal's own transaction
        row = db.get(ApiKey, key_id)
        assert row is not None and row.revoked_at is not None


def test_deactivated_creators_key_is_refused(client: TestClient, tenant: Tenant) -> None:
    admin = _admin(client, tenant)
    _, key = admin.mint(["admin"])
    with session_scope() as db:
        user = db.scalar(select(User).where(User.email == admin.email))
        assert user is not None
        user.is_active = False
    r = client.get("/v1/api-keys", headers=key)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_lowered_role_narrows_keys_at_once(client: TestClient, tenant: Tenant) -> None:
    admin = _admin(client, tenant)
    _, key = admin.mint()  # default scopes: everything but admin
    assert client.post("/v1/datasets", json={"name": "a"}, headers=key).status_code == 201
    owner = Person(client, tenant.email, tenant.password)
    r = owner.call("PATCH", f"/v1/members/{_member_id(tenant.org_id, admin.email)}",
                   json={"role": "viewer"})
    assert r.status_code == 200, r.text

    assert client.post("/v1/datasets", json={"name": "b"}, headers=key).status_code == 403
    assert client.get("/v1/datasets", headers=key).status_code == 200
    me = client.get("/v1/me", headers=key).json()
    assert set(me["scopes"]) == set(ROLE_SCOPES["viewer"])


def test_key_scopes_never_exceed_the_creators_role(client: TestClient, tenant: Tenant) -> None:
    member = Person(client, *add_user(tenant, "member"))
    for scopes in (["admin"], ["datasets:read"]):  # minting keys is an admin's action
        assert member.call("POST", "/v1/api-keys",
                           json={"name": "x", "scopes": scopes}).status_code == 403

    # A key made by a key acts for the same member and narrows with them.
    admin = _admin(client, tenant)
    _, parent = admin.mint(["admin"])
    _, narrow = admin.mint(["datasets:read"])
    assert set(client.get("/v1/me", headers=narrow).json()["scopes"]) == {"datasets:read"}
    r = client.post("/v1/api-keys", json={"name": "child", "scopes": ["admin"]}, headers=parent)
    assert r.status_code == 201, r.text
    child_id, child = r.json()["id"], {"Authorization": f"Bearer {r.json()['key']}"}
    with session_scope() as db:
        row = db.get(ApiKey, child_id)
        author = db.scalar(select(User.id).where(User.email == admin.email))
        assert row is not None and row.created_by_user_id == author
    owner = Person(client, tenant.email, tenant.password)
    owner.call("PATCH", f"/v1/members/{_member_id(tenant.org_id, admin.email)}",
               json={"role": "member"})
    for k in (parent, child):
        assert set(client.get("/v1/me", headers=k).json()["scopes"]) == set(ROLE_SCOPES["member"])
        assert client.get("/v1/api-keys", headers=k).status_code == 403
        assert client.post("/v1/api-keys", json={"name": "again"}, headers=k).status_code == 403


def test_no_one_grants_above_themselves(client: TestClient, tenant: Tenant) -> None:
    admin = _admin(client, tenant)
    email, _ = add_user(tenant, "viewer")
    target = _member_id(tenant.org_id, email)
    assert admin.call("PATCH", f"/v1/members/{target}",
                      json={"role": "owner"}).status_code == 403
    assert admin.call("PATCH", f"/v1/members/{_member_id(tenant.org_id, admin.email)}",
                      json={"role": "owner"}).status_code == 403
    owner = _member_id(tenant.org_id, tenant.email)
    assert admin.call("PATCH", f"/v1/members/{owner}", json={"role": "admin"}).status_code == 403
    assert admin.call("DELETE", f"/v1/members/{owner}").status_code == 403
    assert admin.call("PATCH", f"/v1/members/{target}", json={"role": "admin"}).status_code == 200
    assert _roles(tenant.org_id)[tenant.email] == "owner"


def test_last_owner_cannot_leave(client: TestClient, tenant: Tenant) -> None:
    owner = Person(client, tenant.email, tenant.password)
    me = _member_id(tenant.org_id, tenant.email)
    assert owner.call("DELETE", f"/v1/members/{me}").status_code == 422
    assert owner.call("PATCH", f"/v1/members/{me}", json={"role": "admin"}).status_code == 422
    assert _owners(tenant.org_id) == 1


def test_other_orgs_keys_reach_no_member(client: TestClient, tenant: Tenant,
                                         other_tenant: Tenant) -> None:
    owner = _member_id(tenant.org_id, tenant.email)
    for method in ("PATCH", "DELETE"):
        r = client.request(method, f"/v1/members/{owner}", json={"role": "viewer"},
                           headers=other_tenant.auth)
        assert r.status_code == 404
    emails = {m["email"] for m in client.get("/v1/members",
                                             headers=other_tenant.auth).json()["items"]}
    assert tenant.email not in emails


def test_members_emails_visible_to_members_and_admin_keys(client: TestClient,
                                                          tenant: Tenant) -> None:
    viewer = Person(client, *add_user(tenant, "viewer"))
    r = viewer.call("GET", "/v1/members")
    assert r.status_code == 200 and tenant.email in {m["email"] for m in r.json()["items"]}
    _, key = _admin(client, tenant).mint()  # every scope but admin
    assert client.get("/v1/members", headers=key).status_code == 403
    assert client.get("/v1/members", headers=tenant.auth).status_code == 200


def test_key_expiry_is_bounded(client: TestClient, tenant: Tenant) -> None:
    now = datetime.now(UTC)
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                 (now - timedelta(minutes=1)).isoformat(), (now + timedelta(days=400)).isoformat()):
        r = client.post("/v1/api-keys", json={"name": "odd", "expires_at": when},
                        headers=tenant.auth)
        assert r.status_code == 422, (when, r.text)
        assert "expires_at" in r.text
    r = client.post("/v1/api-keys", json={"name": "ok", "expires_at":
                                          (now + timedelta(days=30)).isoformat()},
                    headers=tenant.auth)
    assert r.status_code == 201, r.text
    listed = client.get("/v1/api-keys", headers=tenant.auth)
    assert listed.status_code == 200, listed.text
    assert {k["name"] for k in listed.json()["items"]} >= {"test", "ok"}
    assert "odd" not in {k["name"] for k in listed.json()["items"]}
    assert client.delete(f"/v1/api-keys/{r.json()['id']}", headers=tenant.auth).status_code == 204


def test_readme_roles_table_matches_the_code() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Roles and API keys", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| `\w+` \|", line)]
    table = {}
    for line in rows:
        role, rank, scopes = (cell.strip() for cell in line.strip("|").split("|"))
        table[role.strip("`")] = (int(rank), set(re.findall(r"`([^`]+)`", scopes)))
    code = {role: (ROLE_RANK[role], set(ROLE_SCOPES[role])) for role in ROLE_RANK}
    assert table == code
