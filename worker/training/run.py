"""Dispatch a training config to its method's `train()`."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from worker.training.callbacks import TrainingCallbacks
from worker.training.config import TrainingConfig
from worker.training.lora.config import LoraConfig
from worker.training.pivotal.config import PivotalConfig
from worker.training.textual_inversion.config import TextualInversionConfig
from worker.training.types import TrainingExample, TrainingResult

_METHODS = ((TextualInversionConfig, "textual_inversion"), (PivotalConfig, "pivotal"),
            (LoraConfig, "lora"))


def run_training(
    config: TrainingConfig,
    dataset: Sequence[TrainingExample],
    callbacks: TrainingCallbacks,
    *,
    model_source: str,
    output_dir: Path,
    output_name: str | None = None,
) -> TrainingResult:
    """Train whatever `config.type` asks for; see each method's `train()`.

    `output_name` (e.g. the job's name) is recorded in the files' metadata as their title.
    """
    for kind, method in _METHODS:
        if isinstance(config, kind):
            # Imported here so importing this module stays cheap until training starts.
            train = importlib.import_module(f"worker.training.{method}.train").train
            return train(config, dataset, callbacks, model_source=model_source,
                         output_dir=output_dir, output_name=output_name)
    raise TypeError(f"unsupported training config {type(config).__name__}")
