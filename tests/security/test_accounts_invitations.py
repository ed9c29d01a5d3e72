"""Joining an org is an invitation the invitee accepts: the cross-tenant pre-hijack is gone.

The old attack: users are global and `POST /v1/members` reused an existing account, ignoring
the password sent; org B's admin pre-created `new-hire@x` with a password of their choosing,
org A later added the same email, and B's admin signed into org A as an admin.
"""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.api.test_identity import assert_problem
from tests.conftest import Tenant, add_user, login
from tests.security.accounts_helpers import (
    STRONG,
    accept_new,
    csrf_of,
    file_mail,  # noqa: F401 - fixture
    fresh,
    invite,
    link_in,
    token_of,
    unique_email,
    wait_mail,
)


def test_pre_hijack_across_tenants_is_closed(client: TestClient, tenant: Tenant,
                                             other_tenant: Tenant) -> None:
    org_a, org_b = tenant, other_tenant
    new_hire = unique_email("new-hire")
    attacker_pw = "attacker-chose-this-1"

    # B's admin can no longer create an account with a password of their choosing...
    assert_problem(client.post("/v1/members", json={
        "email": new_hire, "role": "member", "password": attacker_pw}, headers=org_b.auth), 422)
    # ...and even taking B's own invitation link to make the account (the worst case: B saw it)
    url_b = invite(client, org_b, new_hire)["url"]
    accept_new(client, url_b, password=attacker_pw)

    # A's owner invites the same email: the answer is an invitation, not a membership.
    r = client.post("/v1/members", json={"email": new_hire, "role": "admin"}, headers=org_a.auth)
    assert r.status_code == 201, r.text
    url_a = r.json()["url"]
    members_a = client.get("/v1/members", headers=org_a.auth).json()["items"]
    assert new_hire not in {m["email"] for m in members_a}

    # The attacker's password gets them nothing in org A.
    attacker = fresh(client)
    r = attacker.post("/v1/auth/login", json={"email": new_hire, "password": attacker_pw,
                                              "org_id": org_a.org_id})
    assert_problem(r, 401)
    # Signed into B as the account, without A's token, there is nothing to accept.
    login(attacker, new_hire, attacker_pw)
    me = attacker.get("/v1/me").json()
    assert {o["id"] for o in me["organizations"]} == {org_b.org_id}

    # Another signed-in account holding A's link cannot accept it either.
    b_owner = fresh(client)
    login(b_owner, org_b.email, org_b.password)
    body = assert_problem(b_owner.post(f"/v1/invitations/{token_of(url_a)}/accept",
                                       headers=csrf_of(b_owner)), 403)
    assert "another email" in body["detail"]
    # Nor can anyone set a password through it: the account exists, so it must sign in.
    r = fresh(client).post(f"/v1/invitations/{token_of(url_a)}/accept",
                           json={"name": "x", "password": "another-pw-chosen-9"})
    assert_problem(r, 409)
    members_a = client.get("/v1/members", headers=org_a.auth).json()["items"]
    assert new_hire not in {m["email"] for m in members_a}

    # Only the invitee, signed in as themselves, joins, and only by accepting.
    r = attacker.post(f"/v1/invitations/{token_of(url_a)}/accept", headers=csrf_of(attacker))
    assert r.status_code == 200, r.text
    assert r.json()["organization"]["id"] == org_a.org_id


def test_token_is_one_time_and_shown_once(client: TestClient, tenant: Tenant) -> None:
    made = invite(client, tenant, unique_email(), "viewer")
    token = token_of(made["url"])
    listed = client.get("/v1/invitations", headers=tenant.auth).json()["items"]
    assert made["id"] in {i["id"] for i in listed}
    assert all("url" not in i and "token" not in str(i) for i in listed)

    info = client.get(f"/v1/invitations/{token}").json()
    assert set(info) == {"organization", "role", "email", "account_exists", "expires_at"}
    assert set(info["organization"]) == {"name"} and info["account_exists"] is False

    accept_new(client, made["url"])
    assert_problem(client.get(f"/v1/invitations/{token}"), 404)
    r = fresh(client).post(f"/v1/invitations/{token}/accept",
                           json={"name": "Again", "password": STRONG})
    assert_problem(r, 404)
    listed = client.get("/v1/invitations", headers=tenant.auth).json()["items"]
    assert made["id"] not in {i["id"] for i in listed}


def test_token_is_stored_only_as_a_hash(client: TestClient, tenant: Tenant) -> None:
    from sqlalchemy import select

    from app.core.db import session_scope
    from app.models import Invitation

    made = invite(client, tenant, unique_email())
    with session_scope() as db:
        row = db.scalar(select(Invitation).where(Invitation.id == made["id"]))
        assert row is not None and token_of(made["url"]) not in row.token_hash
        assert len(row.token_hash) == 64


