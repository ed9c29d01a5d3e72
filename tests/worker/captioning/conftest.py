"""Tiny captioners built once per session (the real make-tiny path) and test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.captioning import Captioner, load_captioner, make_tiny_captioner


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("captioners")
    return {kind: make_tiny_captioner(root / kind, kind) for kind in ("sentence", "tags")}


@pytest.fixture(scope="session")
def tiny_captioners(tiny_folders: dict[str, Path]) -> dict[str, Captioner]:
    return {kind: load_captioner(str(path), kind) for kind, path in tiny_folders.items()}  # type: ignore[arg-type]


def odd_images() -> list[Image.Image]:
    """Every kind of image a dataset may hold: odd sizes, alpha, palette, grayscale, 16-bit."""
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, (37, 91, 3), dtype=np.uint8))
    palette = Image.new("P", (20, 31))
    palette.putpalette([255, 0, 0, 0, 0, 255] * 128)
    transparent_palette = palette.copy()
    transparent_palette.info["transparency"] = 0
    sixteen = Image.fromarray(rng.integers(0, 65536, (9, 17), dtype=np.uint16))
    return [
        noise,
        Image.new("RGB", (1, 300), (10, 200, 30)),
        Image.new("RGBA", (50, 21), (255, 0, 0, 128)),
        Image.new("LA", (33, 33), (90, 0)),
        Image.new("L", (13, 77), 100),
        Image.new("1", (8, 8), 1),
        palette,
        transparent_palette,
        sixteen,
        Image.new("CMYK", (15, 15), (0, 255, 0, 0)),
    ]
