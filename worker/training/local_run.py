"""`atelier train CONFIG.yaml`: one training outside the service, with a progress bar.

The YAML holds the config fields plus `model:` (diffusers folder, .safetensors file, hub id in
the local cache, or `tiny` for a tiny random model) and `dataset:` (a folder of images with
same-name .txt captions, or with a data.jsonl of {"image", "text"} lines). Relative paths are
resolved against the YAML's folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from worker.training.callbacks import TrainingCallbacks
from worker.training.config import parse_config
from worker.training.types import Progress, TrainingExample, ValidationImage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def load_dataset_folder(folder: Path) -> list[TrainingExample]:
    """Examples from data.jsonl if present, else every image with its optional .txt caption."""
    manifest = folder / "data.jsonl"
    if manifest.exists():
        examples = []
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                examples.append(TrainingExample(folder / row["image"], row.get("text")))
        return examples
    examples = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            caption_file = path.with_suffix(".txt")
            caption = ""
            if caption_file.exists():
                caption = caption_file.read_text(encoding="utf-8").strip()
            examples.append(TrainingExample(path, caption or None))
    if not examples:
        raise ValueError(f"no images found in {folder}")
    return examples


class ProgressBarCallbacks(TrainingCallbacks):
    """Prints training to the terminal through a tqdm bar."""

    def __init__(self, total_steps: int) -> None:
        self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True)

    def on_progress(self, progress: Progress) -> None:
        self.bar.n = progress.step
        self.bar.set_postfix(
            loss=f"{progress.loss:.4f}",
            lr=f"{progress.lr:.2e}",
            img_s=f"{progress.images_per_second:.1f}",
        )

    def on_checkpoint(self, step: int, files: list[Path]) -> None:
        tqdm.write(f"step {step}: checkpoint {', '.join(str(f) for f in files)}")

    def on_validation(self, step: int, images: list[ValidationImage]) -> None:
        if images:
            tqdm.write(f"step {step}: {len(images)} validation images in {images[0].path.parent}")

    def on_log(self, message: str) -> None:
        tqdm.write(message)


def _resolve_model(model: str, base: Path, architecture: Any, out_dir: Path) -> str:
    if model == "tiny":
        from worker.training.tiny_models import build_tiny_model

        return str(build_tiny_model(out_dir / "tiny-base-model", architecture))
    candidate = base / model
    return str(candidate) if candidate.exists() else model


def run_config_file(config_path: Path, out_dir: Path) -> None:
    """Run the training described by `config_path`, writing everything into `out_dir`."""
    from worker.training.run import run_training

    config_path = Path(config_path)
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or "model" not in raw or "dataset" not in raw:
        raise ValueError(f"{config_path} needs `model:` and `dataset:` next to the config fields")
    model = str(raw.pop("model"))
    dataset_dir = config_path.parent / str(raw.pop("dataset"))
    if model == "tiny":
        from worker.training.tiny_models import TINY_RESOLUTION

        raw.setdefault("resolution", TINY_RESOLUTION)  # its native size, not SD's 512
    config = parse_config(raw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = _resolve_model(model, config_path.parent, config.architecture, out_dir)
    callbacks = ProgressBarCallbacks(config.max_train_steps)
    try:
        result = run_training(
            config,
            load_dataset_folder(dataset_dir),
            callbacks,
            model_source=source,
            output_dir=out_dir,
        )
    finally:
        callbacks.bar.close()
    print(f"done at step {result.last_step}: {', '.join(str(f) for f in result.files)}")
