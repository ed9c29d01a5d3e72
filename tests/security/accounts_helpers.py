"""Helpers for the accounts tests: invitations, the file mail sender, login counters."""

from __future__ import annotations

import email
import re
import secrets
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant

STRONG = "violet-harbour-lantern"  # passes the policy


def unique_email(tag: str = "person") -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


def invite(client: TestClient, tenant: Tenant, email_: str, role: str = "member") -> dict:
    r = client.post("/v1/invitations", json={"email": email_, "role": role}, headers=tenant.auth)
    assert r.status_code == 201, r.text
    return r.json()


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def fresh(client: TestClient, address: str | None = None) -> TestClient:
    """Another browser: same app, its own cookies (and, if given, its own client address)."""
    if address is None:
        return TestClient(client.app)
    return TestClient(client.app, client=(address, 50000))


def accept_new(client: TestClient, url: str, name: str = "New Person",
               password: str = STRONG) -> dict:
    r = fresh(client).post(f"/v1/invitations/{token_of(url)}/accept",
                           json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def csrf_of(c: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": c.cookies.get("atelier_csrf") or ""}


@pytest.fixture()
def file_mail(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Mail goes through the real `file` sender into data_dir/mail for this test."""
    from app.core.settings import get_settings
    from app.identity.mail import mail_dir

    monkeypatch.setenv("ATELIER_MAIL_BACKEND", "file")
    get_settings.cache_clear()
    try:
        yield mail_dir()
    finally:
        monkeypatch.delenv("ATELIER_MAIL_BACKEND")
        get_settings.cache_clear()


def mails_to(folder: Path, to: str) -> list[Message]:
    found = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        msg = email.message_from_bytes(path.read_bytes())
        if msg["To"] == to:
            found.append(msg)
    return found


def wait_mail(folder: Path, to: str, count: int = 1, timeout_s: float = 10) -> Message:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = mails_to(folder, to)
        if len(found) >= count:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no mail #{count} to {to} in {folder}")


def link_in(msg: Message, kind: str) -> str:
    body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    match = re.search(rf"https?://\S+/{kind}/[A-Za-z0-9_\-]+", body)
    assert match, body
    return match.group(0)


def forget_login_counts(email_: str, *addresses: str) -> None:
    from app.identity import login_throttle

    for address in addresses or ("testclient",):
        login_throttle.forget(email_, address)
