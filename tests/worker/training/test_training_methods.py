"""Every method x architecture trains real steps; its files load through diffusers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diffusers import (
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from PIL import Image
from safetensors import safe_open

from worker.training.config import parse_config
from worker.training.diffusers_loading import load_embedding_into_pipeline, load_lora_into_pipeline
from worker.training.run import run_training
from worker.training.validation import render, validation_seed

METHODS = [
    (m, a) for m in ("lora", "dora", "textual_inversion", "pivotal") for a in ("sd15", "sdxl")
]
KOHYA_SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha", ".dora_scale")


def fresh_pipeline(model: Path, arch: str) -> Any:
    cls = StableDiffusionXLPipeline if arch == "sdxl" else StableDiffusionPipeline
    extra = {} if arch == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    pipe = cls.from_pretrained(model, **extra)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def as_webp_array(image: Image.Image, path: Path) -> np.ndarray:
    """Round-trip through the same lossy encoding the validation images get."""
    image.save(path, "WEBP", quality=90)
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)


def load_checkpoint(pipe: Any, files: list[Path], token: str | None) -> None:
    for file in files:
        if file.name == "lora_with_embedding.safetensors":
            continue  # the same two files in one (tests/worker/training/test_formats_bundle.py)
        if file.name == "lora.safetensors":
            load_lora_into_pipeline(pipe, file)
        else:
            assert token is not None
            load_embedding_into_pipeline(pipe, file, token)


def check_lora_file(path: Path, arch: str, dora: bool, rank: int) -> None:
    with safe_open(str(path), "pt") as handle:
        keys = list(handle.keys())
        metadata = handle.metadata()
        shapes = {k: handle.get_slice(k).get_shape() for k in keys}
    assert keys and all(k.startswith(("lora_unet_", "lora_te")) for k in keys)
    assert all(k.endswith(KOHYA_SUFFIXES) for k in keys)
    assert any("_attn2_to_k.lora_down.weight" in k for k in keys)
    assert metadata["ss_network_dim"] == str(rank)
    assert metadata["ss_base_model_version"] == ("sdxl_base_v1-0" if arch == "sdxl" else "sd_v1")
    scales = [k for k in keys if k.endswith(".dora_scale")]
    assert bool(scales) == dora
    for key in scales:
        # One magnitude per input column: (1, in) or (1, in, 1, 1), as A1111/InvokeAI need.
        down = shapes[key.replace(".dora_scale", ".lora_down.weight")]
        assert shapes[key] == [1, down[1], *[1] * (len(down) - 2)]


@pytest.mark.parametrize(("method", "arch"), METHODS)
def test_method_trains_and_checkpoint_loads_in_diffusers(
    method: str,
    arch: str,
    tiny_models: dict[str, Path],
    toy_dataset: list[Any],
    make_config: Any,
    recorder: Any,
    tmp_path: Path,
) -> None:
    config = parse_config(make_config(method, arch))
    out = tmp_path / "run"
    result = run_training(
        config, toy_dataset, recorder, model_source=str(tiny_models[arch]), output_dir=out
    )

    assert result.last_step == 4 and not result.stopped
    assert [p.step for p in recorder.progress] == [1, 2, 3, 4]
    assert all(math.isfinite(p.loss) and p.total_steps == 4 for p in recorder.progress)
    assert all(p.images_per_second > 0 and p.lr > 0 for p in recorder.progress)
    assert sorted(recorder.checkpoints) == [2, 4] and recorder.states == [2, 4]
    assert (out / "state" / "meta.json").exists()
    assert sorted(recorder.validations) == [0, 4]
    before, after = recorder.validations[0][0], recorder.validations[4][0]
    assert before.seed == after.seed == validation_seed(config.seed, 0, 0)
    assert after.path == out / "validation" / "step-000004" / "p0-0.webp"
    assert after.path.exists() and before.path.exists()

    files = recorder.checkpoints[4]
    assert result.files == files
    assert all(f.parent == out / "checkpoints" / "step-000004" and f.exists() for f in files)
    expected = {"lora": 1, "dora": 1, "textual_inversion": 1, "pivotal": 3}[method]
    assert len(files) == expected
    if method in ("lora", "dora", "pivotal"):
        check_lora_file(files[0], arch, dora=method == "dora", rank=4)

    pipe = fresh_pipeline(tiny_models[arch], arch)
    prompt = config.validation_prompts[0]
    base = as_webp_array(render(pipe, config, prompt, before.seed, pipe.dtype), tmp_path / "b.webp")
    token = getattr(config, "placeholder_token", None)
    load_checkpoint(pipe, files, token)
    loaded = as_webp_array(
        render(pipe, config, prompt, after.seed, pipe.dtype), tmp_path / "l.webp"
    )
    validation = np.asarray(Image.open(after.path).convert("RGB"), dtype=np.float32)

    # The trained file changes the output, and the validation image is what a user gets.
    change = np.abs(loaded - base).mean()
    mismatch = np.abs(loaded - validation).mean()
    assert change > 1.0, f"loading the checkpoint changed nothing ({change:.3f})"
    # Under 1/255 on average: the 8x tiny VAE's deeper decoder amplifies DoRA's float noise.
    assert mismatch < max(0.1 * change, 1.0), f"validation differs from load ({mismatch:.3f})"


def test_dora_file_also_loads_with_plain_load_lora_weights(
    tiny_models: dict[str, Path],
    toy_dataset: list[Any],
    make_config: Any,
    recorder: Any,
    tmp_path: Path,
) -> None:
    """diffusers drops kohya dora_scale with a warning, but the file still loads."""
    config = parse_config(make_config("dora", "sd15", max_train_steps=2, validation_prompts=[]))
    run_training(
        config, toy_dataset, recorder, model_source=str(tiny_models["sd15"]), output_dir=tmp_path
    )
    pipe = fresh_pipeline(tiny_models["sd15"], "sd15")
    pipe.load_lora_weights(str(recorder.checkpoints[2][0]))
    assert recorder.validations == {}
