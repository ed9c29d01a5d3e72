"""The dashboard on a phone (390 × 844, touch): caption cards keep everything inside the card,
the finalize dialog fits with its action in reach, no keyboard hints, secondary text legible."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server
from tests.e2e.lab import (
    CONTRAST_JS,
    OVERFLOW_JS,
    SECONDARY_TEXT,
    Lab,
    make_dataset,
    open_lab,
    signed_in_page,
    train_tiny,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
LONG = ("zkw studio portrait of a person in a very long, detailed caption that wraps over many "
        "lines: soft window light, muted backdrop, linen shirt, 85mm lens, shallow depth of field")


@pytest.fixture(scope="module")
def lab(server: Server) -> Iterator[tuple[Lab, str, str]]:
    lab = open_lab(server, "Phone Lab", "phone@example.com")
    try:
        names = ["a-very-long-file-name-from-a-camera-roll-2024-05-17-IMG_0001.png",
                 "b.png", "c.png"]
        dataset_id, _ = make_dataset(lab, "Pocket shoot", [LONG, "zkw close-up", None], names)
        job_id = train_tiny(lab, dataset_id, "Pocket portraits")
        yield lab, dataset_id, job_id
    finally:
        lab.close()


@pytest.fixture
def phone(browser: Browser, lab: tuple[Lab, str, str]) -> Iterator[Page]:
    with signed_in_page(browser, lab[0], **PHONE) as page:
        yield page


def _no_overflow(page: Page, root: str, inside: str | None = None) -> None:
    bad = page.evaluate(OVERFLOW_JS, [root, inside])
    assert not bad, "\n".join(bad[:20])


def _legible(page: Page) -> None:
    res = page.evaluate(CONTRAST_JS, SECONDARY_TEXT)
    assert res["checked"] > 3, res  # the check looked at something
    assert not res["out"], res["out"]


def test_caption_cards_fit_on_a_phone(phone: Page, lab: tuple[Lab, str, str],
                                      shots: Path) -> None:
    base, dataset_id = lab[0].server.base, lab[1]
    phone.goto(f"{base}/datasets/{dataset_id}")
    expect(phone.locator(".cap-card")).to_have_count(3)
    expect(phone.locator(".cap-card img").first).to_have_js_property("complete", True)
    # Keyboard hints mean nothing on a touch screen.
    expect(phone.locator(".kbd-hint")).to_be_hidden()
    _no_overflow(phone, ".cap-card", ".cap-card")
    _no_overflow(phone, ".captions-card")
    width = phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways: {width}px"
    # The delete action of every card is within its card and tappable.
    for card in phone.locator(".cap-card").all():
        box, act = card.bounding_box(), card.locator("[data-delete-item]").bounding_box()
        assert box and act and act["x"] + act["width"] <= box["x"] + box["width"] + 0.5
        assert act["y"] + act["height"] <= box["y"] + box["height"] + 0.5
    _legible(phone)
    # A viewport-sized capture: a full-page one re-lays the page out without touch emulation.
    phone.locator(".cap-card").first.scroll_into_view_if_needed()
    phone.screenshot(path=str(shots / "phone-caption-editor.png"))


def test_finalize_dialog_fits_on_a_phone(phone: Page, lab: tuple[Lab, str, str],
                                         shots: Path) -> None:
    base, job_id = lab[0].server.base, lab[2]
    phone.goto(f"{base}/jobs/{job_id}")
    expect(phone.locator("[data-job-status]")).to_contain_text("Ready to finalize")
    phone.get_by_label("Step 1", exact=True).check()
    phone.get_by_label("Step 2", exact=True).check()
    phone.get_by_role("button", name=re.compile("^Finalize")).click()
    dialog = phone.locator("[data-finalize-dialog]")
    expect(dialog).to_be_visible()
    confirm = dialog.locator("[data-finalize-confirm]")
    confirm.scroll_into_view_if_needed()
    expect(confirm).to_be_in_viewport(ratio=1)
    expect(dialog.get_by_role("button", name=re.compile("Keep choosing|Cancel"))).to_be_visible()
    box = dialog.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844
    _no_overflow(phone, "[data-finalize-dialog]", "[data-finalize-dialog]")
    phone.wait_for_timeout(200)
    phone.screenshot(path=str(shots / "phone-finalize-dialog.png"))
    dialog.get_by_role("button", name=re.compile("Keep choosing|Cancel")).click()
    expect(dialog).to_be_hidden()
    # The step comparison opens full width too, and shows no keyboard hints.
    phone.locator("[data-cell='1:0:0']").click()
    lightbox = phone.locator("[data-lightbox]")
    expect(lightbox).to_be_visible()
    expect(lightbox.locator(".kbd-hint")).to_be_hidden()
    _no_overflow(phone, "[data-lightbox] .lb-head, [data-lightbox] .lb-figure")
    _legible(phone)


def test_settings_and_its_dialogs_fit_on_a_phone(phone: Page, lab: tuple[Lab, str, str],
                                                 shots: Path) -> None:
    phone.goto(f"{lab[0].server.base}/settings#webhooks")
    expect(phone.locator("[data-webhooks-section]")).to_contain_text("No webhooks")
    expect(phone.locator("[data-audit-event]").first).to_be_visible()
    width = phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways: {width}px"  # wide tables scroll inside
    _legible(phone)
    for opener, dialog in (("Add webhook", "[data-webhook-dialog]"),
                           ("Create API key", "[data-key-dialog]"),
                           ("Invite member", "[data-member-dialog]")):
        phone.get_by_role("button", name=opener).first.click()
        expect(phone.locator(dialog)).to_be_visible()
        _no_overflow(phone, dialog, dialog)
        submit = phone.locator(f"{dialog} button[type=submit]")
        submit.scroll_into_view_if_needed()
        expect(submit).to_be_in_viewport(ratio=1)
        if opener == "Add webhook":
            phone.screenshot(path=str(shots / "phone-webhook-dialog.png"))
        phone.locator(f"{dialog} [data-close]").click()
        expect(phone.locator(dialog)).to_be_hidden()
