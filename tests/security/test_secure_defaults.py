"""Secure defaults of a real `atelier up` / `atelier serve`: no shared secret, no known demo
password, presigned URLs that follow the port, no tokens in the access log, CSP on pages."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser

from tests.processes import ROOT, free_port, stop, wait_http

pytestmark = pytest.mark.slow
ATELIER = str(Path(sys.executable).parent / "atelier")
DEMO = "demo@atelier.local"


def _env(data: Path, **extra: str) -> dict[str, str]:
    # No ATELIER_BASE_URL and no secret: what a new user gets.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(data), PYTHONPATH=str(ROOT), **extra)
    return env


class Up:
    """`atelier up` on a data dir, restartable; its output goes to ``log``."""

    def __init__(self, data: Path, *args: str) -> None:
        self.data, self.args, self.port = data, args, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data.parent / f"{data.name}-up.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Starts, waits until ready, and returns what this start printed."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [ATELIER, "up", "--port", str(self.port), *self.args], cwd=ROOT,
                env=_env(self.data), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"{self.base}/readyz", timeout_s=240)
        return self.log.read_bytes()[offset:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, str]]:
    server = Up(tmp_path_factory.mktemp("secure") / "data")
    try:
        yield server, server.start()
    finally:
        server.stop()


def _printed(printed: str) -> tuple[str, str]:
    found = re.search(r"Sign in:\s+demo@atelier\.local / (\S+)\s+\(shown once\)", printed)
    key = re.search(r"API key:\s+(atl_\S+)", printed)
    assert found and key, printed
    return found.group(1), key.group(1)


def _login(base: str, password: str) -> int:
    return httpx.post(f"{base}/v1/auth/login", json={"email": DEMO, "password": password},
                      timeout=30).status_code


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 90)).save(buf, format="PNG")
    return buf.getvalue()


def test_fresh_install_gets_a_random_demo_password_and_private_secret(up: tuple[Up, str]) -> None:
    server, printed = up
    password, _ = _printed(printed)
    assert password != "atelier-demo" and len(password) >= 12
    assert _login(server.base, password) == 200
    assert _login(server.base, "atelier-demo") == 401
    secret = server.data / "secret_key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32


@pytest.fixture(scope="module")
def uploaded(up: tuple[Up, str]) -> dict[str, str]:
    """One image uploaded through a presigned URL into a new dataset, for every test that
    needs stored data (each may run alone): the dataset's id and the URLs involved."""
    server, printed = up
    _, key = _printed(printed)
    png = _png()
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as c:
        ds = c.post("/v1/datasets", json={"name": "port"}).json()
        r = c.post(f"/v1/datasets/{ds['id']}/uploads", json={"files": [
            {"filename": "a.png", "content_type": "image/png", "size": len(png)}]})
        assert r.status_code == 200, r.text
        (upl,) = r.json()["uploads"]
        sent = httpx.post(upl["url"], data=upl["fields"], files={"file": ("a.png", png,
                                                                          "image/png")})
        assert sent.status_code == 204, sent.text
        done = c.post(f"/v1/datasets/{ds['id']}/uploads/complete",
                      json={"upload_ids": [upl["upload_id"]]})
        assert len(done.json()["created"]) == 1, done.text
        item = c.get(f"/v1/datasets/{ds['id']}/items").json()["items"][0]
    return {"dataset_id": ds["id"], "upload_url": upl["url"], "item_url": item["url"]}


def test_presigned_urls_follow_the_port_and_stay_out_of_the_log(
        up: tuple[Up, str], uploaded: dict[str, str]) -> None:
    server, _ = up
    upload_url, item_url = uploaded["upload_url"], uploaded["item_url"]
    # Not port 8000: where this server listens.
    assert upload_url.startswith(f"{server.base}/storage/"), upload_url
    got = httpx.get(item_url, timeout=30)
    assert got.status_code == 200 and got.content == _png()
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"

    log = server.log.read_text(errors="replace")
    tokens = [u.rsplit("/", 1)[1] for u in (upload_url, item_url)]
    assert "/storage/[redacted]" in log  # the requests were logged...
    for token in tokens:
        assert token not in log  # ...without their credential
    assert not re.search(r"/storage/(?!\[redacted\])\S", log)


