"""Real add-on files for the tiny SD1.5 model: trained by the training library when it works,
otherwise written by hand in the same formats (kohya LoRA, `emb_params` TI)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
TOKEN = "<sks>"
STEPS = (1, 2)


@dataclass
class RealFiles:
    base: Path
    lora: dict[int, bytes]  # step -> lora.safetensors
    embedding: dict[int, bytes]  # step -> embedding.safetensors
    trained: list[str]  # which kinds came from real training


def _dataset(root: Path) -> list[object]:
    from PIL import Image

    from worker.training.types import TrainingExample

    examples: list[object] = []
    for i in range(2):
        path = root / f"img{i}.png"
        Image.new("RGB", (32, 32), (200, 30 * i, 40)).save(path)
        examples.append(TrainingExample(path, "a red cat"))
    return examples


def _train(root: Path, base: Path, config: dict[str, object]) -> dict[int, bytes]:
    from worker.training.callbacks import TrainingCallbacks
    from worker.training.config import parse_config
    from worker.training.run import run_training

    saved: dict[int, bytes] = {}

    class Keep(TrainingCallbacks):
        def on_checkpoint(self, step: int, files: list[Path]) -> None:
            saved[step] = files[0].read_bytes()

    common = {"architecture": "sd15", "resolution": 32, "max_train_steps": max(STEPS),
              "save_every_n_steps": 1, "validation_prompts": []}
    run_training(parse_config({**common, **config}), _dataset(root), Keep(),  # type: ignore[arg-type]
                 model_source=str(base), output_dir=root / str(config["type"]))
    assert set(saved) == set(STEPS), saved
    return saved


def _handmade_lora(base: Path, seed: int) -> bytes:
    """A kohya-named LoRA over the tiny UNet's attention projections."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save

    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".attn")[-1][2:] in (
                ".to_q", ".to_k", ".to_v", ".to_out.0"):
            key = "lora_unet_" + name.replace(".", "_")
            tensors[f"{key}.lora_down.weight"] = torch.randn(4, module.in_features, generator=gen)
            tensors[f"{key}.lora_up.weight"] = torch.randn(module.out_features, 4, generator=gen)
            tensors[f"{key}.alpha"] = torch.tensor(4.0)
    assert tensors
    return save(tensors, metadata={"ss_network_dim": "4", "ss_network_alpha": "4"})


def _handmade_embedding(seed: int) -> bytes:
    import torch
    from safetensors.torch import save

    gen = torch.Generator().manual_seed(seed)
    return save({"emb_params": torch.randn(1, 32, generator=gen)})


def build(root: Path) -> RealFiles:
    from worker.training.tiny_models import build_tiny_model

    base = build_tiny_model(root / "tiny-sd15", "sd15")
    trained: list[str] = []
    try:
        lora = _train(root, base, {"type": "lora", "rank": 4, "caption_prefix": "sks"})
        trained.append("lora")
    except Exception as exc:  # the training library is still moving; keep the test meaningful
        warnings.warn(f"LoRA training failed ({exc!r}); using a hand-made kohya LoRA",
                      stacklevel=1)
        lora = {s: _handmade_lora(base, s) for s in STEPS}
    try:
        embedding = _train(root, base, {"type": "textual_inversion", "placeholder_token": TOKEN,
                                        "initializer_token": "cat"})
        trained.append("textual_inversion")
    except Exception as exc:
        warnings.warn(f"TI training failed ({exc!r}); using a hand-made embedding", stacklevel=1)
        embedding = {s: _handmade_embedding(s) for s in STEPS}
    return RealFiles(base, lora, embedding, trained)
