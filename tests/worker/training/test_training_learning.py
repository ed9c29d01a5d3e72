"""On a learnable toy concept (red squares) the trained files lower the denoising loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from worker.training.config import parse_config
from worker.training.data import load_rgb
from worker.training.diffusers_loading import load_embedding_into_pipeline, load_lora_into_pipeline
from worker.training.run import run_training


@torch.no_grad()
def denoising_loss(pipe: Any, images: list[Path], prompt: str) -> float:
    """Mean epsilon-MSE over fixed noise and timesteps: lower = the model knows the images."""
    generator = torch.Generator().manual_seed(0)
    arrays = [np.asarray(load_rgb(p).resize((64, 64)), dtype=np.float32) for p in images]
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1
    latents = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
    embeds, _ = pipe.encode_prompt(prompt, "cpu", 1, False)
    scheduler = pipe.scheduler
    total = 0.0
    timesteps = [100, 300, 500, 700, 900]
    for t in timesteps:
        noise = torch.randn(latents.shape, generator=generator)
        step = torch.full((latents.shape[0],), t)
        noisy = scheduler.add_noise(latents, noise, step)
        pred = pipe.unet(noisy, step, encoder_hidden_states=embeds.expand(len(images), -1, -1))
        total += torch.nn.functional.mse_loss(pred.sample, noise).item()
    return total / len(timesteps)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "prompt", "overrides", "factor"),
    [
        ("lora", "sks a red square", {"learning_rate": 1e-2}, 0.97),
        # A random tiny UNet barely listens to its prompt (its one cross-attention level sees
        # 4x4 features since the VAE downsamples 8x), so the embedding can only help a bit.
        ("textual_inversion", "a photo of <red>", {"learning_rate": 5e-2}, 0.9999),
    ],
)
def test_loss_falls_on_a_learnable_concept(
    method: str,
    prompt: str,
    overrides: dict[str, Any],
    factor: float,
    tiny_models: dict[str, Path],
    toy_dataset: list[Any],
    make_config: Any,
    recorder: Any,
    tmp_path: Path,
) -> None:
    config = parse_config(
        make_config(
            method,
            "sd15",
            max_train_steps=20,
            save_every_n_steps=None,
            validate_every_n_steps=None,
            validation_prompts=[],
            min_snr_gamma=None,
            **overrides,
        )
    )
    source = tiny_models["sd15"]
    run_training(config, toy_dataset, recorder, model_source=str(source), output_dir=tmp_path)
    images = [e.image_path for e in toy_dataset]

    pipe = StableDiffusionPipeline.from_pretrained(
        source, safety_checker=None, requires_safety_checker=False
    )
    before = denoising_loss(pipe, images, prompt)
    for file in recorder.checkpoints[20]:
        if file.name == "lora.safetensors":
            load_lora_into_pipeline(pipe, file)
        else:
            load_embedding_into_pipeline(pipe, file, "<red>")
    after = denoising_loss(pipe, images, prompt)
    assert after < before * factor, f"loss did not fall: {before:.4f} -> {after:.4f}"

    if method == "lora":
        # The reported training loss trends down too (first vs last third).
        losses = [p.loss for p in recorder.progress]
        third = len(losses) // 3
        assert sum(losses[-third:]) < sum(losses[:third])
