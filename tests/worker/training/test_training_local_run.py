"""`atelier train CONFIG.yaml` support: YAML + dataset folder -> checkpoints on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from app.cli.main import cli
from worker.training.local_run import load_dataset_folder, run_config_file


def test_dataset_folder_with_txt_captions_and_jsonl(tmp_path: Path, make_dataset: Any) -> None:
    folder = tmp_path / "txt"
    make_dataset(folder, captions=False)
    (folder / "red-0.txt").write_text("a red square\n")
    examples = load_dataset_folder(folder)
    assert len(examples) == 4 and examples[0].caption == "a red square"
    assert examples[1].caption is None

    (folder / "data.jsonl").write_text(json.dumps({"image": "red-1.png", "text": "hi"}) + "\n")
    examples = load_dataset_folder(folder)
    assert [(e.image_path.name, e.caption) for e in examples] == [("red-1.png", "hi")]


def test_atelier_train_command(
    tmp_path: Path, tiny_models: dict[str, Path], make_dataset: Any, make_config: Any
) -> None:
    make_dataset(tmp_path / "images")
    config = make_config("lora", "sd15", max_train_steps=2, validation_prompts=["sks"])
    config.update(model=str(tiny_models["sd15"]), dataset="images")
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    # Through the real `atelier train` command, as a user runs it.
    result = CliRunner().invoke(cli, ["train", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoints" / "step-000002" / "lora.safetensors").exists()
    assert (out / "validation" / "step-000000" / "p0-0.webp").exists()


def test_run_config_file_needs_model_and_dataset(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("type: lora\narchitecture: sd15\n")
    with pytest.raises(ValueError, match="model"):
        run_config_file(path, tmp_path / "out")
