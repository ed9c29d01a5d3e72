"""Phases a run reports, and stopping inside each of them (latent caching, step-0 images)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.training.callbacks import PHASES
from worker.training.config import parse_config
from worker.training.run import run_training
from worker.training.tiny_models import TINY_RESOLUTION
from worker.training.types import TrainingExample


@dataclass
class PhaseRecorder:
    """Records phases; asks to stop once `stop_in` has been entered (after `stop_after` items)."""

    stop_in: str | None = None
    stop_after: int = 0
    phases: list[tuple[str, int, int]] = field(default_factory=list)
    validations: dict[int, Any] = field(default_factory=dict)
    steps: list[int] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    stop_asked_at: float | None = None

    def on_phase(self, phase: str, done: int = 0, total: int = 0) -> None:
        self.phases.append((phase, done, total))
        if phase == self.stop_in and done >= self.stop_after and self.stop_asked_at is None:
            self.stop_asked_at = time.monotonic()

    def on_progress(self, progress: Any) -> None:
        self.steps.append(progress.step)

    def on_validation(self, step: int, images: Any) -> None:
        self.validations[step] = images

    def on_checkpoint(self, step: int, files: Any) -> None: ...

    def on_training_state(self, step: int, path: Any) -> None: ...

    def on_log(self, message: str) -> None:
        self.logs.append(message)

    def should_stop(self) -> bool:
        return self.stop_asked_at is not None


def _dataset(directory: Path, n: int) -> list[TrainingExample]:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = directory / f"img-{i}.png"
        Image.new("RGB", (80, 72), (200, 20 + i, 30)).save(path)
        out.append(TrainingExample(path, "a red square"))
    return out


def _run(tiny_models: dict[str, Path], make_config: Any, data: list[TrainingExample],
         callbacks: PhaseRecorder, out: Path, **overrides: Any) -> Any:
    config = parse_config(make_config("lora", "sd15", **overrides))
    return run_training(config, data, callbacks,  # type: ignore[arg-type]
                        model_source=str(tiny_models["sd15"]), output_dir=out)


def test_phases_are_reported_in_order(tiny_models: dict[str, Path], make_config: Any,
                                      tmp_path: Path) -> None:
    rec = PhaseRecorder()
    result = _run(tiny_models, make_config, _dataset(tmp_path / "d", 10), rec, tmp_path / "o",
                  max_train_steps=4, save_every_n_steps=4, validate_every_n_steps=4)
    assert result.last_step == 4 and not result.stopped
    names = [p[0] for p in rec.phases]
    assert set(names) <= set(PHASES)
    firsts = list(dict.fromkeys(names))
    assert firsts == ["loading_model", "caching_latents", "rendering_step0", "training",
                      "saving", "validating"]
    # n/N counts: 10 images in batches of 8, then one image per prompt at step 0.
    assert [p for p in rec.phases if p[0] == "caching_latents"][-1] == ("caching_latents", 10, 10)
    assert [p for p in rec.phases if p[0] == "rendering_step0"][-1] == ("rendering_step0", 1, 1)


def test_stop_while_caching_latents_ends_before_training(
    tiny_models: dict[str, Path], make_config: Any, tmp_path: Path
) -> None:
    rec = PhaseRecorder(stop_in="caching_latents", stop_after=8)
    result = _run(tiny_models, make_config, _dataset(tmp_path / "d", 20), rec, tmp_path / "o",
                  max_train_steps=4)
    assert result.stopped and result.last_step == 0 and result.files == []
    caching = [p for p in rec.phases if p[0] == "caching_latents"]
    assert caching[-1][1] < 20, "it stopped between latent batches, not after all of them"
    assert rec.steps == [] and rec.validations == {}
    assert "rendering_step0" not in {p[0] for p in rec.phases}
    assert any("while caching latents" in line for line in rec.logs)


def test_stop_while_rendering_step0_images_is_prompt(
    tiny_models: dict[str, Path], make_config: Any, tmp_path: Path
) -> None:
    # Many slow images: without checks between images and denoising steps this takes minutes.
    rec = PhaseRecorder(stop_in="rendering_step0", stop_after=1)
    result = _run(tiny_models, make_config, _dataset(tmp_path / "d", 2), rec, tmp_path / "o",
                  max_train_steps=4, validation_prompts=["a photo"] * 16,
                  num_validation_images=8, validation_inference_steps=150,
                  resolution=2 * TINY_RESOLUTION)
    assert rec.stop_asked_at is not None
    took = time.monotonic() - rec.stop_asked_at
    assert result.stopped and result.last_step == 0
    assert rec.validations == {} and rec.steps == []
    assert took < 30, f"stopping during step-0 images took {took:.1f}s"
    rendered = [p for p in rec.phases if p[0] == "rendering_step0"]
    assert rendered[-1][1] < 128


@dataclass
class CountingStop(PhaseRecorder):
    """Asks to stop on the `stop_on_call`-th check once step-0 rendering started."""

    stop_on_call: int = 5
    calls: int = 0

    def should_stop(self) -> bool:
        if any(p[0] == "rendering_step0" for p in self.phases):
            self.calls += 1
        return self.calls >= self.stop_on_call


def test_stop_inside_one_image_interrupts_its_denoising(
    tiny_models: dict[str, Path], make_config: Any, tmp_path: Path
) -> None:
    rec = CountingStop()
    result = _run(tiny_models, make_config, _dataset(tmp_path / "d", 2), rec, tmp_path / "o",
                  max_train_steps=4, validation_prompts=["a photo"], num_validation_images=1,
                  validation_inference_steps=150)
    assert result.stopped and rec.validations == {}
    # One check before the image, one per denoising step until the stop, one after: without
    # the pipeline interrupt all 150 steps would run (and be checked).
    assert rec.calls <= rec.stop_on_call + 2, rec.calls
    assert not (tmp_path / "o" / "validation" / "step-000000" / "p0-0.webp").exists()
