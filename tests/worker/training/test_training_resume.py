"""Kill-and-resume reaches the same weights; cancel stops within one step."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from worker.training.config import parse_config
from worker.training.run import run_training

RESUME_CASES = [
    ("lora", "sd15", {"train_text_encoder": True, "random_flip": True, "caption_dropout": 0.3}),
    ("pivotal", "sdxl", {"embedding_train_fraction": 0.5, "gradient_accumulation_steps": 2}),
    ("textual_inversion", "sd15", {"optimizer": "prodigy", "learning_rate": 1.0}),
]


def _config(make_config: Any, method: str, arch: str, extra: dict[str, Any]) -> Any:
    return parse_config(
        make_config(
            method,
            arch,
            max_train_steps=6,
            save_every_n_steps=2,
            validate_every_n_steps=None,
            validation_prompts=[],
            lr_scheduler="cosine",
            lr_warmup_steps=1,
            **extra,
        )
    )


def _final_state(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "state" / "trainable.safetensors"))


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "arch", "extra"), RESUME_CASES)
def test_crash_then_resume_matches_uninterrupted_run(
    method: str,
    arch: str,
    extra: dict[str, Any],
    tiny_models: dict[str, Path],
    toy_dataset: list[Any],
    make_config: Any,
    recording_callbacks: Any,
    tmp_path: Path,
) -> None:
    config = _config(make_config, method, arch, extra)
    source = str(tiny_models[arch])

    straight = tmp_path / "straight"
    run_training(
        config, toy_dataset, recording_callbacks(), model_source=source, output_dir=straight
    )

    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated worker crash"):
        run_training(
            config,
            toy_dataset,
            recording_callbacks(raise_after=3),
            model_source=source,
            output_dir=crashed,
        )
    # The runner restores only the state dir onto a fresh worker.
    resumed = tmp_path / "resumed"
    shutil.copytree(crashed / "state", resumed / "state")
    callbacks = recording_callbacks()
    result = run_training(config, toy_dataset, callbacks, model_source=source, output_dir=resumed)

    assert result.last_step == 6 and not result.stopped
    assert callbacks.progress[0].step == 3  # resumed after the state of step 2
    assert sorted(callbacks.checkpoints) == [4, 6]
    assert any("resumed from the saved state at step 2" in m for m in callbacks.logs)
    _assert_same(_final_state(straight), _final_state(resumed))
    for name in ("lora.safetensors", "embedding.safetensors"):
        a = straight / "checkpoints" / "step-000006" / name
        if a.exists():
            _assert_same(load_file(str(a)), load_file(str(resumed / a.relative_to(straight))))


def test_cancel_stops_within_one_step_and_resumes(
    tiny_models: dict[str, Path],
    toy_dataset: list[Any],
    make_config: Any,
    recording_callbacks: Any,
    tmp_path: Path,
) -> None:
    config = _config(make_config, "lora", "sd15", {})
    source = str(tiny_models["sd15"])
    callbacks = recording_callbacks(stop_after=3)
    result = run_training(config, toy_dataset, callbacks, model_source=source, output_dir=tmp_path)

    assert result.stopped
    assert 3 <= result.last_step <= 4  # asked to stop once step 3 was reported
    assert callbacks.progress[-1].step == result.last_step
    last_saved = max(callbacks.states)
    assert result.files == callbacks.checkpoints[last_saved]

    again = recording_callbacks()
    finished = run_training(config, toy_dataset, again, model_source=source, output_dir=tmp_path)
    assert finished.last_step == 6 and again.progress[0].step == last_saved + 1

    # Running a finished job again is a no-op that returns the last checkpoint.
    done = run_training(
        config, toy_dataset, recording_callbacks(), model_source=source, output_dir=tmp_path
    )
    assert done.last_step == 6 and done.files and all(f.exists() for f in done.files)
