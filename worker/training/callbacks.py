"""The callback interface through which a runner observes and steers a training (no torch).

The job runner subclasses `TrainingCallbacks` and overrides what it needs; every method has a
no-op default so a subclass stays small.
"""

from __future__ import annotations

from pathlib import Path

from worker.training.types import Progress, ValidationImage

PHASES = ("loading_model", "caching_latents", "rendering_step0", "training", "saving",
          "validating")
"""What a run reports through `on_phase`, in the order they happen (saving/validating repeat)."""


class TrainingCallbacks:
    """No-op callbacks; subclass and override."""

    def on_progress(self, progress: Progress) -> None:
        """Called once per optimizer step (reported one step late to avoid a GPU sync)."""

    def on_checkpoint(self, step: int, files: list[Path]) -> None:
        """User-facing files (LoRA and/or TI .safetensors) of the checkpoint at `step`."""

    def on_validation(self, step: int, images: list[ValidationImage]) -> None:
        """Validation images (.webp) generated at `step` (step 0 = before any training)."""

    def on_training_state(self, step: int, path: Path) -> None:
        """A resumable training state was saved in the directory `path`."""

    def on_phase(self, phase: str, done: int = 0, total: int = 0) -> None:
        """The run entered `phase` (one of PHASES) or advanced in it: `done` of `total` items
        (latent batches' images, validation images); 0 of 0 when it has no count."""

    def on_log(self, message: str) -> None:
        """A human-readable log line."""

    def should_stop(self) -> bool:
        """Checked before every step, between latent batches, between validation images and
        between their denoising steps; returning True ends the run within about one of those."""
        return False
