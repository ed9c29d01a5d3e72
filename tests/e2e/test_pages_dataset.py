"""The dataset page in Chromium: rename and describe a dataset; bulk caption operations show a
preview of the change first and can be undone in one step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server, snap
from tests.e2e.lab import Lab, make_dataset, open_lab, signed_in_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CAPTIONS = ["red coat", "blue coat", None, "red hat, red scarf"]
NAMES = ["a.png", "b.png", "c.png", "d.png"]


@pytest.fixture(scope="module")
def lab(server: Server) -> Iterator[Lab]:
    lab = open_lab(server, "Caption Lab", "captions@example.com")
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def page(browser: Browser, lab: Lab) -> Iterator[Page]:
    with signed_in_page(browser, lab, viewport={"width": 1280, "height": 900}) as page:
        yield page


def _captions(lab: Lab, dataset_id: str) -> dict[str, str | None]:
    items = lab.client.get(f"/v1/datasets/{dataset_id}/items?limit=200").json()["items"]
    return {it["filename"]: it["caption"] for it in items}


def test_rename_and_describe(page: Page, lab: Lab, shots: Path) -> None:
    dataset_id, _ = make_dataset(lab, "Moodboard", ["x"])
    page.goto(f"{lab.server.base}/datasets/{dataset_id}")
    expect(page.locator("[data-ds-name]")).to_have_text("Moodboard")
    page.get_by_role("button", name="Edit details").click()
    dialog = page.locator("[data-ds-dialog]")
    expect(dialog.get_by_label("Name")).to_have_value("Moodboard")
    dialog.get_by_label("Name").fill("  ")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("[data-error-for='name']")).to_contain_text("needs a name")
    dialog.get_by_label("Name").fill("Autumn moodboard")
    dialog.get_by_label("Description").fill("Coats and hats for the autumn drop")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-ds-name]")).to_have_text("Autumn moodboard")
    expect(page.locator("[data-ds-desc]")).to_have_text("Coats and hats for the autumn drop")
    snap(page, shots, "pages-dataset-renamed")
    got = lab.client.get(f"/v1/datasets/{dataset_id}").json()
    assert (got["name"], got["description"]) == ("Autumn moodboard",
                                                 "Coats and hats for the autumn drop")
    page.reload()
    expect(page.locator("[data-ds-name]")).to_have_text("Autumn moodboard")
    # Clearing the description is an edit too.
    page.get_by_role("button", name="Edit details").click()
    dialog.get_by_label("Description").fill("")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("[data-ds-desc]")).to_have_text("")
    assert lab.client.get(f"/v1/datasets/{dataset_id}").json()["description"] == ""


def test_bulk_preview_apply_and_undo(page: Page, lab: Lab, shots: Path) -> None:
    dataset_id, _ = make_dataset(lab, "Coats", CAPTIONS, NAMES)
    before = _captions(lab, dataset_id)
    page.goto(f"{lab.server.base}/datasets/{dataset_id}")
    expect(page.locator(".cap-card")).to_have_count(4)
    preview = page.locator("[data-bulk-preview]")
    expect(preview).to_be_hidden()  # nothing typed, nothing to preview

    page.get_by_label("Bulk operation").select_option("replace")
    page.get_by_label("Find").fill("red")
    page.get_by_label("Replace with").fill("crimson")
    expect(preview.locator("[data-preview-count]")).to_have_attribute("data-preview-count", "2")
    expect(preview).to_contain_text("2 captions will change")
    row = preview.locator("[data-preview-item]").last
    expect(row).to_contain_text("d.png")
    expect(row.locator("del")).to_have_text("red hat, red scarf")
    expect(row.locator("ins")).to_have_text("crimson hat, crimson scarf")
    assert _captions(lab, dataset_id) == before  # a preview changes nothing
    snap(page, shots, "pages-bulk-preview")

    page.get_by_role("button", name="Apply to all 4").click()
    expect(page.locator("[data-toasts]")).to_contain_text("Updated 2 captions")
    expect(preview).to_be_hidden()  # applied: the preview is spent until the form changes
    undo = page.locator("[data-bulk-undo]")
    expect(undo).to_be_visible()
    after = _captions(lab, dataset_id)
    assert after["a.png"] == "crimson coat" and after["d.png"] == "crimson hat, crimson scarf"
    assert after["b.png"] == "blue coat" and after["c.png"] is None
    expect(page.locator("[data-caption]").first).to_have_value("crimson coat")
    undo.get_by_role("button", name="Undo").click()
    expect(page.locator("[data-toasts]")).to_contain_text("Restored 2 captions")
    expect(undo).to_be_hidden()
    assert _captions(lab, dataset_id) == before
    expect(page.locator("[data-caption]").first).to_have_value("red coat")

    # Clearing asks first, and one click brings every cleared caption back.
    page.get_by_label("Bulk operation").select_option("clear")
    expect(preview).to_contain_text("3 captions will change")
    assert "null" not in preview.inner_text()
    page.get_by_role("button", name="Apply to all 4").click()
    page.get_by_role("button", name="Clear captions").click()
    expect(page.locator("[data-count-uncaptioned]")).to_have_text("4")
    assert set(_captions(lab, dataset_id).values()) == {None}
    snap(page, shots, "pages-bulk-undo")
    undo.get_by_role("button", name="Undo").click()
    expect(page.locator("[data-count-uncaptioned]")).to_have_text("1")
    assert _captions(lab, dataset_id) == before

    # A caption edited by hand after an operation is not overwritten by a stale undo.
    page.get_by_label("Bulk operation").select_option("prepend")
    page.get_by_label("Text", exact=True).fill("zkw")
    page.locator(".cap-card", has_text="b.png").locator("[data-select]").check(force=True)
    page.get_by_role("button", name="Apply to 1 selected").click()
    expect(undo).to_be_visible()
    caption = page.get_by_label("Caption for b.png")
    caption.fill("zkw blue coat, by hand")
    caption.press("Escape")
    expect(page.locator(".cap-card[data-saved]")).to_have_count(1)
    expect(undo).to_be_hidden()
    assert _captions(lab, dataset_id)["b.png"] == "zkw blue coat, by hand"
