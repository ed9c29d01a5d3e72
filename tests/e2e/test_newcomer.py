"""The newcomer path, on the embedded default exactly as `make run` starts it (no settings, a
port other than 8000): sign in with the printed demo password, drop a folder (one transfer
fails and is retried), train a LoRA from the quick-test template on the demo model, see the
phases and 100%, finalize two steps under typed names, download files named after them.

Prints the figure the issue sets a goal for: seconds from "Begin training" to 100%."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import ATELIER, DROP_FOLDER_JS, png_b64, snap
from tests.processes import ROOT, free_port, stop, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
JOB_GOAL_S = 120


@pytest.fixture(scope="module")
def newcomer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`atelier up --host 127.0.0.1 --port P` as `make run` runs it, in a fresh directory with
    no ATELIER_* settings at all (the data dir is ./.atelier there); yields (base, password)."""
    cwd = tmp_path_factory.mktemp("newcomer")
    port = free_port()
    assert port != 8000
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env["PYTHONPATH"] = str(ROOT)  # this tree's code, as an installed checkout would be
    log = cwd / "atelier-up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([ATELIER, "up", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/readyz", timeout_s=240)
            printed = log.read_text()
            found = re.search(r"demo@atelier\.local / (\S+)\s+\(shown once\)", printed)
            assert found, printed
            yield base, found.group(1)
        finally:
            stop(proc)


def _folder() -> dict[str, object]:
    png = {"type": "image/png"}
    files: list[dict[str, object]] = []
    for i in range(4):
        files.append({"name": f"tabby-{i}.png", "b64": png_b64(i, 96), **png})
        caption = f"zkw tabby cat, photo {i}".encode()
        files.append({"name": f"tabby-{i}.txt", "type": "text/plain",
                      "b64": base64.b64encode(caption).decode()})
    return {"name": "tabby", "children": files}


def _upload_with_one_failed_transfer(page: Page, base: str, shots: Path) -> None:
    puts: list[str] = []
    failed: list[str] = []

    def storage(route: Route) -> None:
        if route.request.method in ("PUT", "POST"):
            puts.append(route.request.url)
            if not failed:  # the first transfer breaks, as a flaky network would
                failed.append(route.request.url)
                route.abort("connectionreset")
                return
        route.continue_()

    page.route(re.compile(r".*/storage/.*"), storage)
    page.evaluate(DROP_FOLDER_JS, ["[data-dropzone]", _folder()])
    text = page.locator("[data-overall-text]")
    expect(text).to_contain_text("1 of 4 uploads failed", timeout=30_000)
    expect(text).to_contain_text("3 added")
    expect(page.locator("[data-upload-row][data-state='failed']")).to_have_count(1)
    bar = page.locator("[data-overall-bar]")
    assert int(bar.get_attribute("aria-valuenow") or "0") < 100  # it did not fill as if it worked
    retry = page.get_by_role("button", name="Retry failed")
    expect(retry).to_be_visible()
    snap(page, shots, "newcomer-01-upload-failed")
    retry.click()
    expect(text).to_contain_text("Done · 1 added", timeout=30_000)
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(retry).to_be_hidden()
    expect(page.locator(".cap-card")).to_have_count(4)
    expect(page.locator("[data-count-uncaptioned]")).to_have_text("0")  # .txt of the retried one
    # Presigned transfers went straight to storage on the port `up` listens on.
    assert len(puts) == 5 and all(u.startswith(f"{base}/storage/") for u in puts), puts
    snap(page, shots, "newcomer-02-upload-retried")


def _start_job(page: Page, shots: Path) -> float:
    page.get_by_role("link", name="Train on this dataset").click()
    page.wait_for_url(re.compile(r".*/jobs/new\?dataset=.*"))
    page.get_by_label("Model name").fill("Tabby")
    template = page.get_by_label("Template")
    quick = template.locator("option", has_text="quick test")
    template.select_option(quick.get_attribute("value"))
    expect(page.locator("#h-max_train_steps")).to_contain_text("trains 100 steps")
    expect(page.locator("#h-max_train_steps")).not_to_contain_text("2000")
    # An error about an option the form hides: named, in words, where it lives (opened).
    page.locator("[data-advanced] summary").click()
    page.get_by_label("Other options").fill('{"lr_warmup_steps": 500}')
    page.locator("[data-advanced] summary").click()  # closed again
    page.get_by_role("button", name="Begin training").click()
    error = page.locator("[data-error-for='advanced']")
    expect(error).to_contain_text("lr_warmup_steps")
    expect(error).to_contain_text("train at least 500 steps")
    expect(page.locator("[data-advanced]")).to_have_attribute("open", "")
    summary = page.locator("[data-form-error]")
    expect(summary).to_contain_text("Warm-up steps")
    for text in (error.inner_text(), summary.inner_text()):
        assert "body." not in text and "Value error" not in text, text
    snap(page, shots, "newcomer-03-form-error")
    page.get_by_label("Other options").fill("")
    page.get_by_role("button", name="Begin training").click()
    started = time.monotonic()
    page.wait_for_url(re.compile(r".*/jobs/[^/]+$"))
    return started


