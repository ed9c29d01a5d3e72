"""Progress reporting one step late, so reading the loss never stalls the GPU queue."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from worker.training.callbacks import TrainingCallbacks
from worker.training.types import Progress


@dataclass
class _Pending:
    step: int
    loss: torch.Tensor
    lr: float
    epoch: int
    seconds: float


class ProgressReporter:
    """Buffers the newest step's loss tensor and reports the previous one.

    By the time step N+1 is queued, step N's loss is (nearly) computed, so `.item()` costs
    almost nothing. images/s is measured between pushes, which the one-step-late sync keeps
    in step with the device.
    """

    def __init__(
        self, callbacks: TrainingCallbacks, total_steps: int, images_per_step: int
    ) -> None:
        self._callbacks = callbacks
        self._total = total_steps
        self._images_per_step = images_per_step
        self._pending: _Pending | None = None
        self._last_push = time.perf_counter()
        self.last_loss: float | None = None

    def restart_clock(self) -> None:
        """Exclude pauses (checkpoints, validation) from the throughput figure."""
        self._last_push = time.perf_counter()

    def push(self, step: int, loss: torch.Tensor, lr: float, epoch: int) -> None:
        now = time.perf_counter()
        seconds, self._last_push = now - self._last_push, now
        previous = self._pending
        self._pending = _Pending(step, loss.detach(), lr, epoch, seconds)
        if previous is not None:
            self._emit(previous)

    def flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._emit(pending)

    def _emit(self, pending: _Pending) -> None:
        loss = float(pending.loss.item())
        self.last_loss = loss
        self._callbacks.on_progress(
            Progress(
                step=pending.step,
                total_steps=self._total,
                loss=loss,
                lr=pending.lr,
                images_per_second=self._images_per_step / max(pending.seconds, 1e-9),
                epoch=pending.epoch,
                seconds=pending.seconds,
            )
        )
