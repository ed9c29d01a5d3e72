"""Aspect-ratio buckets: a few training shapes of about the same area (no torch)."""

from __future__ import annotations

import math

MAX_ASPECT = 2.0


def bucket_step(resolution: int) -> int:
    """Granularity of bucket sides: 64 px for real models, 16 px for tiny ones.

    Sides must survive the VAE's 8x and the UNet's downsamplings (one 2x in the tiny UNet)."""
    return 64 if resolution >= 256 else 16


def make_buckets(resolution: int) -> list[tuple[int, int]]:
    """(width, height) shapes with area <= resolution², sides multiple of the step."""
    step = bucket_step(resolution)
    area = resolution * resolution
    buckets: set[tuple[int, int]] = {(resolution, resolution)}
    width = step
    while width <= resolution * MAX_ASPECT:
        height = (area // width) // step * step
        if height >= step and max(width / height, height / width) <= MAX_ASPECT:
            buckets.add((width, height))
            buckets.add((height, width))
        width += step
    return sorted(buckets)


def nearest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest (in log space) to the image's."""
    aspect = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - aspect), -b[0] * b[1]))
