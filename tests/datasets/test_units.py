"""Pure helpers: names, zip safety, image verification, caption operations (no database)."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from app.datasets import limits, zipsafe
from app.datasets.captions import apply_op, normalize_caption
from app.datasets.images import Rejected, verify_image
from app.datasets.names import CaptionMatcher, clean_filename, export_names
from tests.datasets.helpers import image_bytes, make_zip


def _item(id: str, filename: str, content_type: str = "image/png") -> Any:
    return SimpleNamespace(id=id, filename=filename, content_type=content_type)


def test_clean_filename() -> None:
    assert clean_filename("C:\\Users\\me\\cat.png") == "cat.png"
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("a/./b/../c.png", keep_dirs=True) == "a/b/c.png"
    assert clean_filename("bad\x00name\n.png") == "badname.png"
    assert clean_filename("") == "unnamed"
    long = clean_filename("x" * 400 + ".jpeg")
    assert len(long) == 255 and long.endswith(".jpeg")


def test_export_names_are_unique_per_stem_and_use_real_extension() -> None:
    items = [_item("1", "a.png"), _item("2", "A.jpg", "image/jpeg"), _item("3", "data.png"),
             _item("4", "x.png", "image/webp"), _item("5", "a-2.png")]
    names = export_names(items)
    assert names == {"1": "a.png", "2": "A-2.jpg", "3": "data-2.png", "4": "x.webp",
                     "5": "a-2-2.png"}
    matcher = CaptionMatcher(items)
    assert matcher.find("A-2.txt") is items[1] and matcher.find("x.webp") is items[3]
    assert matcher.find("folder/x.png") is items[3]
    assert matcher.find("nothing.png") is None


def test_zip_classification() -> None:
    def kind(name: str) -> str:
        return zipsafe.classify(zipfile.ZipInfo(name))

    assert kind("a/b.png") == zipsafe.FILE
    assert kind("a/b.TXT") == zipsafe.CAPTION
    assert kind("sub/data.jsonl") == zipsafe.JSONL
    assert kind("x/y.tar.gz") == zipsafe.ARCHIVE
    for junk in ("__MACOSX/a/._b.png", "a/.DS_Store", ".git/config", "x/Thumbs.db"):
        assert kind(junk) == zipsafe.JUNK, junk
    for unsafe in ("../a.png", "a/../../b.png", "/etc/x.png", "C:/x.png", "..\\x.png"):
        assert kind(unsafe) == zipsafe.UNSAFE, unsafe
    assert kind("dir/") == zipsafe.DIR


def test_zip_entry_with_lying_header_never_expands_past_the_limit() -> None:
    data = make_zip({"big.png": b"\x01" * 200_000})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("big.png")
        info.file_size = 10  # the header claims 10 bytes
        with pytest.raises(Rejected):
            zipsafe.extract(zf, info, 1000)


def test_image_limits_and_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_SIDE", 100)
    with pytest.raises(Rejected, match="longest side"):
        verify_image(io.BytesIO(image_bytes("PNG", (101, 4))))
    for mode in ("CMYK", "I;16", "P", "LA", "1"):
        out = io.BytesIO()
        im = Image.new(mode, (30, 10))
        im.save(out, "JPEG" if mode == "CMYK" else "PNG")
        verified = verify_image(io.BytesIO(out.getvalue()))
        assert (verified.width, verified.height) == (30, 10)
        assert verified.thumbnail is not None, mode
        assert Image.open(io.BytesIO(verified.thumbnail)).format == "WEBP"


def test_caption_operations() -> None:
    assert normalize_caption("  ") is None and normalize_caption(" x ") == "x"
    assert apply_op(None, "prepend", text="sks") == "sks"
    assert apply_op("a cat", "prepend", text="sks", separator=", ") == "sks, a cat"
    assert apply_op("a cat", "append", text="4k") == "a cat 4k"
    assert apply_op("a cat", "replace", find="a cat", replace="") is None
    assert apply_op("a cat", "clear") is None
