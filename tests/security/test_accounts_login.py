"""Sign-in abuse: throttled per account and per address, no account enumeration by timing,
and sessions rotate at sign-in."""

from __future__ import annotations

import secrets
import statistics
import time

import pytest
from fastapi.testclient import TestClient

from tests.api.test_identity import assert_problem
from tests.conftest import Tenant, add_user, login
from tests.security.accounts_helpers import forget_login_counts, fresh, unique_email


def _address() -> str:
    # Each test signs in from its own documentation-range address, so no counts are shared
    # with other tests (the counters live in Redis for the window's length).
    return f"198.51.100.{secrets.randbelow(250) + 1}-{secrets.token_hex(3)}"


def test_hundred_wrong_passwords_then_429_even_for_the_right_one(
        client: TestClient, tenant: Tenant) -> None:
    email, password = add_user(tenant, "member")
    address = _address()
    c = fresh(client, address)
    try:
        codes = [c.post("/v1/auth/login", json={"email": email, "password": f"guess-{i}"}
                        ).status_code for i in range(100)]
        assert codes[:10] == [401] * 10, codes[:12]
        assert set(codes[10:]) == {429}, codes
        r = c.post("/v1/auth/login", json={"email": email, "password": password})
        body = assert_problem(r, 429)
        assert int(r.headers["Retry-After"]) > 0 and "Try again" in body["detail"]
        # The same holds from another address: the account itself is throttled.
        other = fresh(client, _address())
        assert_problem(other.post("/v1/auth/login", json={"email": email,
                                                          "password": password}), 429)
    finally:
        forget_login_counts(email, address)
    # Once the window is over (here: the counts cleared), the right password works again.
    login(fresh(client, address), email, password)


def test_one_address_spraying_many_accounts_is_throttled(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.settings import get_settings

    # A smaller per-address limit than the default 50 keeps the test quick (argon2 per try).
    monkeypatch.setenv("ATELIER_LOGIN_LIMIT_PER_ADDRESS", "12/15minute")
    get_settings.cache_clear()
    address = _address()
    c = fresh(client, address)
    emails = [unique_email("sprayed") for _ in range(20)]
    try:
        codes = [c.post("/v1/auth/login", json={"email": e, "password": "Winter2024!"}
                        ).status_code for e in emails]
        assert codes[:12] == [401] * 12 and set(codes[12:]) == {429}, codes
        # A different address is not affected.
        assert fresh(client, _address()).post("/v1/auth/login", json={
            "email": emails[0], "password": "x"}).status_code == 401
    finally:
        for e in emails:
            forget_login_counts(e, address)
        monkeypatch.delenv("ATELIER_LOGIN_LIMIT_PER_ADDRESS")
        get_settings.cache_clear()


def test_successful_sign_ins_are_not_counted(client: TestClient, tenant: Tenant) -> None:
    email, password = add_user(tenant, "viewer")
    address = _address()
    c = fresh(client, address)
    try:
        for _ in range(15):
            login(c, email, password)
    finally:
        forget_login_counts(email, address)


def _median_ms(c: TestClient, email: str, runs: int) -> float:
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        r = c.post("/v1/auth/login", json={"email": email, "password": f"not-it-{i}"})
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 401, r.text
    return statistics.median(times)


def test_unknown_and_known_emails_take_about_the_same_time(
        client: TestClient, tenant: Tenant) -> None:
    known, _ = add_user(tenant, "member")
    unknown = unique_email("nobody")
    address = _address()
    c = fresh(client, address)
    try:
        _median_ms(c, unique_email("warmup"), 1)
        t_known = _median_ms(c, known, 5)
        t_unknown = _median_ms(c, unknown, 5)
    finally:
        for e in (known, unknown):
            forget_login_counts(e, address)
    ratio = max(t_known, t_unknown) / min(t_known, t_unknown)
    print(f"login timing: known {t_known:.1f} ms, unknown {t_unknown:.1f} ms (x{ratio:.2f})")
    assert ratio < 3, (t_known, t_unknown)


def test_login_rotates_the_session(client: TestClient, tenant: Tenant) -> None:
    c = fresh(client, _address())
    login(c, tenant.email, tenant.password)
    first = c.cookies.get("atelier_session")
    assert c.get("/v1/me").status_code == 200
    # Signing in again (e.g. a fixated cookie planted before sign-in) issues a new token and
    # revokes the one the request carried.
    login(c, tenant.email, tenant.password)
    second = c.cookies.get("atelier_session")
    assert first and second and first != second
    assert c.get("/v1/me").status_code == 200
    stale = fresh(client)
    stale.cookies.set("atelier_session", first)
    assert_problem(stale.get("/v1/me"), 401)
