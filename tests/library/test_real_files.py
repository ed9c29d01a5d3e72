"""Finalized files download and load through diffusers onto the tiny base model."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.storage.base import Storage
from tests.conftest import Tenant
from tests.library.helpers import fetch, keys_under, make_job
from tests.library.real_files import TOKEN, RealFiles, build


@pytest.fixture(scope="session")
def real_files(tmp_path_factory: pytest.TempPathFactory) -> RealFiles:
    return build(tmp_path_factory.mktemp("real-files"))


def test_downloaded_pivotal_files_load_through_diffusers(
    api: TestClient, storage: Storage, tenant: Tenant, real_files: RealFiles, tmp_path: Path
) -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    files = {s: {"lora.safetensors": real_files.lora[s],
                 "embedding.safetensors": real_files.embedding[s]} for s in real_files.lora}
    fx = make_job(storage, tenant.org_id, steps=sorted(files), type="pivotal", files=files,
                  config={"type": "pivotal", "placeholder_token": TOKEN, "caption_prefix": None})
    r = api.post(f"/v1/jobs/{fx.job_id}/finalize", json={"steps": [2]}, headers=tenant.auth)
    assert r.status_code == 200, r.text
    (model,) = r.json()["models"]
    assert model["trigger"] == TOKEN and keys_under(storage, fx.prefix) == []

    paths = {}
    for name in ("lora.safetensors", "embedding.safetensors"):
        redirect = api.get(f"/v1/models/{model['id']}/download?file={name}",
                           headers=tenant.auth, follow_redirects=False)
        assert redirect.status_code == 302
        data = fetch(api, redirect.headers["location"])
        assert data == files[2][name]  # the chosen step's file, byte for byte
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)

    pipe = StableDiffusionPipeline.from_pretrained(str(real_files.base))
    pipe.load_lora_weights(str(paths["lora.safetensors"]))
    pipe.load_textual_inversion(str(paths["embedding.safetensors"]), token=TOKEN)
    assert TOKEN in pipe.tokenizer.get_vocab()
    image = pipe(f"a photo of {TOKEN}", num_inference_steps=1, height=32, width=32,
                 output_type="np", generator=torch.Generator().manual_seed(0)).images[0]
    assert image.shape == (32, 32, 3)
