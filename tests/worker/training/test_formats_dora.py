"""DoRA files mean the same in ComfyUI, A1111, InvokeAI and diffusers (via Atelier's loader).

Each client's merge arithmetic (client_formulas.py, written from its source) applied to the
exported file must give the trained layer's effective weight, for UNet and text encoders,
Linear and Conv (1x1 and 3x3), SD1.5 and SDXL; loading the file into a fresh diffusers
pipeline must reproduce the trained pipeline's images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors.torch import load_file

from tests.worker.training.client_formulas import (
    CLIENTS,
    a1111_first_dora_merge,
    a1111_merge,
    comfyui_merge,
    invokeai_merge,
)
from worker.training.config import parse_config
from worker.training.diffusers_loading import load_lora_into_pipeline
from worker.training.dora import DoraLayer, column_norm, inject_dora
from worker.training.engine import TrainingRun
from worker.training.export_formats import kohya_name, kohya_prefixes
from worker.training.lora.train import LoraMethod
from worker.training.validation import build_pipeline

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "conv1"]


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def dora_run(
    request: pytest.FixtureRequest,
    tiny_models: dict[str, Path],
    toy_dataset: list[Any],
    make_config: Any,
    recording_callbacks: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, TrainingRun, Path]:
    """A DoRA trained for real steps, alpha != rank, text encoders and convs adapted."""
    arch = request.param
    config = parse_config(
        make_config(
            "dora",
            arch,
            alpha=8,
            max_train_steps=3,
            save_every_n_steps=3,
            validation_prompts=[],
            train_text_encoder=True,
            unet_target_modules=UNET_TARGETS,
            learning_rate=3e-2,
        )
    )
    out = tmp_path_factory.mktemp(f"dora-{arch}")
    run = TrainingRun(
        LoraMethod(config), toy_dataset, recording_callbacks(), str(tiny_models[arch]), out
    )
    result = run.run()
    return arch, run, result.files[0]


def trained_layers(run: TrainingRun) -> dict[str, DoraLayer]:
    """kohya name -> trained DoraLayer, over UNet and text encoders."""
    parts = run.parts
    modules = [parts.unet, *parts.text_encoders]
    layers = {}
    for (prefix, _), module in zip(kohya_prefixes(parts.architecture), modules, strict=True):
        for path, child in module.named_modules():
            if isinstance(child, DoraLayer):
                layers[kohya_name(prefix, path)] = child
    return layers


def test_every_client_formula_gives_the_trained_weight(
    dora_run: tuple[str, TrainingRun, Path],
) -> None:
    arch, run, path = dora_run
    state = load_file(str(path))
    layers = trained_layers(run)
    assert {k.rsplit(".", 1)[0] for k in state if k.endswith(".dora_scale")} == set(layers)
    prefixes = {name.split("_")[1] for name in layers}
    assert prefixes == ({"unet", "te1", "te2"} if arch == "sdxl" else {"unet", "te"})
    kinds = {
        (type(layer.base_layer).__name__, layer.base_layer.weight.dim())
        for layer in layers.values()
    }
    assert ("Conv2d", 4) in kinds and ("Linear", 2) in kinds
    assert any(getattr(layer.base_layer, "kernel_size", (1,))[0] == 3 for layer in layers.values())

    moved = 0.0
    for name, layer in layers.items():
        base = layer.base_layer.weight.detach().float()
        expected = layer.effective_weight().detach()
        up, down = state[f"{name}.lora_up.weight"], state[f"{name}.lora_down.weight"]
        alpha, scale = float(state[f"{name}.alpha"]), state[f"{name}.dora_scale"]
        assert scale.shape == column_norm(base).shape
        for client, merge in CLIENTS.items():
            merged = merge(base, up, down, alpha, scale)
            err = (merged - expected).abs().max().item()
            assert err <= 1e-5 * base.abs().max().item() + 1e-7, f"{client} {name}: {err}"
        moved = max(moved, ((expected - base).abs().max() / base.abs().max()).item())
    # Training moved the weights, so the equalities above are not the trivial W' == W.
    assert moved > 1e-3, moved


def test_output_wise_scales_would_not_mean_the_same(
    dora_run: tuple[str, TrainingRun, Path],
) -> None:
    """The old (out, 1) magnitudes: A1111 and ComfyUI disagree with the trained weight."""
    _, run, _ = dora_run
    name, layer = next(
        (n, m) for n, m in trained_layers(run).items() if isinstance(m.base_layer, torch.nn.Linear)
    )
    base = layer.base_layer.weight.detach().float()
    up = layer.lora_up.weight.detach() * layer.scaling
    down = layer.lora_down.weight.detach()
    direction = base + up @ down
    # peft's convention: one magnitude per output row.
    row_scale = direction.norm(dim=1, keepdim=True)
    peft_weight = direction * (row_scale / direction.norm(dim=1, keepdim=True))
    merged = a1111_merge(base, up, down, float(down.shape[0]), row_scale)
    assert (merged - peft_weight).abs().max() > 1e-3 * base.abs().max(), name


def test_first_a1111_dora_code_needs_alpha_equal_rank() -> None:
    """Where alpha/rank applies: inside the decomposition (ComfyUI, current A1111, InvokeAI)
    or outside it (A1111's first DoRA code). They agree at s = 1 only, hence alpha = rank."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(12, 10, generator=gen)
    up, down = torch.randn(12, 4, generator=gen), torch.randn(4, 10, generator=gen)
    magnitude = column_norm(base) * 1.1
    for alpha, agree in ((4.0, True), (8.0, False)):
        inside = [f(base, up, down, alpha, magnitude)
                  for f in (comfyui_merge, a1111_merge, invokeai_merge)]
        for other in inside[1:]:
            assert torch.allclose(other, inside[0], atol=1e-5)
        first = a1111_first_dora_merge(base, up, down, alpha, magnitude)
        assert torch.allclose(first, inside[0], atol=1e-5) is agree, alpha


def test_atelier_loader_reproduces_the_trained_pipeline(
    dora_run: tuple[str, TrainingRun, Path], tiny_models: dict[str, Path]
) -> None:
    arch, run, path = dora_run
    cls = StableDiffusionXLPipeline if arch == "sdxl" else StableDiffusionPipeline
    extra = {} if arch == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    fresh = cls.from_pretrained(str(tiny_models[arch]), **extra)
    trained = build_pipeline(run.parts, fresh.scheduler)
    fresh.set_progress_bar_config(disable=True)
    for module in (run.parts.unet, *run.parts.text_encoders):
        module.eval()

    def image(pipe: Any) -> np.ndarray:
        with torch.no_grad():
            out = pipe(
                "sks a red square",
                num_inference_steps=2,
                height=32,
                width=32,
                output_type="np",
                generator=torch.Generator().manual_seed(3),
            )
        return out.images[0]

    base = image(fresh)
    load_lora_into_pipeline(fresh, path)
    loaded, reference = image(fresh), image(trained)
    loaded_layers = sum(
        isinstance(m, DoraLayer)
        for c in ("unet", "text_encoder", "text_encoder_2")
        if getattr(fresh, c, None) is not None
        for m in getattr(fresh, c).modules()
    )
    assert loaded_layers == len(trained_layers(run))
    assert np.abs(loaded - base).max() > 1e-3, "loading changed nothing"
    assert np.abs(loaded - reference).max() < 1e-4


def test_real_shaped_sd15_gets_input_column_magnitudes_on_meta() -> None:
    """SD1.5's real UNet shapes (meta device, no memory): names and magnitude shapes."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8)
    layers = inject_dora(unet, ["to_q", "to_k", "to_v", "to_out.0", "proj_in"], 16, 16.0)
    # 16 transformer blocks x 2 attentions x 4 projections, plus 16 proj_in convs.
    assert len(layers) == 16 * 2 * 4 + 16
    by_name = {
        kohya_name("lora_unet", n): m for n, m in unet.named_modules() if isinstance(m, DoraLayer)
    }
    proj_in = by_name["lora_unet_down_blocks_0_attentions_0_proj_in"]
    assert proj_in.lora_magnitude.shape == (1, 320, 1, 1)  # SD1.5's proj_in is a 1x1 conv
    to_k = by_name["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"]
    assert to_k.lora_magnitude.shape == (1, 768)  # one per text-embedding column
