"""`make run` on a fresh data dir: the embedded default (SQLite, local storage, Celery over
SQLite) serves /readyz green and trains a LoRA end to end through the REST API."""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.processes import ROOT, free_port, stop, wait_http

pytestmark = pytest.mark.slow


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (220, 30 * i, 40)).save(buf, format="PNG")
    return buf.getvalue()


def test_make_run_serves_and_trains_on_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(tmp_path / "data"), ATELIER_BASE_URL=f"http://127.0.0.1:{port}")
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            ready = wait_http(f"{base}/readyz", timeout_s=240)
            assert ready.json() == {"status": "ready"}
            printed = log.read_text()
            key = re.search(r"API key:\s+(atl_\S+)", printed)
            assert key, printed
            # No default password: the random one printed once is the way in.
            password = re.search(r"demo@atelier\.local / (\S+)\s+\(shown once\)", printed)
            assert password, printed
            login = httpx.post(f"{base}/v1/auth/login", json={
                "email": "demo@atelier.local", "password": password.group(1)})
            assert login.status_code == 200, login.text
            _train_through_the_api(base, {"Authorization": f"Bearer {key.group(1)}"})
        finally:
            stop(proc)
    assert (tmp_path / "data" / "atelier.db").exists()
    assert (tmp_path / "data" / "broker.db").exists()


def _train_through_the_api(base: str, auth: dict[str, str]) -> None:
    with httpx.Client(base_url=base, headers=auth, timeout=60) as c:
        assert c.get("/v1/base-models").json()[0]["key"] == "tiny-sd15"
        ds = c.post("/v1/datasets", json={"name": "squares"}).json()
        files = [("files", (f"{i}.png", _png(i), "image/png")) for i in range(3)]
        up = c.post(f"/v1/datasets/{ds['id']}/items", files=files)
        assert up.status_code in (200, 201), up.text
        assert len(up.json()["created"]) == 3
        job = c.post("/v1/jobs", json={
            "name": "embedded", "dataset_id": ds["id"], "type": "lora", "base_model": "tiny-sd15",
            "caption_prefix": "zkw", "max_train_steps": 4, "save_every_n_steps": 2,
            "validate_every_n_steps": 2, "validation_prompts": ["zkw"],
            "advanced": {"resolution": 64, "validation_inference_steps": 2},
        })
        assert job.status_code == 201, job.text
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = c.get(f"/v1/jobs/{job.json()['id']}").json()
            if state["status"] in ("succeeded", "failed"):
                break
            time.sleep(1)
        assert state["status"] == "succeeded", (state, c.get(
            f"/v1/jobs/{job.json()['id']}/logs").text[-2000:])
        ckpts = c.get(f"/v1/jobs/{job.json()['id']}/checkpoints").json()
        assert [x["step"] for x in ckpts] == [0, 2, 4]
        # Local storage serves the presigned URLs itself.
        img = c.get(ckpts[-1]["validation_images"][0]["url"])
        assert img.status_code == 200 and img.content[:4] == b"RIFF"