def _watch(page: Page, shots: Path, started: float) -> float:
    first_seen: dict[str, float] = {}  # phase -> seconds after "Begin training"
    percent = page.locator("[data-kv='percent']")
    deadline = started + 600
    while time.monotonic() < deadline and percent.inner_text() != "100%":
        phase = page.locator("[data-kv='phase']").inner_text().strip()
        if phase and phase != "—":
            first_seen.setdefault(re.sub(r"\s*\d+/\d+$", "", phase),
                                  round(time.monotonic() - started, 1))
        page.wait_for_timeout(150)
    at_100 = time.monotonic() - started
    expect(percent).to_have_text("100%")
    # The last step's checkpoint and validation images come after 100% of the steps.
    expect(page.locator("[data-job-status]")).to_contain_text("Ready to finalize",
                                                            timeout=300_000)
    took = time.monotonic() - started
    phases = set(first_seen)
    print(f"\nnewcomer job: 100% after {at_100:.1f} s, ready to finalize after {took:.1f} s "
          f"(goal {JOB_GOAL_S} s); phases first seen at (s): {first_seen}")
    snap(page, shots, "newcomer-04-job-done")
    assert "Training" in phases, phases
    assert phases & {"Caching latents", "Rendering step-0 images", "Loading the base model"}, phases
    return took


def _finalize_with_names(page: Page, shots: Path) -> None:
    page.get_by_label("Step 50", exact=True).check()
    page.get_by_label("Step 100", exact=True).check()
    page.get_by_role("button", name="Finalize…").click()
    dialog = page.locator("[data-finalize-dialog]")
    first = dialog.locator("[data-fin-name='50']")
    expect(first).to_have_value("Tabby · step 50")
    first.fill("Tabby LoRA v1")
    dialog.locator("[data-fin-name='100']").fill("Tabby LoRA v1")
    dialog.get_by_role("button", name="Finalize and delete the rest").click()
    expect(dialog.locator("[data-error-for='name-100']")).to_contain_text("already has this name")
    dialog.locator("[data-fin-name='100']").fill("Tabby LoRA v2 · step 100")
    snap(page, shots, "newcomer-05-finalize-names")
    dialog.get_by_role("button", name="Finalize and delete the rest").click()
    expect(page.locator("[data-toasts]")).to_contain_text("2 models added to your library")


def _downloads(page: Page, base: str, shots: Path) -> None:
    page.goto(f"{base}/models")
    cards = page.locator("[data-model]")
    expect(cards).to_have_count(2)
    expected = {"Tabby LoRA v1": "tabby-lora-v1.safetensors",
                "Tabby LoRA v2 · step 100": "tabby-lora-v2-step-100.safetensors"}
    for name, filename in expected.items():
        card = cards.filter(has=page.locator("[data-model-name]", has_text=name))
        with page.expect_download() as got:
            card.locator("[data-download]").click()
        assert got.value.suggested_filename == filename
    snap(page, shots, "newcomer-06-library")
    # Names are unique in the library: renaming onto a taken one says so by the field.
    cards.filter(has=page.locator("[data-model-name]", has_text="Tabby LoRA v1")).get_by_role(
        "button", name="Rename").click()
    page.get_by_label("Name", exact=True).fill("Tabby LoRA v2 · step 100")
    page.get_by_label("Name", exact=True).press("Enter")
    expect(page.locator("[data-rename-form] [data-error-for='name']")).to_contain_text(
        "already exists in your library")
    snap(page, shots, "newcomer-07-rename-clash")


def test_newcomer_path(newcomer_server: tuple[str, str], browser: object, shots: Path) -> None:
    base, password = newcomer_server
    context = browser.new_context(viewport={"width": 1366, "height": 900},  # type: ignore[attr-defined]
                                  accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{base}/")
        page.get_by_label("Email").fill("demo@atelier.local")
        page.get_by_label("Password").fill(password)
        page.get_by_label("Password").press("Enter")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/datasets")
        page.get_by_role("button", name="New dataset").click()
        page.get_by_label("Name").fill("Tabby photos")
        page.get_by_label("Name").press("Enter")
        page.wait_for_url(re.compile(r".*/datasets/[^/]+$"))
        _upload_with_one_failed_transfer(page, base, shots)
        started = _start_job(page, shots)
        took = _watch(page, shots, started)
        _finalize_with_names(page, shots)
        _downloads(page, base, shots)
        assert not errors, errors
        assert took < JOB_GOAL_S, f"the first job took {took:.0f} s; the goal is {JOB_GOAL_S} s"
    except BaseException:
        page.screenshot(path=str(shots / "newcomer-failure.png"), full_page=True)
        raise
    finally:
        context.close()
