"""make-tiny -> load -> caption real PIL images, through the same code real captioners use."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.worker.captioning.conftest import odd_images
from worker.captioning import Captioner, load_captioner

KINDS = ("sentence", "tags")


@pytest.mark.parametrize("kind", KINDS)
def test_one_clean_caption_per_image(tiny_captioners: dict[str, Captioner], kind: str) -> None:
    images = odd_images()
    captions = tiny_captioners[kind].caption(images)
    assert len(captions) == len(images)
    for text in captions:
        assert text and text == text.strip() and "  " not in text
        assert "[" not in text, text  # no [SEP]/[PAD]/[DEC] left in
    assert tiny_captioners[kind].kind == kind


@pytest.mark.parametrize("kind", KINDS)
def test_captions_are_deterministic(
    tiny_folders: dict[str, Path], tiny_captioners: dict[str, Captioner], kind: str
) -> None:
    images = odd_images()
    first = tiny_captioners[kind].caption(images, max_length=8)
    assert tiny_captioners[kind].caption(images, max_length=8) == first
    reloaded = load_captioner(str(tiny_folders[kind]), kind, device="cpu")  # type: ignore[arg-type]
    assert reloaded.caption(images, max_length=8) == first


@pytest.mark.parametrize("kind", KINDS)
def test_captions_depend_on_the_image(tiny_captioners: dict[str, Captioner], kind: str) -> None:
    captions = tiny_captioners[kind].caption(odd_images())
    assert len(set(captions)) > 1, captions


def test_no_images_no_captions(tiny_captioners: dict[str, Captioner]) -> None:
    for captioner in tiny_captioners.values():
        assert captioner.caption([]) == []


def test_sentence_max_length_counts_tokens(
    tiny_folders: dict[str, Path], tiny_captioners: dict[str, Captioner]
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_folders["sentence"]))
    images = odd_images()[:3]
    lengths: dict[int | None, list[int]] = {}
    for limit in (1, 4, 12, None):
        captions = tiny_captioners["sentence"].caption(images, max_length=limit)
        lengths[limit] = [len(tokenizer(t, add_special_tokens=False)["input_ids"])
                          for t in captions]
        assert all(1 <= n <= (limit or 40) for n in lengths[limit]), (limit, captions)
    # The tiny model goes on until the limit stops it, so the limit is what cut it.
    assert max(lengths[12]) > max(lengths[4]) > max(lengths[1]) == 1


def test_tags_max_length_counts_tags(tiny_captioners: dict[str, Captioner]) -> None:
    images = odd_images()[:3]
    full = tiny_captioners["tags"].caption(images)
    assert all(len(t.split(", ")) > 2 for t in full)
    two = tiny_captioners["tags"].caption(images, max_length=2)
    # The most confident tags are kept, in the same order.
    assert two == [", ".join(t.split(", ")[:2]) for t in full]


def test_tags_formatting(tiny_captioners: dict[str, Captioner]) -> None:
    (text,) = tiny_captioners["tags"].caption([Image.new("RGB", (40, 60), (200, 50, 50))])
    tags = text.split(", ")
    assert "long hair" in tags and "looking at viewer" in tags  # underscores -> spaces
    assert "^_^" in tags  # a kaomoji keeps its underscore
    assert "original character" in tags  # a character tag over its 0.85 threshold
    assert "another character" not in tags
    assert not {"general", "sensitive", "questionable", "explicit"} & set(tags)  # no ratings
    assert all("_" not in tag for tag in tags if tag != "^_^")


@pytest.mark.parametrize("kind", KINDS)
def test_max_length_below_one_is_refused(tiny_captioners: dict[str, Captioner], kind: str) -> None:
    with pytest.raises(ValueError, match="max_length"):
        tiny_captioners[kind].caption([Image.new("RGB", (8, 8))], max_length=0)


def test_tagger_batches_like_single_images(tiny_captioners: dict[str, Captioner]) -> None:
    images = odd_images()
    batched = tiny_captioners["tags"].caption(images)
    assert batched == [tiny_captioners["tags"].caption([image])[0] for image in images]
