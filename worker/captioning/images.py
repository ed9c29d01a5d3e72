"""Turning any PIL image (RGBA, palette, grayscale, 16-bit) into the RGB that models expect."""

from __future__ import annotations

from PIL import Image

WHITE = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of `image`; transparent pixels become white (what taggers were trained on)."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit grayscale: scale to 8 bits instead of letting convert() clip.
        image = image.convert("F").point(lambda v: v / 256.0).convert("L")
    return image.convert("RGB")


def pad_to_square(image: Image.Image) -> Image.Image:
    """Centre an RGB image on a white square canvas of its longer side."""
    side = max(image.size)
    if image.size == (side, side):
        return image
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas
