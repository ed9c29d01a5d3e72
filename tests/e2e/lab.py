"""Helpers for the page and phone tests: each test module works in an organization of its own
(own admin, own datasets and jobs), so it neither sees nor disturbs the journey test's data."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import Server, png_b64, sign_in

PASSWORD = "lab-pass-123"


@dataclass
class Lab:
    server: Server
    email: str
    client: httpx.Client

    def close(self) -> None:
        self.client.close()


def open_lab(server: Server, org: str, email: str) -> Lab:
    """A fresh organization with `email` as its owner, and an httpx client signed in as them."""
    server.cli("orgs", "create", org, "--admin-email", email, "--admin-password", PASSWORD)
    c = httpx.Client(base_url=server.base, timeout=30)
    c.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).raise_for_status()
    c.headers["X-CSRF-Token"] = c.cookies["atelier_csrf"]
    return Lab(server=server, email=email, client=c)


def make_dataset(lab: Lab, name: str, captions: list[str | None],
                 filenames: list[str] | None = None) -> tuple[str, list[dict[str, object]]]:
    """A dataset with one image per caption; returns its id and its items (by filename)."""
    c = lab.client
    ds = c.post("/v1/datasets", json={"name": name}).json()
    names = filenames or [f"img-{i}.png" for i in range(len(captions))]
    files = [("files", (n, base64.b64decode(png_b64(i)), "image/png")) for i, n in enumerate(names)]
    r = c.post(f"/v1/datasets/{ds['id']}/items", files=files)
    assert r.status_code == 200, r.text
    items = sorted(c.get(f"/v1/datasets/{ds['id']}/items?limit=200").json()["items"],
                   key=lambda it: names.index(it["filename"]))
    edits = [{"id": it["id"], "caption": cap} for it, cap in zip(items, captions, strict=True)]
    r = c.patch(f"/v1/datasets/{ds['id']}/items", json={"items": edits})
    assert r.status_code == 200, r.text
    return str(ds["id"]), items


def train_tiny(lab: Lab, dataset_id: str, name: str, *, timeout_s: float = 240) -> str:
    """A two-step LoRA on the tiny base model, checkpointed and validated at every step;
    returns the job id once it has succeeded."""
    r = lab.client.post("/v1/jobs", json={
        "name": name, "dataset_id": dataset_id, "type": "lora", "base_model": "tiny-sd15",
        "caption_prefix": "zkw", "max_train_steps": 2, "save_every_n_steps": 1,
        "validate_every_n_steps": 1, "validation_prompts": ["zkw portrait"],
        "advanced": {"resolution": 64, "rank": 4, "validation_inference_steps": 2,
                     "num_validation_images": 1}})
    assert r.status_code == 201, r.text
    job_id = str(r.json()["id"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = lab.client.get(f"/v1/jobs/{job_id}").json()["status"]
        if status == "succeeded":
            return job_id
        assert status in ("queued", "running"), status
        time.sleep(1.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s}s")


# Every rendered box under `root` (a selector) that sticks out of its container (`inside`, a
# selector matched upwards with closest(), or the viewport when null), as readable strings.
OVERFLOW_JS = """
([root, inside]) => {
  const vw = document.documentElement.clientWidth;
  const bad = [];
  for (const box of document.querySelectorAll(root)) {
    const outer = inside ? box.closest(inside).getBoundingClientRect() : null;
    for (const el of [box, ...box.querySelectorAll('*')]) {
      if (el.closest('.sr-only')) continue;
      const r = el.getBoundingClientRect();
      if (!r.width && !r.height) continue;
      const what = `${el.tagName.toLowerCase()}.${el.className}`;
      const span = `${r.left}..${r.right}`;
      if (r.left < -0.5 || r.right > vw + 0.5) bad.push(`${what} outside the viewport: ${span}`);
      if (outer && (r.left < outer.left - 0.5 || r.right > outer.right + 0.5))
        bad.push(`${what} outside its ${inside}: ${span} vs ${outer.left}..${outer.right}`);
    }
  }
  return bad;
}
"""

# WCAG contrast of every visible secondary-text element against the first opaque background
# behind it. Returns the failures.
CONTRAST_JS = """
(selector) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  let checked = 0;
  for (const el of document.querySelectorAll(selector)) {
    const text = el.textContent.trim();
    if (!text || !el.getClientRects().length || el.closest('[hidden], .sr-only')) continue;
    const a = lum(rgb(getComputedStyle(el).color)); const b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    checked += 1;
    const what = `${el.tagName.toLowerCase()}.${el.className} “${text.slice(0, 30)}”`;
    if (ratio < 4.5) out.push(`${what}: ${ratio.toFixed(2)}`);
  }
  return { checked, out };
}
"""
SECONDARY_TEXT = (".muted, .field-help, .stat-label, .table th, .save-state, .user-role, "
                  ".crumbs a, .kv-row dt, .kv-list dt")


@contextmanager
def signed_in_page(browser: Browser, lab: Lab, *, permissions: tuple[str, ...] = (),
                   **context: Any) -> Iterator[Page]:
    """A fresh browser context signed in as the lab's owner; any uncaught page error fails."""
    ctx = browser.new_context(**context)
    if permissions:
        ctx.grant_permissions(list(permissions), origin=lab.server.base)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        sign_in(page, lab.server.base, lab.email, PASSWORD)
        yield page
        assert not errors, errors
    finally:
        ctx.close()
