"""Tiny, randomly initialised SD1.5- and SDXL-shaped diffusers models.

They have the real component classes and wiring (CLIP tokenizer + text encoder(s), VAE, UNet
with cross-attention, SDXL's text_time add-embeddings) but only a few MB of weights, so tests,
the demo and `atelier base-models make-tiny` run on a CPU without downloading anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

Architecture = Literal["sd15", "sdxl"]

TINY_RESOLUTION = 64
"""Native resolution of the tiny models in pixels.

Their VAE downsamples 8x like SD1.5's and SDXL's (latents are 8x8 here), so a size means the same
thing on every model and a job never asks a tiny model for enormous latents."""
VAE_SCALE = 8

_HIDDEN = 32
# A few whole words so common prompts do not tokenize into single characters only.
_WORDS = ["a", "photo", "of", "the", "in", "style", "painting", "red", "blue", "green", "cat"]


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable-unicode table of GPT-2/CLIP byte-level BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def _word_merges(word: str) -> list[tuple[str, str]]:
    """Left-to-right merges that build `word</w>` from its characters."""
    merges: list[tuple[str, str]] = []
    current = word[0]
    for index, char in enumerate(word[1:], start=1):
        piece = char + ("</w>" if index == len(word) - 1 else "")
        merges.append((current, piece))
        current += piece
    return merges


def write_tiny_tokenizer(directory: Path) -> None:
    """Write a CLIP tokenizer (vocab.json + merges.txt) built without any download."""
    directory.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols]
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        for left, right in _word_merges(word):
            if (left, right) not in merges:
                merges.append((left, right))
                vocab_list.append(left + right)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(vocab_list))}
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{left} {right}" for left, right in merges]
    (directory / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(
        vocab=str(directory / "vocab.json"), merges=str(directory / "merges.txt")
    )
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(directory)


def _text_config(vocab_size: int, projection_dim: int = _HIDDEN) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        hidden_act="gelu",
    )


def _tiny_vae() -> AutoencoderKL:
    # Four blocks = three 2x downsamplings = 8x, as in the real models; channels stay tiny.
    return AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=TINY_RESOLUTION,
    )


def _tiny_unet(architecture: Architecture) -> UNet2DConditionModel:
    common: dict[str, object] = {
        "block_out_channels": (16, 32),
        "layers_per_block": 1,
        "sample_size": TINY_RESOLUTION // VAE_SCALE,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "norm_num_groups": 8,
    }
    if architecture == "sd15":
        return UNet2DConditionModel(cross_attention_dim=_HIDDEN, attention_head_dim=4, **common)
    # SDXL: prompt embeddings are both encoders' hidden states concatenated, and the pooled
    # text embedding + six size/crop numbers enter through the text_time add-embedding.
    time_dim = 8
    return UNet2DConditionModel(
        cross_attention_dim=2 * _HIDDEN,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + _HIDDEN,
        transformer_layers_per_block=(1, 1),
        **common,
    )


def _scheduler_kwargs() -> dict[str, object]:
    return {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "steps_offset": 1,
    }


def build_tiny_model(path: Path, architecture: Architecture) -> Path:
    """Build a tiny random diffusers model folder at `path` and return `path`.

    Deterministic (fixed seed), a few MB, and loadable with
    `StableDiffusionPipeline.from_pretrained` / `StableDiffusionXLPipeline.from_pretrained`.
    """
    if architecture not in ("sd15", "sdxl"):
        raise ValueError(f"unknown architecture {architecture!r}; use 'sd15' or 'sdxl'")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok_dir = path / "tokenizer"
    write_tiny_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    vocab_size = len(tokenizer)

    torch.manual_seed(0)
    unet = _tiny_unet(architecture)
    torch.manual_seed(1)
    vae = _tiny_vae()
    torch.manual_seed(2)
    text_encoder = CLIPTextModel(_text_config(vocab_size))
    scheduler = EulerDiscreteScheduler(**_scheduler_kwargs())

    if architecture == "sd15":
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    else:
        torch.manual_seed(3)
        text_encoder_2 = CLIPTextModelWithProjection(_text_config(vocab_size))
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            unet=unet,
            scheduler=scheduler,
        )
    pipe.save_pretrained(path, safe_serialization=True)
    return path
