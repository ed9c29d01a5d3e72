"""Suggested captions in the caption editor, in Chromium against a real `atelier up` (its own
Celery worker and the tiny captioner the demo seed installs): start a caption job, follow its
progress live, review each suggestion beside the current caption, and change only what was
accepted — one, an edit, all — with the trigger word applied on accept. A viewer sees the
suggestions but nothing to act on."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Server, sign_in
from tests.e2e.lab import (
    CONTRAST_JS,
    OVERFLOW_JS,
    SECONDARY_TEXT,
    Lab,
    make_dataset,
    open_lab,
    signed_in_page,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
VIEWER_EMAIL = "caption-viewer@example.com"
VIEWER_PASSWORD = "viewer-pass-16"
JOB_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def lab(server: Server) -> Iterator[Lab]:
    lab = open_lab(server, "Caption Review Lab", "review@example.com")
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def captioner(lab: Lab) -> dict[str, str]:
    """The captioner the demo seed installed: every org can use it."""
    items = lab.client.get("/v1/captioners").json()["items"]
    assert items, "the demo seed installs a tiny captioner"
    return items[0]  # type: ignore[no-any-return]


def _captions(lab: Lab, dataset_id: str) -> dict[str, str | None]:
    items = lab.client.get(f"/v1/datasets/{dataset_id}/items?limit=200").json()["items"]
    return {it["filename"]: it["caption"] for it in items}


def _suggestions(lab: Lab, dataset_id: str) -> dict[str, str]:
    """item id -> suggested text, as the API holds them now."""
    items = lab.client.get(f"/v1/datasets/{dataset_id}/suggestions").json()["items"]
    return {s["item_id"]: s["suggestion"]["text"] for s in items if s["suggestion"]}


def _with_prefix(text: str, prefix: str) -> str:
    return text if text.startswith(prefix) else f"{prefix}, {text}"


def _row(page: Page, filename: str):  # type: ignore[no-untyped-def]
    return page.locator("[data-sg-item]", has_text=filename)


def _start(page: Page, captioner: dict[str, str], *, mode: str, prefix: str = "",
           max_length: str = "") -> None:
    form = page.locator("[data-sg-form]")
    form.get_by_label("Captioner").select_option(captioner["key"])
    form.locator(f"input[name=mode][value={mode}]").check(force=True)
    form.get_by_label(re.compile("^Trigger word")).fill(prefix)
    form.locator("[data-sg-max]").fill(max_length)
    form.get_by_role("button", name="Suggest captions").click()


def _wait_done(page: Page, total: int) -> None:
    progress = page.locator("[data-sg-progress]")
    expect(progress).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(progress.locator("[data-sg-progress-text]")).to_have_text(f"{total} / {total} images")
    expect(progress.locator("[data-sg-bar]")).to_have_attribute("aria-valuenow", "100")
    expect(progress.get_by_role("button", name="Cancel")).to_be_hidden()


def test_suggest_review_accept_one_edit_one_discard_rest(
        browser: Browser, lab: Lab, captioner: dict[str, str], shots: Path) -> None:
    names = ["a.png", "b.png", "c.png", "d.png"]
    dataset_id, items = make_dataset(lab, "Suggest for the uncaptioned",
                                     ["red coat", None, None, None], names)
    ids = {it["filename"]: it["id"] for it in items}
    with signed_in_page(browser, lab, **DESKTOP) as page:
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
        page.goto(f"{lab.server.base}/datasets/{dataset_id}")
        expect(page.locator(".cap-card")).to_have_count(4)
        form = page.locator("[data-sg-form]")
        expect(form.locator("[data-sg-count=uncaptioned]")).to_have_text("3")
        expect(form.locator("[data-sg-count=all]")).to_have_text("4")
        expect(page.locator("[data-sg-review]")).to_be_hidden()

        _start(page, captioner, mode="uncaptioned", prefix="zkw", max_length="12")
        expect(page.locator("[data-sg-progress]")).to_be_visible()
        _wait_done(page, 3)
        assert any("/caption-jobs/" in u for u in streams), streams  # followed live over SSE
        expect(form.get_by_role("button", name="Suggest captions")).to_be_enabled()

        # Only the uncaptioned images got a suggestion, side by side with their caption.
        review = page.locator("[data-sg-review]")
        expect(review.locator("[data-sg-item]")).to_have_count(3)
        expect(review.locator("[data-sg-review-title]")).to_have_text("3 suggestions to review")
        expect(_row(page, "a.png")).to_have_count(0)
        suggested = _suggestions(lab, dataset_id)
        assert set(suggested) == {ids["b.png"], ids["c.png"], ids["d.png"]}
        for name in ("b.png", "c.png", "d.png"):
            row = _row(page, name)
            expect(row.locator("[data-sg-current]")).to_have_text("No caption yet")
            expect(row.locator("[data-sg-text]")).to_have_value(suggested[ids[name]])
        # Nothing changed until someone accepts.
        assert _captions(lab, dataset_id) == {"a.png": "red coat", "b.png": None,
                                              "c.png": None, "d.png": None}
        expect(page.get_by_label("Trigger word added on accept")).to_have_value("zkw")
        page.wait_for_load_state("networkidle")
        page.locator("[data-suggest]").screenshot(path=str(shots / "captions-review-desktop.png"))

        # Accept one as suggested.
        _row(page, "b.png").get_by_role("button", name="Accept").click()
        expect(_row(page, "b.png")).to_have_count(0)
        expect(page.locator("[data-toasts]")).to_contain_text("Accepted 1 caption")
        expected_b = _with_prefix(suggested[ids["b.png"]], "zkw")
        expect(page.get_by_label("Caption for b.png")).to_have_value(expected_b)

        # Edit one, then accept it from the keyboard (focus moved on to it).
        text = _row(page, "c.png").locator("[data-sg-text]")
        expect(text).to_be_focused()
        text.fill("a linen shirt on a hanger")
        expect(_row(page, "c.png").get_by_role("button", name="Accept edit")).to_be_visible()
        text.press("Enter")
        expect(_row(page, "c.png")).to_have_count(0)
        expect(page.get_by_label("Caption for c.png")).to_have_value(
            "zkw, a linen shirt on a hanger")

        # Discard the rest: the captions stay as they are.
        page.get_by_role("button", name="Discard all").click()
        page.locator("dialog[open]").get_by_role("button", name="Discard all").click()
        expect(page.locator("[data-sg-review]")).to_be_hidden()
        expect(page.locator("[data-sg-progress]")).to_be_hidden()  # its "nothing changed" is spent
        assert _captions(lab, dataset_id) == {
            "a.png": "red coat", "b.png": expected_b,
            "c.png": "zkw, a linen shirt on a hanger", "d.png": None}
        assert _suggestions(lab, dataset_id) == {}
        expect(page.locator("[data-count-uncaptioned]")).to_have_text("1")
        expect(form.locator("[data-sg-count=uncaptioned]")).to_have_text("1")


def test_accept_all_on_a_phone_with_the_review_trigger_word(
        browser: Browser, lab: Lab, captioner: dict[str, str], shots: Path) -> None:
    names = ["kept.png", "a-very-long-file-name-from-a-camera-roll-IMG_0002.png", "z.png"]
    dataset_id, items = make_dataset(lab, "Accept everything", ["kept caption", None, None], names)
    with signed_in_page(browser, lab, **PHONE) as page:
        page.goto(f"{lab.server.base}/datasets/{dataset_id}")
        expect(page.locator(".cap-card")).to_have_count(3)
        expect(page.locator("[data-sg-captioner]")).to_be_enabled()
        page.locator("[data-suggest]").screenshot(path=str(shots / "captions-suggest-phone.png"))
        _start(page, captioner, mode="all")
        _wait_done(page, 3)
        review = page.locator("[data-sg-review]")
        expect(review.locator("[data-sg-item]")).to_have_count(3)
        expect(_row(page, "kept.png").locator("[data-sg-current]")).to_have_text("kept caption")
        assert _captions(lab, dataset_id)["kept.png"] == "kept caption"

        # The trigger word typed in the review applies to every accepted caption.
        page.get_by_label("Trigger word added on accept").fill("tkw")
        expect(review.locator("[data-sg-prefix-note]").first).to_have_text("Saved as “tkw, …”")
        bad = page.evaluate(OVERFLOW_JS, ["[data-sg-item]", "[data-sg-item]"])
        assert not bad, "\n".join(bad[:20])
        bad = page.evaluate(OVERFLOW_JS, ["[data-suggest]", None])
        assert not bad, "\n".join(bad[:20])
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways: {width}px"
        expect(page.locator(".sg-kbd-hint")).to_be_hidden()  # no keyboard on a phone
        legible = page.evaluate(CONTRAST_JS,
                                f"{SECONDARY_TEXT}, .sg-label, .sg-prefix, .sg-current")
        assert legible["checked"] > 6 and not legible["out"], legible
        review.locator("[data-sg-item]").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "captions-review-phone.png"))

        suggested = _suggestions(lab, dataset_id)
        page.get_by_role("button", name="Accept all 3").click()
        dialog = page.locator("dialog[open]")
        expect(dialog).to_contain_text("1 image already has a caption")
        dialog.get_by_role("button", name="Accept all").click()
        expect(review).to_be_hidden()
        expect(page.locator("[data-toasts]")).to_contain_text("Accepted 3 captions")
        by_name = {it["id"]: it["filename"] for it in items}
        assert _captions(lab, dataset_id) == {
            by_name[i]: _with_prefix(t, "tkw") for i, t in suggested.items()}
        assert _suggestions(lab, dataset_id) == {}

        # Nothing is left uncaptioned: the API's refusal is shown, in words, beside the control.
        _start(page, captioner, mode="uncaptioned")
        error = page.locator("[data-sg-error]")
        expect(error).to_be_visible()
        expect(error).to_contain_text(re.compile(r"^Could not start: \w"))
        assert "Traceback" not in error.inner_text() and "{" not in error.inner_text()
        page.locator("[data-sg-form] [data-sg-max]").fill("0")
        page.get_by_role("button", name="Suggest captions").click()
        expect(error).to_have_text("Max length must be a whole number, 1 or more.")


def _join_as_viewer(lab: Lab) -> None:
    r = lab.client.post("/v1/invitations", json={"email": VIEWER_EMAIL, "role": "viewer"})
    assert r.status_code == 201, r.text
    token = r.json()["url"].rsplit("/", 1)[-1]
    accepted = httpx.post(f"{lab.server.base}/v1/invitations/{token}/accept",
                          json={"name": "Vic Viewer", "password": VIEWER_PASSWORD})
    assert accepted.status_code == 200, accepted.text


def test_a_viewer_sees_suggestions_but_no_write_controls(
        browser: Browser, lab: Lab, captioner: dict[str, str], shots: Path) -> None:
    dataset_id, _ = make_dataset(lab, "Viewer look", [None, None])
    r = lab.client.post(f"/v1/datasets/{dataset_id}/caption-jobs",
                        json={"captioner": captioner["key"], "mode": "uncaptioned"})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while (status := lab.client.get(f"/v1/caption-jobs/{job_id}").json()["status"]) != "succeeded":
        assert status in ("queued", "running") and time.monotonic() < deadline, status
        time.sleep(1)
    _join_as_viewer(lab)
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    try:
        sign_in(page, lab.server.base, VIEWER_EMAIL, VIEWER_PASSWORD)
        page.goto(f"{lab.server.base}/datasets/{dataset_id}")
        expect(page.locator("[data-sg-item]")).to_have_count(2)
        expect(page.locator("[data-sg-item] .sg-text-static").first).not_to_be_empty()
        for control in ("[data-sg-form]", "[data-sg-text]", "[data-sg-accept]",
                        "[data-sg-discard]", "[data-sg-accept-all]", "[data-sg-discard-all]",
                        "[data-sg-accept-prefix]", "[data-sg-cancel]"):
            expect(page.locator(control)).to_have_count(0)
        for name in ("Suggest captions", "Accept", "Discard", "Cancel"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
        page.locator("[data-suggest]").screenshot(path=str(shots / "captions-review-viewer.png"))
    finally:
        context.close()
    assert set(_captions(lab, dataset_id).values()) == {None}


def _many_images(lab: Lab, name: str, count: int) -> str:
    """An uncaptioned dataset of `count` small images, each its own colour."""
    ds = lab.client.post("/v1/datasets", json={"name": name}).json()
    files = []
    for i in range(count):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (i * 4 % 256, 255 - i * 3 % 256, 90)).save(buf, format="PNG")
        files.append(("files", (f"frame-{i:03d}.png", buf.getvalue(), "image/png")))
    r = lab.client.post(f"/v1/datasets/{ds['id']}/items", files=files)
    assert r.status_code == 200, r.text
    return str(ds["id"])


def test_cancel_from_the_progress_panel(
        browser: Browser, lab: Lab, captioner: dict[str, str]) -> None:
    total = 60
    dataset_id = _many_images(lab, "Long roll", total)
    with signed_in_page(browser, lab, **DESKTOP) as page:
        page.goto(f"{lab.server.base}/datasets/{dataset_id}")
        expect(page.locator(".cap-card")).to_have_count(total)
        _start(page, captioner, mode="uncaptioned", max_length="256")  # long: slow per image
        progress = page.locator("[data-sg-progress]")
        progress.get_by_role("button", name="Cancel").click()
        expect(progress).to_have_attribute("data-status", "cancelled", timeout=60_000)
        expect(progress).to_be_visible()
        expect(progress.locator("[data-sg-status]")).to_have_text("Cancelled")
        expect(progress.get_by_role("button", name="Cancel")).to_be_hidden()
        done = int(progress.locator("[data-sg-progress-text]").inner_text().split(" / ")[0])
        assert done < total
        expect(progress.locator("[data-sg-progress-text]")).to_have_text(f"{done} / {total} images")
        expect(page.get_by_role("button", name="Suggest captions")).to_be_enabled()
        # What was made before the stop is there to review; no caption changed.
        expect(page.locator("[data-sg-item]")).to_have_count(len(_suggestions(lab, dataset_id)))
    assert len(_suggestions(lab, dataset_id)) <= done
    assert set(_captions(lab, dataset_id).values()) == {None}
