"""The full-stack files are valid, and the house rules on imports hold."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT


def _compose_cmd() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed (make test installs it)")


def test_docker_compose_config_validates() -> None:
    env = {**os.environ, "ATELIER_SECRET_KEY": "test-secret"}
    r = subprocess.run([*_compose_cmd(), "config"], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    for service in ("postgres", "redis", "minio", "minio-init", "migrate", "api", "scheduler",
                    "worker"):
        assert re.search(rf"^  {re.escape(service)}:", r.stdout, re.M), service
    assert "capabilities:" in r.stdout and "gpu" in r.stdout


def test_api_image_has_no_torch_and_worker_image_is_cuda() -> None:
    api_runs = [ln for ln in (ROOT / "Dockerfile.api").read_text().splitlines()
                if ln.startswith("RUN")]
    worker = (ROOT / "Dockerfile.worker").read_text()
    assert api_runs and not any("torch" in ln or "[worker]" in ln for ln in api_runs)
    assert "nvidia/cuda" in worker and "[worker]" in worker
    assert "onnxruntime-gpu" in worker  # the captioning taggers on the GPU, not the CPU


def _imports(folder: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in (ROOT / folder).rglob("*.py"):
        lines = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", path.read_text(), re.M)
        found[str(path.relative_to(ROOT))] = lines
    return found


def test_app_never_imports_torch() -> None:
    heavy = ("torch", "diffusers", "peft", "accelerate", "transformers")
    for path, modules in _imports("app").items():
        bad = [m for m in modules if m.split(".")[0] in heavy]
        assert not bad, f"{path} imports {bad}"


def test_training_library_is_pure() -> None:
    service = ("app", "celery", "sqlalchemy", "fastapi", "redis", "boto3", "httpx")
    for path, modules in _imports("worker/training").items():
        bad = [m for m in modules if m.split(".")[0] in service]
        assert not bad, f"{path} imports {bad}"
