"""Image verification: a real Pillow decode (never the file name), size and pixel limits, EXIF
orientation applied, a small WebP thumbnail.

Orientation policy: when a photo carries an EXIF orientation other than "normal", the stored
image is the re-oriented one (re-encoded in its own format, orientation tag removed), so every
consumer — the training worker, the export, a browser — sees the picture upright without having
to know about EXIF. Width/height and sha256 describe the stored bytes.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from dataclasses import dataclass
from typing import IO, BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from app.core.hashing import stream_sha256
from app.datasets import limits

# Pillow format name -> (extension, content type). MPO is how Pillow names the multi-picture
# JPEGs many phones write; it is a JPEG for every purpose here.
FORMATS: dict[str, tuple[str, str]] = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "MPO": ("jpg", "image/jpeg"),
    "WEBP": ("webp", "image/webp"),
}
CONTENT_TYPES = {"image/png", "image/jpeg", "image/webp"}
_ORIENTATION = 0x0112


class Rejected(Exception):
    """A file that cannot become a dataset item; the message is the reason users see."""


@dataclass
class VerifiedImage:
    ext: str
    content_type: str
    width: int
    height: int
    size: int
    sha256: str
    data: BinaryIO  # what to store, positioned at 0
    reencoded: bool  # True when ``data`` is not the uploaded bytes (orientation applied)
    thumbnail: bytes | None


def file_size(fp: IO[bytes]) -> int:
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    fp.seek(0)
    return size


def check_file_size(size: int) -> None:
    if size == 0:
        raise Rejected("empty file")
    if size > limits.MAX_FILE_BYTES:
        raise Rejected(
            f"file is {size} bytes; the per-file limit is {limits.MAX_FILE_BYTES} bytes"
        )


def sha256_of(fp: IO[bytes]) -> str:
    """Hash in chunks so a large file never sits whole in memory."""
    fp.seek(0)
    digest = stream_sha256(fp)
    fp.seek(0)
    return digest


def _check_pixels(width: int, height: int) -> None:
    pixels = width * height
    if pixels > limits.MAX_PIXELS:
        raise Rejected(
            f"image is {width}x{height} = {pixels} pixels, over the limit of "
            f"{limits.MAX_PIXELS} pixels (refused as a possible decompression bomb)"
        )
    if max(width, height) > limits.MAX_SIDE:
        raise Rejected(f"image is {width}x{height}; the longest side may be {limits.MAX_SIDE}")


def _open(fp: IO[bytes]) -> Image.Image:
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(fp)
    except UnidentifiedImageError as exc:
        raise Rejected("not a recognised image (PNG, JPEG or WebP expected)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected(f"refused as a decompression bomb: {exc}") from exc
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise Rejected(f"corrupt image: {exc}") from exc
    if im.format not in FORMATS:
        raise Rejected(f"unsupported image format {im.format}; use PNG, JPEG or WebP")
    # Header-only so far: refuse oversize images before decoding a single pixel.
    _check_pixels(*im.size)
    return im


def _decode(im: Image.Image) -> None:
    try:
        im.load()
    except Exception as exc:  # truncated data, bad CRC, broken huffman tables ...
        raise Rejected(f"corrupt or truncated image: {exc}") from exc


def _reoriented(im: Image.Image, fmt: str) -> tuple[Image.Image, BinaryIO] | None:
    """The upright image re-encoded, or None when it needs no change."""
    orientation = im.getexif().get(_ORIENTATION, 1)
    if orientation in (None, 1):
        return None
    upright = ImageOps.exif_transpose(im)
    if upright is None:
        return None
    exif = upright.getexif()
    exif.pop(_ORIENTATION, None)
    out = tempfile.SpooledTemporaryFile(max_size=8 * limits.MB)
    save_fmt = "JPEG" if fmt == "MPO" else fmt
    opts: dict[str, object] = {"exif": exif.tobytes()}
    if icc := im.info.get("icc_profile"):
        opts["icc_profile"] = icc
    if save_fmt == "JPEG":
        opts.update(quality=95, subsampling=0)
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
    elif save_fmt == "WEBP":
        opts.update(lossless=bool(im.info.get("lossless")), quality=95)
    upright.save(out, save_fmt, **opts)
    out.seek(0)
    return upright, out  # type: ignore[return-value]


def make_thumbnail(im: Image.Image) -> bytes | None:
    """A small WebP for grids. Odd modes (16-bit, CMYK, palette) are converted first; a
    thumbnail that still cannot be made is not a reason to refuse the image."""
    try:
        has_alpha = "A" in im.getbands() or "transparency" in im.info
        thumb = im.convert("RGBA" if has_alpha else "RGB")
        thumb.thumbnail((limits.THUMB_SIZE, limits.THUMB_SIZE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        thumb.save(out, "WEBP", quality=limits.THUMB_QUALITY, method=4)
        return out.getvalue()
    except Exception:
        return None


def verify_image(fp: BinaryIO, size: int | None = None) -> VerifiedImage:
    """Decode ``fp`` for real and describe what should be stored; raises ``Rejected``."""
    check_file_size(file_size(fp) if size is None else size)
    with _open(fp) as im:
        fmt = str(im.format)
        _decode(im)
        ext, content_type = FORMATS[fmt]
        turned = _reoriented(im, fmt)
        if turned is None:
            thumb = make_thumbnail(im)
            width, height = im.size
            data, reencoded = fp, False
        else:
            upright, data = turned
            width, height = upright.size
            thumb = make_thumbnail(upright)
            reencoded = True
    stored_size = file_size(data)
    if reencoded:
        check_file_size(stored_size)
    return VerifiedImage(
        ext=ext, content_type=content_type, width=width, height=height, size=stored_size,
        sha256=sha256_of(data), data=data, reencoded=reencoded, thumbnail=thumb,
    )
