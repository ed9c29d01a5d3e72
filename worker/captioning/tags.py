"""Tag captions from a WD-style tagger (model.onnx + selected_tags.csv) through onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from worker.captioning.images import pad_to_square, to_rgb
from worker.captioning.tag_format import TAGS_FILE, read_tag_table, select_tags
from worker.captioning.types import (
    DEFAULT_MAX_TAGS,
    CaptionerKind,
    CaptionerLoadError,
    check_max_length,
    first_line,
)

MODEL_FILE = "model.onnx"
BATCH_SIZE = 8


def _providers(device: str | None) -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    wants_cuda = device is None or device.startswith("cuda")
    if wants_cuda and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # The tagger is small: without onnxruntime's CUDA build it runs on the CPU.
    return ["CPUExecutionProvider"]


class WdTagger:
    kind: CaptionerKind = "tags"

    def __init__(self, folder: Path, device: str | None = None) -> None:
        import onnxruntime

        model_path, tags_path = folder / MODEL_FILE, folder / TAGS_FILE
        if not model_path.is_file() or not tags_path.is_file():
            hint = " (it looks like a sentence captioner)" if (folder / "config.json").is_file() \
                else ""
            raise CaptionerLoadError(
                f"{folder.name} is not a tags captioner: it needs {MODEL_FILE} and "
                f"{TAGS_FILE}{hint}"
            )
        self.tags = read_tag_table(tags_path)
        try:
            self.session = onnxruntime.InferenceSession(
                str(model_path), providers=_providers(device)
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise CaptionerLoadError(
                f"{MODEL_FILE} could not be loaded: {first_line(error)}"
            ) from None
        self.input_name, self.size = self._check_signature()
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" \
            else "cpu"

    def _check_signature(self) -> tuple[str, int]:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise CaptionerLoadError(f"{MODEL_FILE} must have one image input and an output")
        shape = inputs[0].shape
        # WD taggers take NHWC: [batch, size, size, 3].
        if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) \
                or shape[1] != shape[2]:
            raise CaptionerLoadError(
                f"{MODEL_FILE} input has shape {shape}; a WD tagger takes [batch, size, size, 3]"
            )
        width = outputs[0].shape[-1] if outputs[0].shape else None
        if isinstance(width, int) and width != len(self.tags):
            raise CaptionerLoadError(
                f"{MODEL_FILE} scores {width} tags but {TAGS_FILE} lists {len(self.tags)}"
            )
        return inputs[0].name, int(shape[1])

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """White-padded square, resized to the model's size, BGR float32 in 0-255 (HWC)."""
        square = pad_to_square(to_rgb(image))
        if square.size != (self.size, self.size):
            square = square.resize((self.size, self.size), Image.Resampling.BICUBIC)
        return np.asarray(square, dtype=np.float32)[:, :, ::-1]

    def caption(
        self, images: Sequence[Image.Image], *, max_length: int | None = None
    ) -> list[str]:
        limit = check_max_length(max_length, DEFAULT_MAX_TAGS)
        captions: list[str] = []
        for start in range(0, len(images), BATCH_SIZE):
            batch = np.stack([self.preprocess(image) for image in images[start:start + BATCH_SIZE]])
            probabilities = self.session.run(None, {self.input_name: batch})[0]
            captions.extend(", ".join(select_tags(self.tags, row.tolist(), limit))
                            for row in probabilities)
        return captions
