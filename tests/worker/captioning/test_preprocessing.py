"""Image conversion and the WD tagger's input: white padding, BGR, 0-255, the model's size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from worker.captioning import Captioner
from worker.captioning.images import pad_to_square, to_rgb
from worker.captioning.tag_format import CHARACTER, GENERAL, RATING, TagTable, select_tags


def test_transparency_becomes_white() -> None:
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)
    half = to_rgb(Image.new("RGBA", (4, 4), (0, 0, 0, 128))).getpixel((0, 0))
    assert 120 <= half[0] <= 135  # black over white at half opacity
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([0, 0, 255] * 256)
    palette.info["transparency"] = 0
    assert to_rgb(palette).getpixel((0, 0)) == (255, 255, 255)


def test_grayscale_and_16_bit_become_rgb() -> None:
    assert to_rgb(Image.new("L", (3, 3), 77)).getpixel((1, 1)) == (77, 77, 77)
    sixteen = Image.fromarray(np.full((3, 3), 65535, np.uint16))
    assert to_rgb(sixteen).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.fromarray(np.full((3, 3), 256 * 100, np.uint16))).getpixel((0, 0)) == (
        100, 100, 100)


def test_pad_to_square_centres_on_white() -> None:
    square = pad_to_square(Image.new("RGB", (10, 40), (255, 0, 0)))
    assert square.size == (40, 40)
    assert square.getpixel((0, 20)) == (255, 255, 255)
    assert square.getpixel((20, 20)) == (255, 0, 0)


def test_tagger_input_is_bgr_0_255_at_model_size(tiny_captioners: dict[str, Captioner]) -> None:
    tagger = tiny_captioners["tags"]
    array = tagger.preprocess(Image.new("RGB", (10, 40), (255, 0, 0)))  # type: ignore[attr-defined]
    size = tagger.size  # type: ignore[attr-defined]
    assert size == 32  # read from the ONNX input shape
    assert array.shape == (size, size, 3) and array.dtype == np.float32
    middle, edge = array[size // 2, size // 2], array[size // 2, 0]
    assert middle.tolist() == [0.0, 0.0, 255.0]  # red, as BGR
    assert edge.tolist() == [255.0, 255.0, 255.0]  # white padding


def test_select_tags_thresholds_order_and_limit() -> None:
    table = TagTable(
        names=["safe", "blue_sky", "cat", "some_one_(series)", "weak", "x_x", "maybe_char"],
        categories=[RATING, GENERAL, GENERAL, CHARACTER, GENERAL, GENERAL, CHARACTER],
    )
    probabilities = [0.99, 0.5, 0.9, 0.86, 0.34, 0.35, 0.8]
    assert select_tags(table, probabilities, 30) == [
        "cat", "some one (series)", "blue sky", "x_x"]
    assert select_tags(table, probabilities, 1) == ["cat"]
