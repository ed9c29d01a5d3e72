"""Sentence captions from a BLIP captioning model (transformers), deterministic beam search."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from worker.captioning.device import inference_dtype, pick_device
from worker.captioning.images import to_rgb
from worker.captioning.types import (
    DEFAULT_SENTENCE_TOKENS,
    CaptionerKind,
    CaptionerLoadError,
    check_max_length,
    first_line,
)

SUPPORTED_MODEL_TYPES = ("blip",)
NUM_BEAMS = 3
BATCH_SIZE = 8


def _model_type(folder: Path) -> str:
    config_path = folder / "config.json"
    if not config_path.is_file():
        hint = " (it looks like a tags captioner)" if (folder / "model.onnx").is_file() else ""
        raise CaptionerLoadError(
            f"{folder.name} is not a sentence captioner: it has no config.json{hint}"
        )
    try:
        return str(json.loads(config_path.read_text()).get("model_type", ""))
    except (OSError, ValueError, AttributeError):
        raise CaptionerLoadError(f"{folder.name}/config.json is not valid JSON") from None


class BlipCaptioner:
    kind: CaptionerKind = "sentence"

    def __init__(self, folder: Path, device: str | None = None) -> None:
        from transformers import AutoTokenizer, BlipForConditionalGeneration
        from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

        model_type = _model_type(folder)
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise CaptionerLoadError(
                f"{folder.name} is a {model_type or 'unknown'} model; sentence captioners must "
                f"be one of: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        self.device = pick_device(device)
        self.dtype = inference_dtype(self.device)
        try:
            # The PIL image processor: the default one needs torchvision, which workers lack.
            self.image_processor = BlipImageProcessorPil.from_pretrained(str(folder))
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = BlipForConditionalGeneration.from_pretrained(str(folder), dtype=self.dtype)
        except Exception as error:  # safetensors, tokenizers, torch: each has its own errors
            raise CaptionerLoadError(
                f"{folder.name} could not be loaded as a BLIP captioner: {first_line(error)}"
            ) from None
        self.model = model.to(self.device).eval()
        # Never let a caption be made of special tokens ([PAD], [UNK], ...): only [SEP] ends it.
        end = self.model.config.text_config.sep_token_id
        self._suppress = [i for i in self.tokenizer.all_special_ids if i != end]

    @torch.inference_mode()
    def caption(
        self, images: Sequence[Image.Image], *, max_length: int | None = None
    ) -> list[str]:
        tokens = check_max_length(max_length, DEFAULT_SENTENCE_TOKENS)
        captions: list[str] = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = [to_rgb(image) for image in images[start:start + BATCH_SIZE]]
            pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
            output = self.model.generate(
                pixel_values=pixels.to(self.device, self.dtype),
                max_new_tokens=tokens,
                num_beams=NUM_BEAMS,
                do_sample=False,
                suppress_tokens=self._suppress,
            )
            texts = self.tokenizer.batch_decode(output, skip_special_tokens=True)
            captions.extend(clean_sentence(text) for text in texts)
        return captions


def clean_sentence(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