def test_expired_and_revoked_tokens_are_dead(client: TestClient, tenant: Tenant) -> None:
    from sqlalchemy import update

    from app.core.db import session_scope
    from app.models import Invitation

    expired = invite(client, tenant, unique_email())
    with session_scope() as db:
        db.execute(update(Invitation).where(Invitation.id == expired["id"])
                   .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_problem(client.get(f"/v1/invitations/{token_of(expired['url'])}"), 404)
    r = fresh(client).post(f"/v1/invitations/{token_of(expired['url'])}/accept",
                           json={"name": "Late", "password": STRONG})
    assert_problem(r, 404)

    revoked = invite(client, tenant, unique_email())
    assert client.delete(f"/v1/invitations/{revoked['id']}",
                         headers=tenant.auth).status_code == 204
    r = fresh(client).post(f"/v1/invitations/{token_of(revoked['url'])}/accept",
                           json={"name": "Gone", "password": STRONG})
    assert_problem(r, 404)

    # A new invitation for the same email replaces the pending one.
    again = unique_email()
    first, second = invite(client, tenant, again), invite(client, tenant, again)
    assert_problem(client.get(f"/v1/invitations/{token_of(first['url'])}"), 404)
    assert client.get(f"/v1/invitations/{token_of(second['url'])}").status_code == 200


def test_weak_passwords_refused_at_acceptance(client: TestClient, tenant: Tenant) -> None:
    made = invite(client, tenant, unique_email())
    for weak in ("12345678", "password", "password123", "short"):
        r = fresh(client).post(f"/v1/invitations/{token_of(made['url'])}/accept",
                               json={"name": "Weak", "password": weak})
        body = assert_problem(r, 422)
        assert body["errors"][0]["loc"] == ["body", "password"], body
    # The refused attempts did not spend the link.
    accept_new(client, made["url"])


def test_who_may_invite(client: TestClient, tenant: Tenant) -> None:
    member_email, member_pw = add_user(tenant, "member")
    member = fresh(client)
    login(member, member_email, member_pw)
    assert_problem(member.post("/v1/invitations", json={"email": unique_email()},
                               headers=csrf_of(member)), 403)
    admin_email, admin_pw = add_user(tenant, "admin")
    admin = fresh(client)
    login(admin, admin_email, admin_pw)
    assert_problem(admin.post("/v1/invitations", json={"email": unique_email(),
                                                       "role": "owner"},
                              headers=csrf_of(admin)), 403)
    r = admin.post("/v1/invitations", json={"email": unique_email(), "role": "admin"},
                   headers=csrf_of(admin))
    assert r.status_code == 201, r.text
    # An API key is not a person: it cannot accept an invitation.
    r = client.post(f"/v1/invitations/{token_of(r.json()['url'])}/accept",
                    headers=tenant.auth, json={})
    assert_problem(r, 403)
    # Already a member: no invitation.
    assert_problem(client.post("/v1/invitations", json={"email": member_email},
                               headers=tenant.auth), 409)


def test_invitation_from_another_org_is_404(client: TestClient, tenant: Tenant,
                                            other_tenant: Tenant) -> None:
    made = invite(client, tenant, unique_email())
    assert_problem(client.delete(f"/v1/invitations/{made['id']}", headers=other_tenant.auth),
                   404)
    assert made["id"] not in {i["id"] for i in client.get(
        "/v1/invitations", headers=other_tenant.auth).json()["items"]}


def test_concurrent_acceptance_joins_once(client: TestClient, tenant: Tenant) -> None:
    address = unique_email("racer")
    made = invite(client, tenant, address)

    def go(i: int) -> int:
        return fresh(client).post(f"/v1/invitations/{token_of(made['url'])}/accept",
                                  json={"name": f"R{i}", "password": STRONG}).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(go, range(6)))
    assert codes.count(200) == 1, codes
    members = client.get("/v1/members", headers=tenant.auth).json()["items"]
    assert [m["email"] for m in members].count(address) == 1


def test_invitation_mail_and_audit(client: TestClient, tenant: Tenant, file_mail) -> None:  # noqa: F811
    address = unique_email("mailed")
    made = invite(client, tenant, address, "viewer")
    msg = wait_mail(file_mail, address)
    assert link_in(msg, "invite") == made["url"]
    accept_new(client, made["url"])
    events = client.get("/v1/audit-events?limit=50", headers=tenant.auth).json()["items"]
    actions = {(e["action"], e["target_id"]) for e in events}
    assert ("invitation.create", made["id"]) in actions
    assert ("invitation.accept", made["id"]) in actions
