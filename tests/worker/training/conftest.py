"""Fixtures for the training library: tiny models (built once), toy datasets, recorders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from worker.training.callbacks import TrainingCallbacks
from worker.training.types import Progress, TrainingExample, ValidationImage

TINY_RES = 64
RED_SHADES = [(200, 30, 30), (190, 40, 20), (215, 25, 35), (180, 35, 30)]


@dataclass
class RecordingCallbacks(TrainingCallbacks):
    """Records every callback; can stop or raise after a given step."""

    stop_after: int | None = None
    raise_after: int | None = None
    progress: list[Progress] = field(default_factory=list)
    checkpoints: dict[int, list[Path]] = field(default_factory=dict)
    validations: dict[int, list[ValidationImage]] = field(default_factory=dict)
    states: list[int] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def on_progress(self, progress: Progress) -> None:
        self.progress.append(progress)
        if self.raise_after is not None and progress.step >= self.raise_after:
            raise RuntimeError("simulated worker crash")

    def on_checkpoint(self, step: int, files: list[Path]) -> None:
        self.checkpoints[step] = files

    def on_validation(self, step: int, images: list[ValidationImage]) -> None:
        self.validations[step] = images

    def on_training_state(self, step: int, path: Path) -> None:
        self.states.append(step)

    def on_log(self, message: str) -> None:
        self.logs.append(message)

    def should_stop(self) -> bool:
        return bool(
            self.stop_after is not None
            and self.progress
            and self.progress[-1].step >= self.stop_after
        )


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny SD1.5 and SDXL diffusers folders, built once per session."""
    from worker.training.tiny_models import build_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build_tiny_model(root / arch, arch) for arch in ("sd15", "sdxl")}


def make_toy_dataset(directory: Path, captions: bool = True) -> list[TrainingExample]:
    """A learnable concept: red squares (in non-square frames to exercise resizing)."""
    directory.mkdir(parents=True, exist_ok=True)
    examples = []
    for i, colour in enumerate(RED_SHADES):
        path = directory / f"red-{i}.png"
        Image.new("RGB", (40 + 4 * i, 36), colour).save(path)
        examples.append(TrainingExample(path, "a red square" if captions else None))
    return examples


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory: pytest.TempPathFactory) -> list[TrainingExample]:
    return make_toy_dataset(tmp_path_factory.mktemp("toy-data"))


def base_config(method: str, arch: str, **overrides: Any) -> dict[str, Any]:
    """A fast config for tiny models; `overrides` win."""
    config: dict[str, Any] = {
        "type": method,
        "architecture": arch,
        "resolution": TINY_RES,
        "max_train_steps": 4,
        "train_batch_size": 2,
        "save_every_n_steps": 2,
        "validate_every_n_steps": 4,
        "validation_inference_steps": 2,
        "num_validation_images": 1,
        "seed": 7,
    }
    if method in ("lora", "dora", "pivotal"):
        config.update(rank=4, alpha=4, learning_rate=1e-2)
    if method == "lora" or method == "dora":
        config["caption_prefix"] = "sks"
        config["validation_prompts"] = ["sks a red square"]
    if method in ("textual_inversion", "pivotal"):
        config.update(placeholder_token="<red>", num_vectors=2, initializer_token="a")
        config["validation_prompts"] = ["a photo of <red>"]
    if method == "textual_inversion":
        config["learning_rate"] = 5e-2
    if method == "pivotal":
        config["embedding_learning_rate"] = 5e-2
    config.update(overrides)
    return config


@pytest.fixture
def recorder() -> RecordingCallbacks:
    return RecordingCallbacks()


@pytest.fixture(scope="session")
def recording_callbacks() -> type[RecordingCallbacks]:
    return RecordingCallbacks


@pytest.fixture(scope="session")
def make_config() -> Any:
    """`make_config(method, arch, **overrides)` -> a fast config dict for tiny models."""
    return base_config


@pytest.fixture(scope="session")
def make_dataset() -> Any:
    """`make_dataset(directory, captions=True)` -> toy red-square examples."""
    return make_toy_dataset
