"""Accounts in the browser: an owner invites, the invitee joins from the link in a second
browser; an existing account signs in first and comes back; password reset by mailed link;
and `next=` after sign-in never leaves our origin.

Runs its own `atelier serve` (SQLite, the embedded default) with the `file` mail sender, so
the mails land in data_dir/mail where the test reads them like an inbox.
"""

from __future__ import annotations

import email
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ATELIER, snap
from tests.processes import ROOT, free_port, stop, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.browser]

OWNER, OWNER_PW = "boss@example.com", "studio-owner-pw-7"
OTHER_OWNER, OTHER_OWNER_PW = "other-boss@example.com", "other-owner-pw-7"
NEWBIE, NEWBIE_PW = "newbie@example.com", "fresh-canvas-42"


class Site:
    def __init__(self, base: str, data: Path, env: dict[str, str]) -> None:
        self.base, self.data, self.env = base, data, env

    def cli(self, *args: str) -> str:
        return subprocess.run([ATELIER, *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def mail_link(self, to: str, kind: str, count: int = 1, timeout_s: float = 15) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = []
            for path in sorted((self.data / "mail").glob("*.eml")):
                msg = email.message_from_bytes(path.read_bytes())
                body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
                match = re.search(rf"https?://\S+/{kind}/[A-Za-z0-9_\-]+", body)
                if msg["To"] == to and match:
                    found.append(match.group(0))
            if len(found) >= count:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no mail to {to}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("accounts") / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(data), ATELIER_BASE_URL=f"http://127.0.0.1:{port}",
               ATELIER_MAIL_BACKEND="file", PYTHONPATH=str(ROOT))
    s = Site(f"http://127.0.0.1:{port}", data, env)
    s.cli("migrate")
    s.cli("orgs", "create", "Studio Nord", "--admin-email", OWNER, "--admin-password", OWNER_PW)
    s.cli("orgs", "create", "Side Gallery", "--admin-email", OTHER_OWNER,
          "--admin-password", OTHER_OWNER_PW)
    log = data.parent / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([ATELIER, "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(f"{s.base}/healthz", timeout_s=120)
            yield s
        finally:
            stop(proc)


def _sign_in(page: Page, base: str, email_: str, password: str, next_: str = "") -> None:
    page.goto(f"{base}/login{next_}")
    page.get_by_label("Email").fill(email_)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_invite_accept_in_a_second_browser(site: Site, browser: Browser, shots: Path) -> None:
    owner_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    newbie_ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = owner_ctx.new_page()
        _sign_in(page, site.base, OWNER, OWNER_PW)
        page.wait_for_url(f"{site.base}/")
        page.goto(f"{site.base}/settings#members")
        page.get_by_role("button", name="Invite member").click()
        dialog = page.locator("[data-member-dialog]")
        dialog.get_by_label("Email").fill(NEWBIE)
        dialog.get_by_label("Role").select_option("member")
        dialog.get_by_role("button", name="Create invitation").click()
        reveal = page.locator("[data-invite-reveal]")
        expect(reveal).to_be_visible()
        url = reveal.locator("[data-invite-url]").inner_text().strip()
        assert url.startswith(f"{site.base}/invite/"), url
        expect(page.locator("[data-invitation]")).to_have_count(1)
        expect(page.locator("[data-invitations]")).to_contain_text(NEWBIE)
        snap(page, shots, "30-invite-link-shown-once")
        assert site.mail_link(NEWBIE, "invite") == url  # the same link went out by mail

        # The invitee, in a browser of their own, names themselves and picks a password.
        newbie = newbie_ctx.new_page()
        newbie.goto(url)
        expect(newbie.locator("[data-invite-title]")).to_have_text("Join Studio Nord")
        form = newbie.locator("[data-new-account-form]")
        expect(form.get_by_label("Email")).to_have_value(NEWBIE)
        form.get_by_label("Your name").fill("Nia Newbie")
        form.get_by_label("Choose a password").fill("password123")
        form.get_by_role("button", name="Create account and join").click()
        expect(form.locator("[data-error-for=password]")).to_contain_text("too common")
        snap(newbie, shots, "31-invite-weak-password-refused")
        form.get_by_label("Choose a password").fill(NEWBIE_PW)
        form.get_by_role("button", name="Create account and join").click()
        newbie.wait_for_url(f"{site.base}/")
        expect(newbie.locator(".user-name")).to_have_text("Nia Newbie")
        expect(newbie.locator(".user-role")).to_contain_text("Member")

        # The owner sees the new member; the invitation is no longer pending.
        page.reload()
        expect(page.locator("[data-members]")).to_contain_text(NEWBIE)
        expect(page.locator("[data-invitation]")).to_have_count(0)
        snap(page, shots, "32-member-joined")
        # The link was one-time.
        again = newbie_ctx.new_page()
        again.goto(url)
        expect(again.locator("[data-invite-error]")).to_be_visible()

        # A pending invitation can be revoked from the list.
        page.get_by_role("button", name="Invite member").click()
        dialog.get_by_label("Email").fill("maybe@example.com")
        dialog.get_by_role("button", name="Create invitation").click()
        expect(page.locator("[data-invitation]")).to_have_count(1)
        page.locator("[data-invitation]").get_by_role("button", name="Revoke").click()
        page.locator("[data-confirm]").click()
        expect(page.locator("[data-invitation]")).to_have_count(0)
    finally:
        owner_ctx.close()
        newbie_ctx.close()


def test_existing_account_signs_in_then_comes_back(site: Site, browser: Browser,
                                                   shots: Path) -> None:
    other = httpx.Client(base_url=site.base, timeout=30)
    other.post("/v1/auth/login", json={"email": OTHER_OWNER, "password": OTHER_OWNER_PW}
               ).raise_for_status()
    other.headers["X-CSRF-Token"] = other.cookies["atelier_csrf"]
    r = other.post("/v1/invitations", json={"email": OWNER, "role": "viewer"})
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = ctx.new_page()
        page.goto(url)
        expect(page.locator("[data-sign-in-first]")).to_be_visible()
        snap(page, shots, "33-invite-sign-in-first")
        page.get_by_role("link", name="Sign in to accept").click()
        page.wait_for_url(re.compile(r".*/login\?next=.*"))
        page.get_by_label("Email").fill(OWNER)
        page.get_by_label("Password").fill(OWNER_PW)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(url)  # back on the invitation
        join = page.get_by_role("button", name="Join Side Gallery as viewer")
        expect(join).to_be_visible()
        snap(page, shots, "34-invite-join-signed-in")
        join.click()
        page.wait_for_url(f"{site.base}/")
        expect(page.locator(".user-role")).to_contain_text("Viewer")
    finally:
        ctx.close()
        other.close()


def test_password_reset_in_the_browser(site: Site, browser: Browser, shots: Path) -> None:
    ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    signed_in = browser.new_context()
    try:
        # A session elsewhere, which the reset must end.
        old = signed_in.new_page()
        _sign_in(old, site.base, NEWBIE, NEWBIE_PW)
        old.wait_for_url(f"{site.base}/")

        page = ctx.new_page()
        page.goto(f"{site.base}/login")
        page.get_by_role("link", name="Forgot password?").click()
        page.wait_for_url(f"{site.base}/reset-password")
        page.get_by_label("Email").fill(NEWBIE)
        page.get_by_role("button", name="Send reset link").click()
        expect(page.locator("[data-reset-sent]")).to_contain_text("If an account exists")
        link = site.mail_link(NEWBIE, "reset-password")
        page.goto(link)
        page.get_by_label("New password").fill("brand-new-easel-9")
        page.get_by_label("Repeat it").fill("brand-new-easel-9")
        page.get_by_role("button", name="Set password").click()
        expect(page.locator("[data-reset-done]")).to_be_visible()
        snap(page, shots, "35-password-reset-done")

        status = old.evaluate("fetch('/v1/me').then((r) => r.status)")
        assert status == 401  # the other session is over
        page.get_by_role("link", name="Sign in").click()
        page.get_by_label("Email").fill(NEWBIE)
        page.get_by_label("Password").fill("brand-new-easel-9")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{site.base}/")
    finally:
        ctx.close()
        signed_in.close()


@pytest.mark.parametrize("target", ["/\\evil.example", "//evil.example",
                                    "https://evil.example/", "javascript:alert(1)",
                                    "/%5Cevil.example", "/\t/evil.example"])
def test_next_never_leaves_our_origin(site: Site, browser: Browser, target: str) -> None:
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        requested: list[str] = []
        page.on("request", lambda req: requested.append(req.url))
        _sign_in(page, site.base, OWNER, OWNER_PW, f"?{httpx.QueryParams({'next': target})}")
        page.wait_for_url(f"{site.base}/**")
        page.wait_for_load_state("networkidle")
        assert page.url.startswith(f"{site.base}/"), page.url
        assert not any("evil" in (urlsplit(u).hostname or "") for u in requested), requested
        # Signed in already, the login page's own redirect follows the same rule.
        page.goto(f"{site.base}/login?{httpx.QueryParams({'next': target})}")
        page.wait_for_load_state("networkidle")
        assert page.url.startswith(f"{site.base}/"), page.url
    finally:
        ctx.close()


def _owner_http(site: Site) -> httpx.Client:
    c = httpx.Client(base_url=site.base, timeout=30)
    c.post("/v1/auth/login", json={"email": OWNER, "password": OWNER_PW}).raise_for_status()
    c.headers["X-CSRF-Token"] = c.cookies["atelier_csrf"]
    return c


def test_concurrent_acceptance_on_sqlite_joins_once(site: Site) -> None:
    """The same one-time rule on the embedded database (SQLite) as on PostgreSQL."""
    import concurrent.futures

    owner = _owner_http(site)
    try:
        url = owner.post("/v1/invitations", json={"email": "racer@example.com"}).json()["url"]
        accept = f"{site.base}/v1/invitations/{url.rsplit('/', 1)[-1]}/accept"

        def go(i: int) -> int:
            return httpx.post(accept, json={"name": f"R{i}", "password": "racing-easel-77"},
                              timeout=60).status_code

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(go, range(6)))
        assert codes.count(200) == 1, codes
        emails = [m["email"] for m in owner.get("/v1/members?limit=200").json()["items"]]
        assert emails.count("racer@example.com") == 1
    finally:
        owner.close()


def test_reset_request_timing_does_not_reveal_accounts(site: Site) -> None:
    """Against a real server the answer comes before any lookup or mail (background task)."""
    import statistics

    def median_ms(address: str) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = httpx.post(f"{site.base}/v1/auth/password-reset", json={"email": address})
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 202
        return statistics.median(times)

    known, unknown = median_ms(OTHER_OWNER), median_ms("nobody-here@example.com")
    print(f"reset request: known {known:.1f} ms, unknown {unknown:.1f} ms")
    assert max(known, unknown) / min(known, unknown) < 3, (known, unknown)
