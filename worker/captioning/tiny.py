"""Tiny random captioners of the real architectures, for tests, the demo and `make-tiny`.

sentence: a BLIP captioning model (a few layers, 32 px images) with a WordPiece tokenizer built
here; tags: a ViT tagger in ONNX with the WD v3 signature and a generated selected_tags.csv.
Both load through `load_captioner` like downloaded ones and always produce non-empty text.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from worker.captioning.tag_format import CHARACTER, CSV_COLUMNS, GENERAL, RATING, TAGS_FILE
from worker.captioning.tags import MODEL_FILE
from worker.captioning.types import KINDS, CaptionerKind

if TYPE_CHECKING:  # torch loads only when a captioner is built
    import torch

TINY_IMAGE_SIZE = 32
_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "a photo of the an with and in on at painting drawing portrait woman man cat dog red blue "
    "green yellow black white sitting standing table tree sky city street room light dark small "
    "large old young wearing dress shirt hat field water"
).split()
# (name, category, base logit): the tiny tagger's bias makes these tags win on any image.
_TAGS = [
    ("general", RATING, 4.0), ("sensitive", RATING, -4.0), ("questionable", RATING, -4.0),
    ("explicit", RATING, -4.0),
    ("1girl", GENERAL, 3.0), ("solo", GENERAL, 2.5), ("long_hair", GENERAL, 2.0),
    ("looking_at_viewer", GENERAL, 1.5), ("^_^", GENERAL, 1.0), ("smile", GENERAL, 0.5),
    ("hat_(object)", GENERAL, -3.0), ("outdoors", GENERAL, -3.0), ("sky", GENERAL, -3.0),
    ("tree", GENERAL, -3.0), ("short_hair", GENERAL, -3.0), ("simple_background", GENERAL, -3.0),
    ("original_character", CHARACTER, 4.0), ("another_character", CHARACTER, -4.0),
]
_TAG_GAIN = 0.3  # image-dependent spread of the logits: small next to the biases
# Sizes of the real models the benchmark imitates: BLIP's BERT vocabulary, wd-vit-tagger-v3's tags.
REAL_BLIP_VOCAB = 30524
REAL_TAGS = 10861
REAL_CHARACTER_TAGS = 2800


def make_tiny_captioner(out_dir: Path, kind: CaptionerKind) -> Path:
    """Write a tiny random captioner of `kind` into `out_dir` and return the folder."""
    return write_random_captioner(out_dir, kind, real_shape=False)


def write_random_captioner(out_dir: Path, kind: CaptionerKind, *, real_shape: bool) -> Path:
    """A random captioner: tiny, or (real_shape) BLIP-base / WD-ViT-B/16-448 sized for benchmarks.

    Only the tiny ones are tuned to always produce text (the real-shaped ones do in practice)."""
    if kind not in KINDS:
        raise ValueError(f"unknown captioner kind {kind!r}; use one of {', '.join(KINDS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sentence":
        _write_blip(out_dir, real_shape)
    else:
        _write_tagger(out_dir, real_shape)
    return out_dir


def _write_blip(out_dir: Path, real_shape: bool) -> None:
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        GenerationConfig,
    )
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    words = _WORDS + [f"word{i}" for i in range(REAL_BLIP_VOCAB - len(_WORDS) - 8)] \
        if real_shape else _WORDS
    vocab_list = [*_SPECIALS, *words, ".", ",", "[DEC]"]
    vocab = {token: index for index, token in enumerate(vocab_list)}
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    ids = {"vocab_size": len(vocab), "bos_token_id": vocab["[DEC]"],
           "sep_token_id": vocab["[SEP]"], "eos_token_id": vocab["[SEP]"],
           "pad_token_id": vocab["[PAD]"]}
    if real_shape:  # BlipConfig's defaults are BLIP-base: ViT-B/16 at 384 px, BERT-base decoder
        text: dict[str, int] = ids
        vision: dict[str, int] = {}
        image_size = 384
    else:
        text = {**ids, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                "intermediate_size": 64, "max_position_embeddings": 64}
        vision = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "intermediate_size": 64, "image_size": TINY_IMAGE_SIZE, "patch_size": 8}
        image_size = TINY_IMAGE_SIZE
    config = BlipConfig(text_config=text, vision_config=vision)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    if not real_shape:
        _make_captions_depend_on_the_image(model)
    # Random weights may well say [SEP] first: ask for a few words so captions are never empty.
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos_token_id"], eos_token_id=ids["sep_token_id"],
        pad_token_id=ids["pad_token_id"], min_new_tokens=3,
    )
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    BlipImageProcessorPil(size={"height": image_size, "width": image_size}) \
        .save_pretrained(str(out_dir))


def _make_captions_depend_on_the_image(model: torch.nn.Module) -> None:
    """BLIP's default init leaves a tiny model's image features near zero (every image gets
    the same caption); larger random vision and cross-attention matrices make them differ."""
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() > 1 and ("vision_model" in name or "crossattention" in name):
                parameter.normal_(0.0, 0.3)


def write_tag_table(path: Path, tags: list[tuple[str, int]]) -> None:
    """selected_tags.csv with the WD taggers' columns (counts are made up, decreasing)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for index, (name, category) in enumerate(tags):
            writer.writerow([1000 + index, name, category, 10_000 - index])


def _write_tagger(out_dir: Path, real_shape: bool) -> None:
    from worker.captioning.vit_onnx import TINY_VIT, WD_VIT_B16_448, build_vit_tagger

    if real_shape:
        ratings = [(name, RATING) for name, category, _ in _TAGS if category == RATING]
        characters = [(f"character_{i}", CHARACTER) for i in range(REAL_CHARACTER_TAGS)]
        general = [(f"tag_{i}", GENERAL)
                   for i in range(REAL_TAGS - len(ratings) - len(characters))]
        tags = ratings + general + characters
        write_tag_table(out_dir / TAGS_FILE, tags)
        build_vit_tagger(out_dir / MODEL_FILE, WD_VIT_B16_448, np.zeros(len(tags), np.float32))
        return
    write_tag_table(out_dir / TAGS_FILE, [(name, category) for name, category, _ in _TAGS])
    bias = np.array([logit for _, _, logit in _TAGS], np.float32)
    build_vit_tagger(out_dir / MODEL_FILE, TINY_VIT, bias, head_gain=_TAG_GAIN)
