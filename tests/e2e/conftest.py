"""Browser fixtures: one real `atelier up` server on a fresh data dir, headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Page

from tests.fixtures_browser import CHROMIUM, CHROMIUM_ARGS  # noqa: F401  (re-exported)
from tests.processes import ROOT, free_port, stop, wait_http

SHOTS = ROOT / "test-artifacts" / "screenshots"
OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "studio-pass-1"
ATELIER = str(Path(sys.executable).parent / "atelier")


@dataclass(frozen=True)
class Server:
    base: str
    env: dict[str, str]
    data_dir: Path

    def cli(self, *args: str) -> dict[str, object]:
        out = subprocess.run([ATELIER, *args, "--json"],
                             cwd=ROOT, env=self.env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`atelier up` (SQLite, local storage, Celery over SQLite, demo seed) on a fresh data dir,
    plus one owner who belongs to two organizations (so the org switcher shows)."""
    data = tmp_path_factory.mktemp("dashboard") / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(data), ATELIER_BASE_URL=f"http://127.0.0.1:{port}",
               PYTHONPATH=str(ROOT))
    log = data.parent / "atelier-up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [ATELIER, "up", "--port", str(port)], cwd=ROOT,
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/readyz", timeout_s=240)
            srv = Server(base=base, env=env, data_dir=data)
            for org in ("Studio Nord", "Side Project"):
                srv.cli("orgs", "create", org, "--admin-email", OWNER_EMAIL,
                        "--admin-password", OWNER_PASSWORD)
            yield srv
        finally:
            stop(proc)


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


# --- helpers shared by the dashboard tests -------------------------------------------------

def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base}/")


def snap(page: Page, shots: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def png_b64(i: int, size: int = 64) -> str:
    img = Image.new("RGB", (size, size), (40 + 30 * i, 90, 200 - 25 * i))
    ImageDraw.Draw(img).rectangle([8 + i * 4, 12, 40 + i * 2, 50], fill=(250, 240, 220))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def owner_client(base: str) -> httpx.Client:
    """An httpx client signed in as the owner: session cookie plus the CSRF header."""
    c = httpx.Client(base_url=base, timeout=30)
    c.post("/v1/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
           ).raise_for_status()
    c.headers["X-CSRF-Token"] = c.cookies["atelier_csrf"]
    return c


# Drops a folder the way a browser does: DataTransferItem.webkitGetAsEntry() hands the page a
# directory entry, which the page walks. Chromium cannot make real entries from script, so the
# test stands in FileSystemEntry look-alikes; everything after webkitGetAsEntry is the real path.
DROP_FOLDER_JS = """
([selector, tree]) => {
  const toFile = (f) => new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))],
                                 f.name, { type: f.type });
  const entry = (node, parent) => {
    const fullPath = `${parent}/${node.name}`;
    if (!node.children) {
      return { isFile: true, isDirectory: false, name: node.name, fullPath,
               file: (ok) => setTimeout(() => ok(toFile(node)), 0) };
    }
    const kids = node.children.map((c) => entry(c, fullPath));
    return { isFile: false, isDirectory: true, name: node.name, fullPath,
             createReader: () => { let done = false; return { readEntries: (ok) =>
               setTimeout(() => { ok(done ? [] : kids); done = true; }, 0) }; } };
  };
  const root = entry(tree, '');
  const original = DataTransferItem.prototype.webkitGetAsEntry;
  DataTransferItem.prototype.webkitGetAsEntry = function () {
    return this.getAsFile()?.name === tree.name ? root : original.call(this);
  };
  const dt = new DataTransfer();
  dt.items.add(new File([''], tree.name));
  const zone = document.querySelector(selector);
  for (const type of ['dragenter', 'dragover', 'drop']) {
    zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  }
}
"""
