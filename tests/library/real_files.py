"""Real add-on files for the tiny SD1.5 model, trained by the training library."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
TOKEN = "<sks>"
STEPS = (1, 2)


@dataclass
class RealFiles:
    base: Path
    lora: dict[int, bytes]  # step -> lora.safetensors
    embedding: dict[int, bytes]  # step -> embedding.safetensors


def _dataset(root: Path) -> list[object]:
    from PIL import Image

    from worker.training.types import TrainingExample

    examples: list[object] = []
    for i in range(2):
        path = root / f"img{i}.png"
        Image.new("RGB", (32, 32), (200, 30 * i, 40)).save(path)
        examples.append(TrainingExample(path, "a red cat"))
    return examples


def _train(root: Path, base: Path, config: dict[str, object]) -> dict[int, bytes]:
    from worker.training.callbacks import TrainingCallbacks
    from worker.training.config import parse_config
    from worker.training.run import run_training

    saved: dict[int, bytes] = {}

    class Keep(TrainingCallbacks):
        def on_checkpoint(self, step: int, files: list[Path]) -> None:
            saved[step] = files[0].read_bytes()

    common = {"architecture": "sd15", "resolution": 32, "max_train_steps": max(STEPS),
              "save_every_n_steps": 1, "validation_prompts": []}
    run_training(parse_config({**common, **config}), _dataset(root), Keep(),  # type: ignore[arg-type]
                 model_source=str(base), output_dir=root / str(config["type"]))
    assert set(saved) == set(STEPS), saved
    return saved


def build(root: Path) -> RealFiles:
    from worker.training.tiny_models import build_tiny_model

    base = build_tiny_model(root / "tiny-sd15", "sd15")
    lora = _train(root, base, {"type": "lora", "rank": 4, "caption_prefix": "sks"})
    embedding = _train(root, base, {"type": "textual_inversion", "placeholder_token": TOKEN,
                                    "initializer_token": "cat"})
    return RealFiles(base, lora, embedding)
