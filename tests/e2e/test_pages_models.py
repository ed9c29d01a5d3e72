"""The model library's "Use" dialog in Chromium: create an install link, see its URLs once,
fetch one without credentials (as InvokeAI would), revoke it, and watch the URL die."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server, snap
from tests.e2e.lab import Lab, make_dataset, open_lab, signed_in_page, train_tiny

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def lab(server: Server) -> Iterator[tuple[Lab, dict]]:
    lab = open_lab(server, "Links Lab", "links@example.com")
    try:
        dataset_id, _ = make_dataset(lab, "Cups", ["zkw cup, studio", "zkw cup, window"])
        job_id = train_tiny(lab, dataset_id, "Cups v1")
        r = lab.client.post(f"/v1/jobs/{job_id}/finalize", json={"steps": [2]})
        assert r.status_code == 200, r.text
        yield lab, r.json()["models"][0]
    finally:
        lab.close()


@pytest.fixture
def page(browser: Browser, lab: tuple[Lab, dict]) -> Iterator[Page]:
    with signed_in_page(browser, lab[0], permissions=("clipboard-read", "clipboard-write"),
                        viewport={"width": 1280, "height": 900}) as page:
        yield page


def test_create_copy_and_revoke_an_install_link(page: Page, lab: tuple[Lab, dict],
                                                shots: Path) -> None:
    base, model = lab[0].server.base, lab[1]
    page.goto(f"{base}/models")
    page.locator(f"[data-model='{model['id']}']").get_by_role("button", name="Use",
                                                              exact=True).click()
    dialog = page.locator("[data-usage-dialog]")
    links = dialog.locator("[data-links]")
    expect(links.locator("[data-link-list]")).to_contain_text("No install links yet")
    expect(dialog.locator("[data-usage-client='invokeai']")).to_contain_text("Create install link")
    links.get_by_role("button", name="Create install link").click()
    url_box = links.locator("[data-link-url]")
    expect(url_box).to_have_count(1)
    url = url_box.inner_text()
    assert url.startswith(f"{base}/v1/model-links/"), url
    expect(links).to_contain_text("shown only once")
    expect(links.locator("[data-link]")).to_have_count(1)
    expect(links.locator("[data-link-state]")).to_contain_text("Active until")
    links.locator("[data-link-new]").get_by_role("button").click()  # "Copy <file name>"
    expect(page.locator("[data-toasts]")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url
    snap(page, shots, "models-install-link")

    served = httpx.get(url, timeout=30)  # no cookie, no key: what InvokeAI does
    assert served.status_code == 200
    assert len(served.content) == model["files"][0]["bytes"]

    links.get_by_role("button", name="Revoke").click()
    page.locator("[data-confirm]").click()
    expect(page.locator("[data-toasts]")).to_contain_text("Link revoked")
    expect(links.locator("[data-link-state]")).to_have_text("Revoked")
    expect(links.locator("[data-link-url]")).to_have_count(0)  # the URLs are not shown again
    expect(links.get_by_role("button", name="Revoke")).to_have_count(0)
    assert httpx.get(url, timeout=30).status_code == 404
