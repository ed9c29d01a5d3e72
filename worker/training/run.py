"""Dispatch a training config to its method's `train()`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from worker.training.callbacks import TrainingCallbacks
from worker.training.config import TrainingConfig
from worker.training.lora.config import LoraConfig
from worker.training.pivotal.config import PivotalConfig
from worker.training.textual_inversion.config import TextualInversionConfig
from worker.training.types import TrainingExample, TrainingResult


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
    # Imported here so importing this module stays cheap until training actually starts.
    if isinstance(config, TextualInversionConfig):
        from worker.training.textual_inversion.train import train as train_ti

        return train_ti(
            config,
            dataset,
            callbacks,
            model_source=model_source,
            output_dir=output_dir,
            output_name=output_name,
        )
    if isinstance(config, PivotalConfig):
        from worker.training.pivotal.train import train as train_pivotal

        return train_pivotal(
            config,
            dataset,
            callbacks,
            model_source=model_source,
            output_dir=output_dir,
            output_name=output_name,
        )
    if isinstance(config, LoraConfig):
        from worker.training.lora.train import train as train_lora

        return train_lora(
            config,
            dataset,
            callbacks,
            model_source=model_source,
            output_dir=output_dir,
            output_name=output_name,
        )
    raise TypeError(f"unsupported training config {type(config).__name__}")
