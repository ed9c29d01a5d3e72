"""The integrator CLI drives a whole training against a real `atelier up`: a folder of captioned
images -> dataset -> LoRA job watched live -> finalized -> a downloaded .safetensors."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.processes import ROOT, free_port, stop, wait_http


def _atelier(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("atelier")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "app.cli.main"]
    return subprocess.run([*argv, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`atelier up` on a fresh data dir; yields the client's environment (URL and API key)."""
    tmp = tmp_path_factory.mktemp("client-cli")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update(ATELIER_DATA_DIR=str(tmp / "data"), ATELIER_BASE_URL=base)
    log = tmp / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli.main", "up", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_http(f"{base}/readyz", timeout_s=240)
            key = re.search(r"API key:\s+(atl_\S+)", log.read_text())
            assert key, log.read_text()
            # The client's world: only the URL and the key, nothing of the server's settings.
            client_env = {k: v for k, v in env.items() if not k.startswith("ATELIER_")}
            client_env.update(ATELIER_URL=base, ATELIER_API_KEY=key.group(1))
            yield client_env
        finally:
            stop(proc)


def _folder(path: Path) -> Path:
    path.mkdir()
    for i in range(3):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (220, 60 * i, 40)).save(buf, format="PNG")
        (path / f"square{i}.png").write_bytes(buf.getvalue())
        (path / f"square{i}.txt").write_text(f"zkw a red square number {i}\n")
    return path


@pytest.mark.slow
def test_cli_trains_from_a_folder_to_a_downloaded_model(server: dict[str, str],
                                                        tmp_path: Path) -> None:
    env = server
    folder = _folder(tmp_path / "images")
    dataset_id = _ok(_atelier("datasets", "create", "squares", "--description", "cli", env=env))

    summary = json.loads(_ok(_atelier("datasets", "upload", dataset_id, str(folder), "--json",
                                      "--quiet", env=env)))
    assert len(summary["created"]) == 3 and summary["rejected"] == []
    assert summary["captions_applied"] == 3
    # Resumable: a second run finds everything there and sends nothing.
    again = json.loads(_ok(_atelier("datasets", "upload", dataset_id, str(folder), "--json",
                                    "--quiet", env=env)))
    assert again["created"] == [] and again["skipped"] == 3 and again["captions_applied"] == 0

    job_id = _ok(_atelier(
        "jobs", "create", "--dataset", dataset_id, "--name", "cli lora", "--type", "lora",
        "--base-model", "tiny-sd15", "--caption-prefix", "zkw", "--steps", "4",
        "--save-every", "2", "--validate-every", "2", "--prompt", "zkw a square",
        "--advanced", "resolution=64", "--advanced", '{"validation_inference_steps": 2}',
        "--idempotency-key", "cli-e2e-1", env=env))
    # Same idempotency key: the same job, nothing new queued.
    assert _ok(_atelier("jobs", "create", "--dataset", dataset_id, "--name", "cli lora",
                        "--type", "lora", "--base-model", "tiny-sd15", "--caption-prefix",
                        "zkw", "--steps", "4", "--save-every", "2", "--validate-every", "2",
                        "--prompt", "zkw a square", "--advanced", "resolution=64",
                        "--advanced", '{"validation_inference_steps": 2}',
                        "--idempotency-key", "cli-e2e-1", env=env)) == job_id

    watched = _atelier("jobs", "watch", job_id, env=env, timeout=400)
    assert watched.returncode == 0, (watched.stdout, watched.stderr)
    assert f"job {job_id} succeeded" in watched.stdout

    models = _ok(_atelier("jobs", "finalize", job_id, "--steps", "2,4", "--names",
                          "cli step 2,cli step 4", env=env)).splitlines()
    assert [line.split("\t")[1:] for line in models] == [["step 2", "cli step 2"],
                                                         ["step 4", "cli step 4"]]
    model_id = models[-1].split("\t")[0]

    path = Path(_ok(_atelier("models", "download", model_id, "--out", str(tmp_path / "dl"),
                             env=env)))
    assert path.parent == tmp_path / "dl" and path.suffix == ".safetensors"
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith("lora_unet_") or k.startswith("lora_te") for k in keys)
    assert any(k.startswith("lora_unet_") for k in keys)


@pytest.mark.slow
def test_cli_resumes_an_interrupted_upload(server: dict[str, str], tmp_path: Path) -> None:
    """What an interrupted run left in the dataset is not sent again; the rest is."""
    env = server
    folder = _folder(tmp_path / "images")
    dataset_id = _ok(_atelier("datasets", "create", "resume", env=env))
    done = folder / "square1.png"  # as if the first run got this far before being killed
    r = httpx.post(f"{env['ATELIER_URL']}/v1/datasets/{dataset_id}/items",
                   headers={"Authorization": f"Bearer {env['ATELIER_API_KEY']}"},
                   files=[("files", (done.name, done.read_bytes(), "image/png"))], timeout=30)
    assert r.status_code in (200, 201) and len(r.json()["created"]) == 1, r.text
    summary = json.loads(_ok(_atelier("datasets", "upload", dataset_id, str(folder), "--json",
                                      "--quiet", "--workers", "2", env=env)))
    assert sorted(i["filename"] for i in summary["created"]) == ["square0.png", "square2.png"]
    assert summary["skipped"] == 1 and summary["captions_applied"] == 3


@pytest.mark.slow
def test_cli_errors_are_clear_and_non_zero(server: dict[str, str], tmp_path: Path) -> None:
    env = server
    missing = _atelier("jobs", "watch", "job_doesnotexist", env=env)
    assert missing.returncode != 0 and "HTTP 404" in missing.stderr
    bad = _atelier("jobs", "create", "--dataset", "nope", "--name", "x", "--type", "lora",
                   "--base-model", "tiny-sd15", "--advanced", "no_such_option=1", env=env)
    assert bad.returncode != 0 and "HTTP 4" in bad.stderr, bad.stderr
    no_key = _atelier("datasets", "create", "x", env={**env, "ATELIER_API_KEY": ""})
    assert no_key.returncode != 0 and "ATELIER_API_KEY" in no_key.stderr
    wrong_key = _atelier("datasets", "create", "x", env={**env, "ATELIER_API_KEY": "atl_nope"})
    assert wrong_key.returncode != 0 and "HTTP 401" in wrong_key.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "fake.png").write_bytes(b"not an image at all")
    ds = _ok(_atelier("datasets", "create", "broken", env=env))
    up = _atelier("datasets", "upload", ds, str(tmp_path / "bad"), "--quiet", env=env)
    assert up.returncode == 1 and "rejected fake.png" in up.stdout, (up.stdout, up.stderr)


def test_advanced_options_and_event_stream_parsing() -> None:
    from app.cli.client import _parse_advanced
    from app.cli.client_watch import parse_sse

    assert _parse_advanced(("resolution=64", '{"optimizer": "AdamW", "seed": 1}',
                            "lr_scheduler=constant", "flip=true")) == {
        "resolution": 64, "optimizer": "AdamW", "seed": 1, "lr_scheduler": "constant",
        "flip": True}
    stream = ["retry: 2000", "", "id: 1", "event: progress", 'data: {"step": 2}', "",
              ": keep-alive", "", "event: status", 'data: {"status": "succeeded"}', ""]
    assert list(parse_sse(iter(stream))) == [("progress", {"step": 2}),
                                             ("status", {"status": "succeeded"})]
