"""Password reset by one-time mailed link, password change, and the password policy."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.test_identity import assert_problem
from tests.conftest import Tenant, add_user, login
from tests.security.accounts_helpers import (
    STRONG,
    csrf_of,
    file_mail,  # noqa: F401 - fixture
    fresh,
    link_in,
    mails_to,
    token_of,
    unique_email,
    wait_mail,
)

WEAK = ("12345678", "password", "password123", "short")


def _own_address(client: TestClient) -> TestClient:
    # Reset requests count against the client address's budget, kept in Redis for a while:
    # a random address keeps reruns of these tests off the shared "testclient" address.
    return fresh(client, f"203.0.113.{secrets.randbelow(250) + 1}-{secrets.token_hex(3)}")


def _reset_link(client: TestClient, folder: Path, email: str, count: int = 1) -> str:
    r = _own_address(client).post("/v1/auth/password-reset", json={"email": email})
    assert r.status_code == 202, r.text
    return link_in(wait_mail(folder, email, count), "reset-password")


def test_reset_end_to_end_ends_every_session(client: TestClient, tenant: Tenant,
                                             file_mail: Path) -> None:  # noqa: F811
    email, old_password = add_user(tenant, "member")
    laptop, phone = fresh(client), fresh(client)
    login(laptop, email, old_password)
    login(phone, email, old_password)

    link = _reset_link(fresh(client), file_mail, email)
    token = token_of(link)
    for weak in WEAK:
        body = assert_problem(client.post(f"/v1/auth/password-reset/{token}",
                                          json={"password": weak}), 422)
        assert body["errors"][0]["loc"] == ["body", "password"]
    r = client.post(f"/v1/auth/password-reset/{token}", json={"password": STRONG})
    assert r.status_code == 204, r.text

    # Every session of the account is dead; the old password is gone; the new one works.
    assert_problem(laptop.get("/v1/me"), 401)
    assert_problem(phone.get("/v1/me"), 401)
    assert_problem(fresh(client).post("/v1/auth/login", json={
        "email": email, "password": old_password}), 401)
    login(fresh(client), email, STRONG)
    # The link works once.
    assert_problem(client.post(f"/v1/auth/password-reset/{token}",
                               json={"password": "another-strong-one-7"}), 404)
    events = client.get("/v1/audit-events?limit=50", headers=tenant.auth).json()["items"]
    assert {"auth.password_reset.request", "auth.password_reset"} <= {e["action"]
                                                                      for e in events}


def test_reset_answer_does_not_reveal_accounts(client: TestClient, tenant: Tenant,
                                               file_mail: Path) -> None:  # noqa: F811
    email, _ = add_user(tenant, "viewer")
    nobody = unique_email("nobody")
    asker = _own_address(client)
    known = asker.post("/v1/auth/password-reset", json={"email": email})
    unknown = asker.post("/v1/auth/password-reset", json={"email": nobody})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    wait_mail(file_mail, email)
    assert mails_to(file_mail, nobody) == []


def test_newer_link_replaces_older_and_links_expire(client: TestClient, tenant: Tenant,
                                                    file_mail: Path) -> None:  # noqa: F811
    from sqlalchemy import update

    from app.core.db import session_scope
    from app.identity.security import sha256_hex
    from app.models import PasswordReset

    email, _ = add_user(tenant, "viewer")
    first = token_of(_reset_link(client, file_mail, email, 1))
    second = token_of(_reset_link(client, file_mail, email, 2))
    assert_problem(client.post(f"/v1/auth/password-reset/{first}", json={"password": STRONG}),
                   404)
    with session_scope() as db:
        db.execute(update(PasswordReset).where(PasswordReset.token_hash == sha256_hex(second))
                   .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_problem(client.post(f"/v1/auth/password-reset/{second}",
                               json={"password": STRONG}), 404)


def test_change_password_ends_other_sessions(client: TestClient, tenant: Tenant) -> None:
    email, password = add_user(tenant, "member")
    here, elsewhere = fresh(client), fresh(client)
    login(here, email, password)
    login(elsewhere, email, password)

    wrong = here.post("/v1/auth/password", json={"current_password": "not-mine-at-all",
                                                  "new_password": STRONG}, headers=csrf_of(here))
    assert_problem(wrong, 403)
    for weak in WEAK:
        body = assert_problem(here.post("/v1/auth/password", json={
            "current_password": password, "new_password": weak}, headers=csrf_of(here)), 422)
        assert body["errors"][0]["loc"] == ["body", "new_password"]
    r = here.post("/v1/auth/password", json={"current_password": password,
                                              "new_password": STRONG}, headers=csrf_of(here))
    assert r.status_code == 204, r.text
    assert here.get("/v1/me").status_code == 200
    assert_problem(elsewhere.get("/v1/me"), 401)
    login(fresh(client), email, STRONG)
    # An API key is not a person with a password.
    assert_problem(client.post("/v1/auth/password", headers=tenant.auth, json={
        "current_password": "x", "new_password": STRONG}), 403)


def test_policy_function() -> None:
    from app.identity.passwords import problem_with

    for weak in (*WEAK, "qwertyuiop", "Password2024!", "aaaaaaaaaaaa", "iloveyou12"):
        assert problem_with(weak) is not None, weak
    for ok in (STRONG, "pw-1a2b3c4d-secret", "correct horse battery staple"):
        assert problem_with(ok) is None, ok
    assert problem_with("jane.doe.x1", email="jane.doe.x1@example.com") is not None


def test_reset_requests_are_limited(client: TestClient, tenant: Tenant, file_mail: Path,  # noqa: F811
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.settings import get_settings

    # Per address: past the budget the answer is 429 (it says nothing about any account).
    monkeypatch.setenv("ATELIER_LOGIN_LIMIT_PER_ADDRESS", "3/15minute")
    get_settings.cache_clear()
    try:
        asker = _own_address(client)
        codes = [asker.post("/v1/auth/password-reset", json={"email": unique_email()}
                            ).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429], codes
    finally:
        monkeypatch.delenv("ATELIER_LOGIN_LIMIT_PER_ADDRESS")
        get_settings.cache_clear()
    # Per mailbox: at most 5 mails an hour, however many addresses ask; the answer stays 202.
    email, _ = add_user(tenant, "viewer")
    for _ in range(7):
        assert _own_address(client).post("/v1/auth/password-reset",
                                         json={"email": email}).status_code == 202
    wait_mail(file_mail, email, 5)
    assert len(mails_to(file_mail, email)) == 5
