"""Plain data passed between the job runner and the training library (no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TrainingExample:
    """One training image and its caption (None when the dataset has no caption for it)."""

    image_path: Path
    caption: str | None = None


@dataclass(frozen=True)
class Progress:
    """Progress of one finished optimizer step."""

    step: int
    total_steps: int
    loss: float
    lr: float
    images_per_second: float
    epoch: int
    seconds: float = 0.0
    """How long the step took (pauses for checkpoints and validation excluded)."""


@dataclass(frozen=True)
class ValidationImage:
    """A validation image saved as .webp; `seed` is fixed per (prompt_index, index)."""

    prompt: str
    prompt_index: int
    index: int
    seed: int
    path: Path


@dataclass
class TrainingResult:
    """What a `train()` call returns.

    `stopped` is True when `should_stop()` ended the run early; `files` are the user-facing
    files of the last checkpoint written (empty when stopped before any).
    """

    last_step: int
    stopped: bool = False
    files: list[Path] = field(default_factory=list)
    final_loss: float | None = None


@dataclass(frozen=True)
class ExportInfo:
    """What a checkpoint's files record about the run (metadata), beside the weights."""

    examples: tuple[TrainingExample, ...]
    base_model_name: str
    output_name: str
    mixed_precision: str  # what the run computed in: "no" (fp32), "fp16" or "bf16"
