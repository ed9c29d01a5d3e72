"""The dashboard in a real browser, on a real `atelier up`: sign in, switch org, create a
dataset, drop a folder of images, caption them, train a tiny LoRA, watch it reach 100%, tick two
steps, finalize, find two models in the library, create and revoke an API key."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    DROP_FOLDER_JS,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    Server,
    png_b64,
    sign_in,
    snap,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def _folder() -> dict[str, object]:
    png = {"type": "image/png"}
    return {"name": "shoot", "children": [
        *({"name": f"look-{i}.png", "b64": png_b64(i), **png} for i in range(4)),
        {"name": "look-0.txt", "b64": "emt3IHN0dWRpbyBwb3J0cmFpdCwgc29mdCBsaWdodA==",
         "type": "text/plain"},  # "zkw studio portrait, soft light"
        {"name": "notes.md", "b64": "IyBub3Rlcw==", "type": "text/markdown"},
        {"name": ".DS_Store", "b64": "AAAA", "type": ""},
        {"name": "extra", "children": [
            {"name": "detail-1.png", "b64": png_b64(5), **png},
            {"name": "broken.png", "b64": "bm90IGFuIGltYWdl", **png},  # "not an image"
        ]},
    ]}


def _sign_in_and_switch_org(page: Page, server: Server, shots: Path) -> None:
    sign_in(page, server.base, OWNER_EMAIL, OWNER_PASSWORD)
    switcher = page.get_by_label("Organization")
    expect(switcher.locator("option")).to_have_count(2)
    switcher.select_option(label="Side Project")
    expect(page.get_by_text("Side Project — datasets")).to_be_visible()
    page.get_by_label("Organization").select_option(label="Studio Nord")
    expect(page.get_by_text("Studio Nord — datasets")).to_be_visible()
    snap(page, shots, "02-overview")


def _create_dataset(page: Page, shots: Path) -> str:
    _nav(page, "Datasets")
    expect(page.get_by_text("No datasets yet")).to_be_visible()
    page.get_by_role("button", name="New dataset").click()
    page.get_by_label("Name").fill("Spring shoot")
    page.get_by_label("Description").fill("Studio portraits for the spring catalogue")
    page.get_by_label("Name").press("Enter")
    page.wait_for_url(re.compile(r".*/datasets/[^/]+$"))
    expect(page.locator("[data-ds-name]")).to_have_text("Spring shoot")
    return page.url.rsplit("/", 1)[1]


def _drop_folder(page: Page, shots: Path) -> None:
    page.evaluate(DROP_FOLDER_JS, ["[data-dropzone]", _folder()])
    expect(page.locator("[data-overall-text]")).to_contain_text("Done", timeout=30_000)
    expect(page.locator("[data-overall-text]")).to_contain_text("5 added · 2 not added")
    rejected = page.locator("[data-reject-list]")
    expect(rejected).to_contain_text("shoot/notes.md")
    expect(rejected).to_contain_text("not a PNG, JPEG or WebP")
    expect(rejected).to_contain_text("shoot/extra/broken.png")
    expect(page.locator(".cap-card")).to_have_count(5)
    expect(page.locator("[data-upload-row='shoot/extra/detail-1.png']")).to_contain_text("Added")
    expect(page.locator("[data-count-uncaptioned]")).to_have_text("4")  # look-0.txt applied
    snap(page, shots, "04-dataset-uploaded")


def _caption(page: Page, shots: Path) -> None:
    page.get_by_role("button", name=re.compile("^Uncaptioned")).click()
    expect(page.locator(".cap-card")).to_have_count(4)
    first = page.locator(".cap-card").first
    first.focus()
    page.keyboard.press("j")  # keyboard navigation between images
    page.keyboard.press("k")
    page.keyboard.press("Enter")  # edit the focused image's caption
    page.keyboard.type("red backdrop, smiling")
    page.keyboard.press("Enter")  # saves and moves to the next image
    page.keyboard.type("blue backdrop, profile")
    page.keyboard.press("Escape")
    expect(page.locator(".cap-card[data-saved]")).to_have_count(2)
    expect(page.locator("[data-count-uncaptioned]")).to_have_text("2")
    # Bulk: give the two uncaptioned images a caption, then find-replace across all five.
    page.get_by_text("Select all shown").click()
    page.get_by_label("Bulk operation").select_option("prepend")
    page.get_by_label("Text", exact=True).fill("zkw plain backdrop")
    page.get_by_role("button", name="Apply to 2 selected").click()
    expect(page.locator("[data-toasts]")).to_contain_text("Updated 2 captions")
    expect(page.locator("[data-count-uncaptioned]")).to_have_text("0")
    page.get_by_role("button", name=re.compile("^All")).click()
    page.get_by_label("Bulk operation").select_option("replace")
    page.get_by_label("Find").fill("backdrop")
    page.get_by_label("Replace with").fill("background")
    page.get_by_role("button", name="Apply to all 5").click()
    expect(page.locator("[data-toasts]")).to_contain_text("Updated 4 captions")
    snap(page, shots, "05-captions")
    page.reload()  # captions were saved server-side, without a page reload
    expect(page.locator(".cap-card")).to_have_count(5)
    expect(page.locator("[data-count-uncaptioned]")).to_have_text("0")
    captions = page.locator("[data-caption]").evaluate_all("els => els.map(e => e.value)")
    assert "red background, smiling" in captions, captions
    assert captions.count("zkw plain background") == 2, captions


def _create_job(page: Page, shots: Path) -> str:
    page.get_by_role("link", name="Train on this dataset").click()
    page.wait_for_url(re.compile(r".*/jobs/new\?dataset=.*"))
    expect(page.get_by_label("Dataset")).not_to_have_value("")
    page.get_by_label("Model name").fill("Spring portraits")
    page.get_by_label("Template").select_option("")
    page.get_by_label("Caption prefix").fill("zkw")
    page.get_by_label("Training steps").fill("4")
    page.get_by_label("Validation prompts").fill("zkw portrait, red backdrop")
    page.locator("[data-advanced] summary").click()
    page.get_by_label("Resolution").fill("64")
    page.get_by_label("LoRA rank").fill("0")  # invalid: the API's error shows by the field
    page.get_by_label("Save a checkpoint every").fill("2")
    page.get_by_label("Validate every").fill("2")
    page.get_by_label("Validation sampling steps").fill("2")
    page.get_by_label("Images per prompt").fill("2")
    page.get_by_role("button", name="Begin training").click()
    expect(page.locator("[data-error-for='advanced.rank']")).to_contain_text("must be at least 1")
    expect(page.get_by_label("LoRA rank")).to_have_attribute("aria-invalid", "true")
    snap(page, shots, "06-new-job-validation-error")
    page.get_by_label("LoRA rank").fill("4")
    page.get_by_role("button", name="Begin training").click()
    page.wait_for_url(re.compile(r".*/jobs/[^/]+$"))
    return page.url.rsplit("/", 1)[1]


def _watch_training(page: Page, shots: Path) -> None:
    expect(page.locator("[data-job-name]")).to_have_text("Spring portraits")
    expect(page.locator("[data-live-indicator]")).to_have_text("● Live")
    page.screenshot(path=str(shots / "07a-job-live.png"), full_page=True)  # SSE stays open
    expect(page.locator("[data-kv='percent']")).to_have_text("100%", timeout=150_000)
    expect(page.locator("[data-job-status]")).to_contain_text("Ready to finalize",
                                                            timeout=30_000)
    expect(page.locator("[data-job-bar]")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("[data-loss-chart] svg path.smooth")).to_be_visible()
    rows = page.locator(".val-table tbody tr")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("r => r.map(x => x.dataset.step)") == ["0", "2", "4"]
    snap(page, shots, "07-job-succeeded")


def _compare_and_finalize(page: Page, shots: Path) -> None:
    page.locator("[data-cell='2:0:0']").click()
    lightbox = page.locator("[data-lightbox]")
    expect(lightbox).to_be_visible()
    expect(lightbox.locator(".strip-item")).to_have_count(3)
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-lb-title]")).to_contain_text("Step 4")
    snap(page, shots, "08-compare-steps")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    page.get_by_label("Step 2", exact=True).check()
    page.get_by_label("Step 4", exact=True).check()
    expect(page.locator("[data-selected-text]")).to_have_text("2 steps selected: 2, 4")
    page.get_by_role("button", name="Finalize…").click()
    dialog = page.locator("[data-finalize-dialog]")
    expect(dialog.locator("[data-fin-keep]")).to_have_count(2)
    expect(dialog).to_contain_text("Deleted for good")
    expect(dialog).to_contain_text("step-0 baseline")
    snap(page, shots, "09-finalize-confirm")
    dialog.get_by_role("button", name="Finalize and delete the rest").click()
    expect(page.locator("[data-toasts]")).to_contain_text("2 models added to your library")
    expect(page.locator("[data-job-status]")).to_contain_text("Finalized")


def _library(page: Page, shots: Path) -> None:
    _nav(page, "Models")
    cards = page.locator("[data-model]")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("zkw")
    expect(cards.first).to_contain_text("LoRA")
    cards.first.get_by_role("button", name="Rename").click()
    page.get_by_label("Name", exact=True).fill("Spring portraits — keeper")
    page.get_by_label("Name", exact=True).press("Enter")
    expect(page.locator("[data-model-name]").first).to_have_text("Spring portraits — keeper")
    href = cards.first.locator("[data-download]").get_attribute("href")
    assert href and href.endswith("/download")
    snap(page, shots, "10-models")
    cards.first.get_by_role("button", name="Use", exact=True).click()
    usage = page.locator("[data-usage-dialog]")
    expect(usage.locator("[data-usage-trigger]")).to_contain_text("zkw")
    expect(usage.locator("[data-usage-client]")).to_have_count(4)
    expect(usage.locator("[data-usage-client='comfyui']")).to_contain_text("ComfyUI/models/loras/")
    snap(page, shots, "10b-use-this-model")
    usage.get_by_role("button", name="Close").click()
    expect(usage).not_to_be_visible()


def _api_keys(page: Page, server: Server, shots: Path) -> None:
    _nav(page, "Settings")
    expect(page.locator("[data-usage]")).to_contain_text("Storage")
    page.get_by_role("button", name="Create API key").click()
    page.get_by_label("Name", exact=True).fill("CI pipeline")
    page.get_by_label("Name", exact=True).press("Enter")
    key = page.locator("[data-key-value]")
    expect(key).to_have_text(re.compile(r"^atl_\S+$"))
    secret = key.inner_text()
    assert httpx.get(f"{server.base}/v1/datasets", timeout=10,
                     headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-toasts]")).to_contain_text("copied")
    snap(page, shots, "11-settings-key-created")
    page.get_by_role("button", name="I have saved it").click()
    row = page.locator("[data-key]", has_text="CI pipeline")
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("button", name="Revoke key").click()
    expect(row).to_contain_text("Revoked")
    assert httpx.get(f"{server.base}/v1/datasets", timeout=10,
                     headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    snap(page, shots, "12-settings")


def test_dashboard_journey(server: Server, browser: object, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})  # type: ignore[attr-defined]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.base}/")
        expect(page.get_by_role("heading", name="Sign in to your workspace")).to_be_visible()
        snap(page, shots, "01-login")
        _sign_in_and_switch_org(page, server, shots)
        _create_dataset(page, shots)
        snap(page, shots, "03-dataset-empty")
        _drop_folder(page, shots)
        _caption(page, shots)
        _create_job(page, shots)
        _watch_training(page, shots)
        page.goto(f"{server.base}/jobs")
        expect(page.locator("[data-job]")).to_have_count(1)
        snap(page, shots, "07b-jobs")
        page.go_back()
        _compare_and_finalize(page, shots)
        _library(page, shots)
        _api_keys(page, server, shots)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{server.base}/jobs")
        snap(page, shots, "13-phone-jobs")
        page.get_by_role("button", name="Open navigation").click()
        expect(page.locator("#sidebar")).to_be_in_viewport()
        page.wait_for_timeout(300)  # let the slide-in finish
        snap(page, shots, "14-phone-nav")
        assert not errors, errors
    except BaseException:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        raise
    finally:
        context.close()
