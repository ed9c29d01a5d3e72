"""Load errors are CaptionerLoadError with a message an operator can act on, no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from worker.captioning import CaptionerLoadError, load_captioner


def _message(source: str, kind: str) -> str:
    with pytest.raises(CaptionerLoadError) as info:
        load_captioner(source, kind)  # type: ignore[arg-type]
    text = str(info.value)
    assert text and "Traceback" not in text and "\n" not in text
    return text


def test_missing_folder(tmp_path: Path) -> None:
    assert "does not exist" in _message(str(tmp_path / "nope"), "sentence")
    assert "does not exist" in _message("./no/such/folder", "tags")


def test_wrong_kind(tiny_folders: dict[str, Path]) -> None:
    as_tags = _message(str(tiny_folders["sentence"]), "tags")
    assert "not a tags captioner" in as_tags and "looks like a sentence captioner" in as_tags
    as_sentence = _message(str(tiny_folders["tags"]), "sentence")
    assert "not a sentence captioner" in as_sentence and "looks like a tags" in as_sentence
    assert "unknown captioner kind" in _message(str(tiny_folders["tags"]), "poem")


def test_hub_id_not_in_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    message = _message("someone/not-cached-captioner", "sentence")
    assert "not in this worker's hub cache" in message
    assert "valid hub id" in _message("bad id with spaces", "tags")


def test_hub_id_in_cache_loads(
    tiny_folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hub cache's own layout: refs/main names the snapshot holding the files.
    repo = tmp_path / "models--atelier--tiny-tagger"
    shutil.copytree(tiny_folders["tags"], repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    tagger = load_captioner("atelier/tiny-tagger", "tags", device="cpu")
    assert tagger.caption([Image.new("RGB", (9, 9))])[0]


def test_not_a_blip_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert "sentence captioners must be one of: blip" in _message(str(tmp_path), "sentence")
    (tmp_path / "config.json").write_text("{not json")
    assert "not valid JSON" in _message(str(tmp_path), "sentence")


def test_broken_blip_folder(tiny_folders: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_folders["sentence"], broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    assert "could not be loaded as a BLIP captioner" in _message(str(broken), "sentence")


def test_tag_table_must_match_the_model(tiny_folders: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "tagger"
    shutil.copytree(tiny_folders["tags"], folder)
    lines = (folder / "selected_tags.csv").read_text().splitlines()
    (folder / "selected_tags.csv").write_text("\n".join(lines[:-2]) + "\n")
    assert "scores 18 tags but selected_tags.csv lists 16" in _message(str(folder), "tags")
    (folder / "selected_tags.csv").write_text("tag_id,label\n1,x\n")
    assert "lacks the column(s) name, category" in _message(str(folder), "tags")
    (folder / "model.onnx").write_bytes(b"garbage")
    shutil.copy(tiny_folders["tags"] / "selected_tags.csv", folder)
    assert "model.onnx could not be loaded" in _message(str(folder), "tags")


def test_cuda_refused_clearly_without_a_gpu(tiny_folders: dict[str, Path]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(CaptionerLoadError, match="CUDA is not available"):
        load_captioner(str(tiny_folders["sentence"]), "sentence", device="cuda")
