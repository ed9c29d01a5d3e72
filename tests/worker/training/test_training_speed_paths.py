"""The engine's fast paths change speed only: same numbers on CPU, off where they do not pay."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from worker.training.runtime import (
    COMPILE_ENV,
    as_channels_last,
    channels_last_pays,
    compile_requested,
    use_channels_last,
)


def test_channels_last_unet_gives_the_same_prediction(tiny_models: dict[str, Path]) -> None:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_models["sd15"], subfolder="unet").eval()
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
    steps = torch.tensor([10, 900])
    with torch.no_grad():
        plain = unet(latents, steps, text).sample
        # What use_channels_last does on CUDA, checked here on the CPU for the maths.
        unet.to(memory_format=torch.channels_last)
        conv = next(m for m in unet.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        fast = unet(latents.contiguous(memory_format=torch.channels_last), steps, text).sample
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


def test_channels_last_only_on_cuda(tiny_models: dict[str, Path]) -> None:
    from diffusers import UNet2DConditionModel

    assert channels_last_pays(torch.device("cuda"))
    assert not channels_last_pays(torch.device("cpu"))
    unet = UNet2DConditionModel.from_pretrained(tiny_models["sd15"], subfolder="unet")
    use_channels_last(torch.device("cpu"), unet)  # measured slower on CPU: left as it is
    conv = next(m for m in unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert not conv.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.randn(1, 3, 4, 4)
    assert as_channels_last(images) is images
    tokens = torch.randn(2, 77, 8)
    assert as_channels_last(tokens) is tokens


def test_compile_only_when_asked_and_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMPILE_ENV, "1")
    assert not compile_requested(torch.device("cpu"))
    assert compile_requested(torch.device("cuda"))
    monkeypatch.setenv(COMPILE_ENV, "0")
    assert not compile_requested(torch.device("cuda"))
