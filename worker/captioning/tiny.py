"""Tiny random captioners of the real architectures, for tests, the demo and `make-tiny`.

sentence: a BLIP captioning model (a few layers, 32 px images) with a WordPiece tokenizer built
here; tags: a ViT tagger in ONNX with the WD v3 signature and a generated selected_tags.csv.
Both load through `load_captioner` like downloaded ones and always produce non-empty text.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from worker.captioning.tag_format import CHARACTER, CSV_COLUMNS, GENERAL, RATING, TAGS_FILE
from worker.captioning.tags import MODEL_FILE
from worker.captioning.types import KINDS, CaptionerKind

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


def make_tiny_captioner(out_dir: Path, kind: CaptionerKind) -> Path:
    """Write a tiny random captioner of `kind` into `out_dir` and return the folder."""
    if kind not in KINDS:
        raise ValueError(f"unknown captioner kind {kind!r}; use one of {', '.join(KINDS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sentence":
        _write_tiny_blip(out_dir)
    else:
        _write_tiny_tagger(out_dir)
    return out_dir


def _write_tiny_blip(out_dir: Path) -> None:
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        GenerationConfig,
    )
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    vocab_list = [*_SPECIALS, *_WORDS, ".", ",", "[DEC]"]
    vocab = {token: index for index, token in enumerate(vocab_list)}
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    text = {"vocab_size": len(vocab), "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
            "bos_token_id": vocab["[DEC]"], "sep_token_id": vocab["[SEP]"],
            "eos_token_id": vocab["[SEP]"], "pad_token_id": vocab["[PAD]"]}
    vision = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "image_size": TINY_IMAGE_SIZE, "patch_size": 8}
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=32)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    # Random weights may well say [SEP] first: ask for a few words so captions are never empty.
    model.generation_config = GenerationConfig(
        bos_token_id=text["bos_token_id"], eos_token_id=text["sep_token_id"],
        pad_token_id=text["pad_token_id"], min_new_tokens=3,
    )
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    BlipImageProcessorPil(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}) \
        .save_pretrained(str(out_dir))


def write_tag_table(path: Path, tags: list[tuple[str, int]]) -> None:
    """selected_tags.csv with the WD taggers' columns (counts are made up, decreasing)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for index, (name, category) in enumerate(tags):
            writer.writerow([1000 + index, name, category, 10_000 - index])


def _write_tiny_tagger(out_dir: Path) -> None:
    from worker.captioning.vit_onnx import TINY_VIT, build_vit_tagger

    write_tag_table(out_dir / TAGS_FILE, [(name, category) for name, category, _ in _TAGS])
    bias = np.array([logit for _, _, logit in _TAGS], np.float32)
    build_vit_tagger(out_dir / MODEL_FILE, TINY_VIT, bias, head_gain=_TAG_GAIN)
