"""The job pages in Chromium: two chosen steps side by side, enlarged; deleting ended jobs from
the training list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server, snap
from tests.e2e.lab import Lab, make_dataset, open_lab, signed_in_page, train_tiny

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def lab(server: Server) -> Iterator[tuple[Lab, str, str]]:
    lab = open_lab(server, "Compare Lab", "compare@example.com")
    try:
        dataset_id, _ = make_dataset(lab, "Faces", ["zkw face, left light", "zkw face, smile"])
        yield lab, dataset_id, train_tiny(lab, dataset_id, "Faces v1")
    finally:
        lab.close()


@pytest.fixture
def page(browser: Browser, lab: tuple[Lab, str, str]) -> Iterator[Page]:
    with signed_in_page(browser, lab[0], viewport={"width": 1366, "height": 900}) as page:
        yield page


def test_two_chosen_steps_side_by_side(page: Page, lab: tuple[Lab, str, str],
                                       shots: Path) -> None:
    base, job_id = lab[0].server.base, lab[2]
    page.goto(f"{base}/jobs/{job_id}")
    expect(page.locator(".val-table tbody tr")).to_have_count(3)  # steps 0, 1, 2
    page.locator("[data-cell='1:0:0']").click()
    lightbox = page.locator("[data-lightbox]")
    expect(lightbox).to_be_visible()
    pair = lightbox.locator("[data-lb-pair]")
    expect(pair).to_be_hidden()
    lightbox.get_by_role("button", name="Side by side").click()
    expect(pair).to_be_visible()
    expect(lightbox.locator(".lb-figure")).to_be_hidden()
    sides = pair.locator("[data-lb-side]")
    expect(sides).to_have_count(2)
    # It starts from the step clicked and the last step; each side can be any step.
    expect(sides.nth(0)).to_have_attribute("data-step", "1")
    expect(sides.nth(1)).to_have_attribute("data-step", "2")
    lightbox.get_by_label("Left step").select_option("0")
    expect(sides.nth(0)).to_have_attribute("data-step", "0")
    expect(sides.nth(1)).to_have_attribute("data-step", "2")
    lightbox.get_by_label("Right step").select_option("1")
    expect(sides.nth(1)).to_have_attribute("data-step", "1")
    expect(page.locator("[data-lb-title]")).to_have_text("Step 0 and step 1 · prompt 1, image 1")
    alts = sides.locator("img").evaluate_all("imgs => imgs.map(i => i.alt)")
    assert alts == ["Step 0: zkw portrait", "Step 1: zkw portrait"], alts
    for img in sides.locator("img").all():  # enlarged: far bigger than the grid's thumbnails
        expect(img).to_have_js_property("complete", True)
        box = img.bounding_box()
        assert box and box["width"] >= 300, box
    # The very images of those steps (signed URLs differ per request: compare the bytes).
    client = lab[0].client
    srcs = sides.locator("img").evaluate_all("imgs => imgs.map(i => i.src)")
    steps = {c["step"]: c["validation_images"][0]["url"]
             for c in client.get(f"/v1/jobs/{job_id}/checkpoints").json()}
    assert [client.get(u).content for u in srcs] == [client.get(steps[0]).content,
                                                     client.get(steps[1]).content]
    snap(page, shots, "pages-compare-side-by-side")
    lightbox.get_by_role("button", name="One at a time").click()
    expect(pair).to_be_hidden()
    expect(lightbox.locator(".lb-figure")).to_be_visible()
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()


def test_delete_ended_jobs_from_the_list(page: Page, lab: tuple[Lab, str, str],
                                         shots: Path) -> None:
    client, dataset_id, trained = lab[0].client, lab[1], lab[2]
    stopped = client.post("/v1/jobs", json={
        "name": "Stopped early", "dataset_id": dataset_id, "type": "lora",
        "base_model": "tiny-sd15", "max_train_steps": 50, "advanced": {"resolution": 64}}).json()
    assert client.post(f"/v1/jobs/{stopped['id']}/cancel").status_code == 200
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{stopped['id']}").json()["status"] != "cancelled":
        assert time.monotonic() < deadline, "the cancel never landed"
        time.sleep(1)
    page.goto(f"{lab[0].server.base}/jobs")
    rows = page.locator("[data-job]")
    expect(rows).to_have_count(2)
    row = page.locator(f"[data-job='{stopped['id']}']")
    row.get_by_role("button", name="Delete Stopped early").click()
    confirm = page.locator("dialog[open]")
    expect(confirm).to_contain_text("no model is kept")
    confirm.get_by_role("button", name="Cancel").click()
    expect(rows).to_have_count(2)  # cancelling the confirmation deletes nothing
    row.get_by_role("button", name="Delete Stopped early").click()
    page.get_by_role("button", name="Delete job").click()
    expect(page.locator("[data-toasts]")).to_contain_text("“Stopped early” deleted")
    expect(rows).to_have_count(1)
    assert client.get(f"/v1/jobs/{stopped['id']}").status_code == 404
    snap(page, shots, "pages-jobs-after-delete")
    page.locator(f"[data-job='{trained}']").get_by_role("button", name="Delete Faces v1").click()
    page.get_by_role("button", name="Delete job").click()
    expect(page.get_by_text("No training jobs yet")).to_be_visible()
    assert client.get(f"/v1/jobs/{trained}").status_code == 404
    assert client.get(f"/v1/jobs/{trained}/checkpoints").status_code == 404