def test_dashboard_pages_send_a_strict_csp(up: tuple[Up, str]) -> None:
    server, printed = up
    password, _ = _printed(printed)
    with httpx.Client(base_url=server.base, timeout=30) as c:
        pages = [c.get("/login")]
        c.post("/v1/auth/login", json={"email": DEMO, "password": password}).raise_for_status()
        pages += [c.get("/"), c.get("/datasets")]
    for page in pages:
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = {d.split(" ", 1)[0]: d for d in
               (x.strip() for x in page.headers["content-security-policy"].split(";"))}
        assert csp["default-src"] == "default-src 'self'"
        assert csp["script-src"] == "script-src 'self'"  # no inline script, no eval
        assert csp["frame-ancestors"] == "frame-ancestors 'none'"
        assert csp["object-src"] == "object-src 'none'"
        assert csp["base-uri"] == "base-uri 'none'"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        # The pages themselves carry no inline script for the CSP to block.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text)


def test_dashboard_runs_under_its_csp_in_a_real_browser(
        up: tuple[Up, str], uploaded: dict[str, str], browser: Browser) -> None:
    """Every page loads with no CSP violation (scripts, styles, images from /storage)."""
    from tests.e2e.conftest import sign_in

    server, printed = up
    password, _ = _printed(printed)
    dataset_id = uploaded["dataset_id"]
    problems: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, server.base, DEMO, password)
        for path in ("/", "/datasets", f"/datasets/{dataset_id}", "/jobs", "/jobs/new",
                     "/models", "/settings"):
            page.goto(f"{server.base}{path}")
            page.wait_for_load_state("networkidle")
        # The dataset page showed the uploaded image (img-src allows /storage).
        page.goto(f"{server.base}/datasets/{dataset_id}")
        page.wait_for_function("() => [...document.images].some("
                               "i => i.src.includes('/storage/') && i.naturalWidth > 0)")
    finally:
        context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_a_restart_keeps_the_secret_and_prints_no_password(
        up: tuple[Up, str], uploaded: dict[str, str]) -> None:
    server, _ = up
    secret = (server.data / "secret_key").read_text()
    url = uploaded["item_url"]
    server.stop()
    again = server.start()
    assert "Demo org created" not in again and "(shown once)" not in again
    assert (server.data / "secret_key").read_text() == secret
    assert httpx.get(url, timeout=30).status_code == 200  # URLs signed before still verify


def test_explicit_demo_password_and_another_install(
    up: tuple[Up, str], tmp_path: Path
) -> None:
    weak = subprocess.run([ATELIER, "up", "--demo-password", "password123"], cwd=ROOT,
                          env=_env(tmp_path / "weak"), capture_output=True, text=True,
                          timeout=120)
    assert weak.returncode != 0 and "--demo-password" in weak.stderr, weak.stderr
    assert "too common" in weak.stderr and "Traceback" not in weak.stderr

    chosen = "Kx9-mauve-teapot-77"
    other = Up(tmp_path / "data", "--demo-password", chosen)
    try:
        printed = other.start()
        assert chosen not in printed  # not echoed back to the terminal or its log
        assert _login(other.base, chosen) == 200
    finally:
        other.stop()
    first, second = (s.data / "secret_key" for s in (up[0], other))
    assert first.read_text() != second.read_text()  # every install its own secret


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["up"], ["migrate"]])
def test_production_mode_without_a_secret_refuses_to_start(
    tmp_path: Path, command: list[str]
) -> None:
    out = subprocess.run([ATELIER, *command], cwd=ROOT,
                         env=_env(tmp_path / "data", ATELIER_MODE="production",
                                  ATELIER_BASE_URL=f"http://127.0.0.1:{free_port()}"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "production mode needs an explicit ATELIER_SECRET_KEY" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "data" / "secret_key").exists()


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("127.0.0.1", 8123, "http://127.0.0.1:8123"), ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
    ("::", 9001, "http://[::1]:9001"), ("files.example", 80, "http://files.example:80"),
])
def test_serve_and_up_derive_the_base_url_from_where_they_listen(
    monkeypatch: pytest.MonkeyPatch, host: str, port: int, expected: str
) -> None:
    from app.cli.processes import listen_base_url

    monkeypatch.delenv("ATELIER_BASE_URL", raising=False)
    listen_base_url(host, port)
    assert os.environ["ATELIER_BASE_URL"] == expected
    monkeypatch.setenv("ATELIER_BASE_URL", "https://atelier.example")
    listen_base_url(host, port)  # an explicit public URL wins
    assert os.environ["ATELIER_BASE_URL"] == "https://atelier.example"
