"""Base-model loading and the tiny model builder."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.training.model_loading import load_base_model


def test_tiny_models_load_with_both_architectures(tiny_models: dict[str, Path]) -> None:
    sd15 = load_base_model(str(tiny_models["sd15"]), "sd15")
    assert len(sd15.text_encoders) == 1 and sd15.vae_scale_factor == 8  # like real SD
    sdxl = load_base_model(str(tiny_models["sdxl"]), "sdxl")
    assert len(sdxl.text_encoders) == 2
    assert sdxl.unet.config.addition_embed_type == "text_time"
    assert sum(p.numel() for p in sdxl.unet.parameters()) < 2_000_000


def test_architecture_mismatch_is_explained(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="sdxl-shaped but the config says architecture=sd15"):
        load_base_model(str(tiny_models["sdxl"]), "sd15")


def test_unknown_files_and_ids_fail_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a .safetensors checkpoint"):
        load_base_model(str(bad), "sd15")
    with pytest.raises(Exception):  # noqa: B017 - any "not in the local cache" error
        load_base_model("nobody/no-such-model", "sd15")
