"""The training loop every method shares: setup, resume, steps, checkpoints, validation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers.models.attention_processor import AttnProcessor

from worker.training.callbacks import TrainingCallbacks
from worker.training.checkpointing import (
    load_training_state,
    restore_rng,
    save_training_state,
)
from worker.training.common_config import CommonTrainingConfig
from worker.training.data import TrainingData
from worker.training.latents import LatentEncoder
from worker.training.method import TrainingMethod
from worker.training.model_loading import BaseModelParts, freeze, load_base_model
from worker.training.noise import step_generator
from worker.training.optim import build_lr_scheduler, build_optimizer
from worker.training.progress import ProgressReporter
from worker.training.runtime import (
    compile_requested,
    enable_fast_math,
    fit_cpu_threads,
    pick_device,
    seed_everything,
    use_channels_last,
    weight_dtype,
)
from worker.training.text_encoding import PromptEncoder
from worker.training.train_step import StepContext, batch_loss, precompute_latents
from worker.training.types import ExportInfo, TrainingExample, TrainingResult
from worker.training.validation import Validator


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / "checkpoints" / f"step-{step:06d}"


def _place_models(parts: BaseModelParts, device: torch.device, dtype: torch.dtype) -> None:
    """Freeze everything and move it to the device in the frozen-weight dtype."""
    for module in (parts.unet, parts.vae, *parts.text_encoders):
        freeze(module)
    # SDXL's VAE overflows in fp16; it stays in fp32 there.
    vae_dtype = torch.float32 if dtype == torch.float16 and parts.architecture == "sdxl" else dtype
    placements = [(parts.unet, dtype), (parts.vae, vae_dtype)]
    placements += [(encoder, dtype) for encoder in parts.text_encoders]
    for module, module_dtype in placements:
        module.to(device)
        if module_dtype != torch.float32:
            module.to(module_dtype)
    parts.vae.eval()
    for encoder in parts.text_encoders:
        encoder.eval()


def _configure_speed(
    parts: BaseModelParts, config: CommonTrainingConfig, device: torch.device
) -> None:
    use_channels_last(device, parts.unet, parts.vae)
    if not config.use_sdpa:
        # diffusers uses SDPA by default; the classic processor is the slow, explicit fallback.
        parts.unet.set_attn_processor(AttnProcessor())
        parts.vae.set_attn_processor(AttnProcessor())
    if config.gradient_checkpointing:
        parts.unet.enable_gradient_checkpointing()
        if config.text_encoder_trained():
            for encoder in parts.text_encoders:
                encoder.gradient_checkpointing_enable()
    parts.unet.train()
    if compile_requested(device):
        # In place (nn.Module.compile): the module, its adapters and state-dict keys stay the
        # same objects, so exports and validation need not know.
        parts.unet.compile()


class _Stopped(Exception):
    """`should_stop()` asked to stop inside a phase (latent caching, validation)."""


class TrainingRun:
    """One call of a method's `train()`; small methods, state kept on the instance."""

    def __init__(
        self,
        method: TrainingMethod,
        dataset: Sequence[TrainingExample],
        callbacks: TrainingCallbacks,
        model_source: str,
        output_dir: Path,
        output_name: str | None = None,
    ) -> None:
        self.method = method
        self.config = method.config
        self.dataset = list(dataset)
        self.callbacks = callbacks
        self.model_source = model_source
        self.output_dir = Path(output_dir)
        self.device = pick_device()
        self.dtype = weight_dtype(self.config, self.device)
        self.last_files: list[Path] = []
        self._step = 0  # the last finished step, for a stop inside a phase
        self._loss: float | None = None
        self.output_name = output_name or f"atelier-{self.config.type}"

    # --- setup ----------------------------------------------------------------------------
    def _setup(self) -> int:
        config = self.config
        enable_fast_math(self.device)
        seed_everything(config.seed)
        self.callbacks.on_phase("loading_model")
        self.callbacks.on_log(f"loading base model {self.model_source} ({config.architecture})")
        self.parts = load_base_model(self.model_source, config.architecture)
        _place_models(self.parts, self.device, self.dtype)
        fit_cpu_threads(self.device, self.parts.unet)
        groups = self.method.setup(self.parts)
        _configure_speed(self.parts, config, self.device)
        self.params = [p for group in groups for p in group["params"]]
        self.optimizer = build_optimizer(groups, config, self.device)
        self.scheduler = build_lr_scheduler(self.optimizer, config)
        use_scaler = self.device.type == "cuda" and self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        start_step = self._resume()
        self.data = TrainingData(self.dataset, config, self.method.caption_recipe())
        self.ctx = StepContext(
            config=config,
            parts=self.parts,
            data=self.data,
            latents=LatentEncoder(self.parts.vae, self.device, self.dtype),
            prompts=PromptEncoder(self.parts.tokenizers, self.parts.text_encoders, self.device),
            device=self.device,
            dtype=self.dtype,
            use_latent_cache=config.vae_cache_enabled(),
        )
        if self.ctx.use_latent_cache and start_step < config.max_train_steps:
            done = precompute_latents(
                self.ctx,
                self.callbacks.on_log,
                self.callbacks.should_stop,
                lambda n, total: self.callbacks.on_phase("caching_latents", n, total),
            )
            if not done:
                raise _Stopped("while caching latents")
        self.validator = Validator(self.parts, config, self.output_dir, self.dtype)
        return start_step

    def _resume(self) -> int:
        state = load_training_state(self.output_dir, self.device)
        if state is None:
            return 0
        self.method.load_trainable_state(state.trainable)
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        if self.scaler is not None and state.grad_scaler is not None:
            self.scaler.load_state_dict(state.grad_scaler)
        restore_rng(state)
        self.callbacks.on_log(f"resumed from the saved state at step {state.step}")
        if state.step >= self.config.max_train_steps:
            self.last_files = sorted(checkpoint_dir(self.output_dir, state.step).glob("*"))
        return state.step

    # --- saving ---------------------------------------------------------------------------
    def _checkpoint(self, step: int) -> None:
        self.callbacks.on_phase("saving")
        directory = checkpoint_dir(self.output_dir, step)
        files = self.method.export(step, directory, self._export_info())
        self.last_files = files
        self.callbacks.on_checkpoint(step, files)

    def _export_info(self) -> ExportInfo:
        precision = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.dtype, "no")
        return ExportInfo(
            examples=tuple(self.dataset),
            base_model_name=Path(self.model_source).name,
            output_name=self.output_name,
            mixed_precision=precision,
        )

    def _validate(self, step: int) -> None:
        if not self.validator.enabled():
            return
        phase = "rendering_step0" if step == 0 else "validating"
        images = self.validator.run(
            step,
            self.callbacks.should_stop,
            lambda n, total: self.callbacks.on_phase(phase, n, total),
        )
        if images is None:
            raise _Stopped(f"while rendering the step-{step} images")
        self.callbacks.on_validation(step, images)

    def _save_state(self, step: int) -> None:
        path = save_training_state(
            self.output_dir,
            step,
            self.method.trainable_state(),
            self.optimizer,
            self.scheduler,
            self.scaler,
        )
        self.callbacks.on_training_state(step, path)

    def _is_due(self, step: int, every: int | None) -> bool:
        return step == self.config.max_train_steps or (every is not None and step % every == 0)

    # --- the loop -------------------------------------------------------------------------
    def _text_cached(self, step: int) -> bool:
        if self.config.cache_text_encoder_outputs is False:
            return False
        return self.method.text_encoders_frozen(step)

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.params if p.grad is not None], self.config.max_grad_norm
            )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _train_step(self, step: int) -> tuple[torch.Tensor, int]:
        """Forward/backward of every accumulated batch, then one optimizer step."""
        accumulation = self.config.gradient_accumulation_steps
        text_cached = self._text_cached(step)
        total = torch.zeros((), device=self.device)
        epoch = 0
        for micro in range(accumulation):
            epoch, samples = self.data.samples((step - 1) * accumulation + micro)
            generator = step_generator(self.config.seed, step, micro, self.device)
            loss = batch_loss(self.ctx, samples, generator, text_cached)
            scaled = loss / accumulation
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            total += loss.detach()
        self._optimizer_step()
        return total / accumulation, epoch

    def run(self) -> TrainingResult:
        try:
            return self._run()
        except _Stopped as stopped:
            self.callbacks.on_log(f"stopped on request {stopped}")
            return TrainingResult(
                last_step=self._step, stopped=True, files=self.last_files, final_loss=self._loss
            )

    def _run(self) -> TrainingResult:
        start_step = self._setup()
        self._step = start_step
        config = self.config
        total_steps = config.max_train_steps
        if start_step >= total_steps:
            return TrainingResult(last_step=start_step, files=self.last_files)
        if start_step == 0:
            self._validate(0)
        images_per_step = config.train_batch_size * config.gradient_accumulation_steps
        reporter = ProgressReporter(self.callbacks, total_steps, images_per_step)
        self.callbacks.on_phase("training")
        step = start_step
        started = time.perf_counter()
        for next_step in range(start_step + 1, total_steps + 1):
            if self.callbacks.should_stop():
                reporter.flush()
                self.callbacks.on_log(f"stopped on request after step {step}")
                return TrainingResult(
                    last_step=step,
                    stopped=True,
                    files=self.last_files,
                    final_loss=reporter.last_loss,
                )
            step = next_step
            self.method.prepare_step(step)
            loss, epoch = self._train_step(step)
            reporter.push(step, loss, self.scheduler.get_last_lr()[0], epoch)
            self._step, self._loss = step, reporter.last_loss
            self._after_step(step, reporter)
        elapsed = time.perf_counter() - started
        self.callbacks.on_log(f"trained {step - start_step} steps in {elapsed:.1f}s")
        return TrainingResult(last_step=step, files=self.last_files, final_loss=reporter.last_loss)

    def _after_step(self, step: int, reporter: ProgressReporter) -> None:
        save = self._is_due(step, self.config.save_every_n_steps)
        validate = self._is_due(step, self.config.validate_every_n_steps)
        if not (save or validate):
            return
        reporter.flush()
        self._loss = reporter.last_loss
        if save:
            self._checkpoint(step)
        if validate:
            self._validate(step)
        if save:
            self._save_state(step)
        if step < self.config.max_train_steps:
            self.callbacks.on_phase("training")
        reporter.restart_clock()


def run_method(
    method: TrainingMethod,
    dataset: Sequence[TrainingExample],
    callbacks: TrainingCallbacks,
    *,
    model_source: str,
    output_dir: Path,
    output_name: str | None = None,
) -> TrainingResult:
    """Train `method` on `dataset`, resuming from `output_dir/state/` if it holds a state."""
    return TrainingRun(method, dataset, callbacks, model_source, output_dir, output_name).run()


def group(params: list[torch.nn.Parameter], lr: float, name: str) -> dict[str, Any]:
    """An optimizer parameter group."""
    return {"params": params, "lr": lr, "name": name}
