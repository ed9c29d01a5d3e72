"""Training data: image loading, crops/flips, bucketed batches in a resumable order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from worker.training.buckets import make_buckets, nearest_bucket
from worker.training.captions import CaptionRecipe
from worker.training.common_config import CommonTrainingConfig
from worker.training.types import TrainingExample


@dataclass(frozen=True)
class PreparedImage:
    """A cropped image as a [-1, 1] CHW tensor, with SDXL's size conditioning."""

    pixels: torch.Tensor
    original_size: tuple[int, int]  # (height, width) before resizing
    crop_top_left: tuple[int, int]  # (top, left) in the resized image


@dataclass(frozen=True)
class Sample:
    """Everything random about one image in one epoch, decided up front."""

    index: int
    flip: bool
    crop_fraction: tuple[float, float]
    caption: str


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """Per-(epoch, image) RNG: a resumed run makes the same choices without saved state."""
    return random.Random(f"{seed}:{epoch}:{index}")


def load_rgb(path: Path) -> Image.Image:
    """Open an image as RGB, honouring EXIF rotation."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


class ImageStore:
    """Resized images (covering their bucket), optionally kept in memory between epochs."""

    def __init__(
        self, paths: Sequence[Path], buckets: Sequence[tuple[int, int]], keep_in_memory: bool
    ) -> None:
        self._paths = list(paths)
        self._buckets = list(buckets)
        self._keep = keep_in_memory
        self._memory: dict[int, tuple[Image.Image, tuple[int, int]]] = {}

    def resized(self, index: int) -> tuple[Image.Image, tuple[int, int]]:
        """The image scaled to cover its bucket, and its original (height, width)."""
        if index in self._memory:
            return self._memory[index]
        image = load_rgb(self._paths[index])
        width, height = self._buckets[index]
        scale = max(width / image.width, height / image.height)
        size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        result = (image.resize(size, Image.Resampling.BICUBIC), (image.height, image.width))
        if self._keep:
            self._memory[index] = result
        return result


def prepare_image(
    resized: Image.Image,
    original_size: tuple[int, int],
    bucket: tuple[int, int],
    crop_fraction: tuple[float, float],
    flip: bool,
) -> PreparedImage:
    """Crop `resized` to `bucket` at the given fraction of the slack, flip, convert."""
    width, height = bucket
    top = round((resized.height - height) * crop_fraction[0])
    left = round((resized.width - width) * crop_fraction[1])
    image = resized.crop((left, top, left + width, top + height))
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = np.asarray(image, dtype=np.uint8)
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
    return PreparedImage(pixels, original_size, (top, left))


class BatchPlan:
    """Which images form batch number `n`: shuffled per epoch, one bucket per batch.

    The order is a pure function of (seed, epoch), so a resumed run continues exactly where an
    uninterrupted one would be.
    """

    def __init__(self, buckets: Sequence[tuple[int, int]], batch_size: int, seed: int) -> None:
        self._by_bucket: dict[tuple[int, int], list[int]] = {}
        for index, bucket in enumerate(buckets):
            self._by_bucket.setdefault(bucket, []).append(index)
        self._batch_size = batch_size
        self._seed = seed
        self.batches_per_epoch = sum(
            -(-len(members) // batch_size) for members in self._by_bucket.values()
        )
        self._epoch_cache: tuple[int, list[list[int]]] | None = None

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        rng = random.Random(f"{self._seed}:order:{epoch}")
        batches: list[list[int]] = []
        for bucket in sorted(self._by_bucket):
            members = list(self._by_bucket[bucket])
            rng.shuffle(members)
            size = self._batch_size
            batches += [members[i : i + size] for i in range(0, len(members), size)]
        rng.shuffle(batches)
        self._epoch_cache = (epoch, batches)
        return batches

    def batch(self, number: int) -> tuple[int, list[int]]:
        """(epoch, image indices) of the global batch `number` (0-based)."""
        epoch, position = divmod(number, self.batches_per_epoch)
        return epoch, self._epoch_batches(epoch)[position]


class TrainingData:
    """The dataset as the training loop sees it: batches of samples and their pixels."""

    def __init__(
        self,
        examples: Sequence[TrainingExample],
        config: CommonTrainingConfig,
        recipe: CaptionRecipe,
    ) -> None:
        if not examples:
            raise ValueError("the dataset is empty: add at least one image")
        self.examples = list(examples)
        self.config = config
        self.recipe = recipe
        self.buckets = self._assign_buckets()
        # With cached latents every image is decoded once, so keeping pixels would only cost RAM.
        keep = config.keep_data_in_memory and not config.vae_cache_enabled()
        self.images = ImageStore([e.image_path for e in self.examples], self.buckets, keep)
        self.plan = BatchPlan(self.buckets, config.train_batch_size, config.seed)

    def _assign_buckets(self) -> list[tuple[int, int]]:
        res = self.config.resolution
        if not self.config.aspect_ratio_buckets:
            return [(res, res)] * len(self.examples)
        choices = make_buckets(res)
        assigned = []
        for example in self.examples:
            with Image.open(example.image_path) as image:
                width, height = ImageOps.exif_transpose(image).size
            assigned.append(nearest_bucket(width, height, choices))
        return assigned

    def samples(self, batch_number: int) -> tuple[int, list[Sample]]:
        """(epoch, samples) of a global batch, with flips, crops and captions decided."""
        epoch, indices = self.plan.batch(batch_number)
        samples = []
        for index in indices:
            rng = sample_rng(self.config.seed, epoch, index)
            flip = self.config.random_flip and rng.random() < 0.5
            crop = (0.5, 0.5) if self.config.center_crop else (rng.random(), rng.random())
            caption = self.recipe.build(self.examples[index].caption, rng)
            samples.append(Sample(index, flip, crop, caption))
        return epoch, samples

    def prepare(self, index: int, flip: bool, crop: tuple[float, float]) -> PreparedImage:
        resized, original = self.images.resized(index)
        return prepare_image(resized, original, self.buckets[index], crop, flip)
