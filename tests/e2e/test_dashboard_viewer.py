"""A viewer signs in to the dashboard and finds nothing to create, edit or delete; the API
refuses their writes too."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, owner_client, png_b64, sign_in, snap

pytestmark = [pytest.mark.slow, pytest.mark.browser]

VIEWER_EMAIL = "viewer@example.com"
VIEWER_PASSWORD = "viewer-pass-1"  # passes the password policy

WRITES_JS = """
async (datasetId) => {
  const csrf = decodeURIComponent(document.cookie.match(/atelier_csrf=([^;]+)/)[1]);
  const send = (method, path, body) => fetch(path, { method, headers: {
      'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: body === undefined ? undefined : JSON.stringify(body) }).then((r) => r.status);
  return {
    createDataset: await send('POST', '/v1/datasets', { name: 'nope' }),
    deleteDataset: await send('DELETE', `/v1/datasets/${datasetId}`),
    caption: await send('PATCH', `/v1/datasets/${datasetId}/items`, { items: [] }),
    createJob: await send('POST', '/v1/jobs', { name: 'x', dataset_id: datasetId,
                                                type: 'lora', base_model: 'tiny-sd15' }),
    createKey: await send('POST', '/v1/api-keys', { name: 'nope' }),
    addMember: await send('POST', '/v1/members', { email: 'x@example.com', role: 'viewer' }),
  };
}
"""


def _seed(server: Server) -> str:
    c = owner_client(server.base)
    try:
        # Joining is by invitation: the viewer accepts and chooses their own password.
        r = c.post("/v1/invitations", json={"email": VIEWER_EMAIL, "role": "viewer"})
        if r.status_code == 201:
            token = r.json()["url"].rsplit("/", 1)[-1]
            accepted = httpx.post(f"{server.base}/v1/invitations/{token}/accept",
                                  json={"name": "Vera Viewer", "password": VIEWER_PASSWORD})
            assert accepted.status_code == 200, accepted.text
        else:
            assert r.status_code == 409, r.text  # already a member
        ds = c.post("/v1/datasets", json={"name": "Shared moodboard"}).json()
        files = [("files", (f"mood-{i}.png", base64.b64decode(png_b64(i)), "image/png"))
                 for i in range(2)]
        assert c.post(f"/v1/datasets/{ds['id']}/items", files=files).status_code == 200
        return str(ds["id"])
    finally:
        c.close()


def _no_write_controls(page: Page) -> None:
    for name in ("New dataset", "Create job", "Create API key", "Invite member", "Delete",
                 "Rename", "Revoke", "Remove", "Cancel job", "Retry", "Finalize…",
                 "Edit details", "Add webhook", "Undo"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Create job")).to_have_count(0)


def test_viewer_sees_no_write_controls_and_api_refuses(server: Server, browser: object,
                                                       shots: Path) -> None:
    dataset_id = _seed(server)
    context = browser.new_context(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        sign_in(page, server.base, VIEWER_EMAIL, VIEWER_PASSWORD)
        expect(page.locator(".user-role")).to_contain_text("Viewer")
        _no_write_controls(page)
        page.goto(f"{server.base}/datasets")
        expect(page.locator("[data-dataset]").first).to_be_visible()
        _no_write_controls(page)
        snap(page, shots, "19-viewer-datasets")
        page.goto(f"{server.base}/datasets/{dataset_id}")
        expect(page.locator(".cap-card")).to_have_count(2)
        expect(page.locator("[data-dropzone]")).to_have_count(0)
        expect(page.locator("[data-bulk-form]")).to_have_count(0)
        expect(page.locator("[data-delete-item]")).to_have_count(0)
        expect(page.locator("[data-caption]").first).to_have_attribute("readonly", "")
        expect(page.get_by_role("link", name="Train on this dataset")).to_have_count(0)
        _no_write_controls(page)
        snap(page, shots, "20-viewer-dataset")
        for path in ("/jobs", "/models", "/settings"):
            page.goto(f"{server.base}{path}")
            page.wait_for_load_state("networkidle")
            _no_write_controls(page)
        expect(page.locator("[data-members] select")).to_have_count(0)
        expect(page.get_by_text("Only owners and admins can see and manage API keys.")
               ).to_be_visible()
        snap(page, shots, "21-viewer-settings")
        page.goto(f"{server.base}/jobs/new")
        expect(page.get_by_role("heading", name="Read-only access")).to_be_visible()
        expect(page.get_by_role("button", name="Begin training")).to_have_count(0)
        statuses = page.evaluate(WRITES_JS, dataset_id)
        assert statuses == {k: 403 for k in statuses}, statuses
    finally:
        context.close()
