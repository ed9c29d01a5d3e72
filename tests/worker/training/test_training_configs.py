"""Configs and templates: validation messages, defaults, torch-free imports."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from worker.training.config import parse_config
from worker.training.lora.config import LoraConfig
from worker.training.pivotal.config import PivotalConfig
from worker.training.templates import TEMPLATES, get_template
from worker.training.textual_inversion.config import TextualInversionConfig


def _error_text(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        parse_config(data)
    return str(info.value)


def test_each_type_parses_to_its_model() -> None:
    assert isinstance(parse_config({"type": "lora", "architecture": "sd15"}), LoraConfig)
    dora = parse_config({"type": "dora", "architecture": "sdxl"})
    assert isinstance(dora, LoraConfig) and dora.type == "dora"
    ti = parse_config({"type": "textual_inversion", "architecture": "sd15"})
    assert isinstance(ti, TextualInversionConfig)
    assert isinstance(parse_config({"type": "pivotal", "architecture": "sdxl"}), PivotalConfig)


def test_documented_defaults() -> None:
    lora = parse_config({"type": "lora", "architecture": "sd15"})
    ti = parse_config({"type": "textual_inversion", "architecture": "sd15"})
    assert lora.learning_rate == 1e-4 and ti.learning_rate == 5e-3
    assert lora.resolved_alpha() == lora.rank
    for model in (LoraConfig, TextualInversionConfig, PivotalConfig):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "lora", "architecture": "sd15", "lerning_rate": 1}, "lerning_rate"),
        ({"type": "lora", "architecture": "sd15", "rank": 0}, "greater than or equal to 1"),
        ({"type": "lora", "architecture": "sd15", "alpha": 0}, "greater than 0"),
        ({"type": "lora", "architecture": "sd15", "alpha": -2}, "alpha"),
        ({"type": "lora", "architecture": "sd99"}, "architecture"),
        ({"type": "lora"}, "architecture"),
        ({"type": "gan", "architecture": "sd15"}, "textual_inversion"),
        (
            {"type": "lora", "architecture": "sd15", "max_train_steps": 10, "lr_warmup_steps": 50},
            "(lr_warmup_steps: 50) is longer than the training (max_train_steps: 10)",
        ),
        (
            {
                "type": "lora",
                "architecture": "sd15",
                "train_text_encoder": True,
                "cache_text_encoder_outputs": True,
            },
            "cannot be combined with train_text_encoder",
        ),
        (
            {"type": "lora", "architecture": "sd15", "text_encoder_learning_rate": 1e-5},
            "train_text_encoder is false",
        ),
        (
            {
                "type": "lora",
                "architecture": "sd15",
                "center_crop": False,
                "cache_vae_latents": True,
            },
            "cache_vae_latents needs center_crop",
        ),
        (
            {"type": "textual_inversion", "architecture": "sd15", "initial_phrase": "a big cat!"},
            "at most 8 characters",
        ),
        (
            {
                "type": "textual_inversion",
                "architecture": "sd15",
                "initial_phrase": "cat",
                "initializer_token": "cat",
            },
            "either initial_phrase or initializer_token, not both",
        ),
        (
            {"type": "textual_inversion", "architecture": "sd15", "placeholder_token": "my cat"},
            "without spaces",
        ),
        (
            {
                "type": "textual_inversion",
                "architecture": "sd15",
                "cache_text_encoder_outputs": True,
            },
            "embedding being trained lives inside the text encoder",
        ),
        (
            {
                "type": "textual_inversion",
                "architecture": "sd15",
                "caption_templates": "style",
                "shuffle_caption_delimiter": ",",
            },
            "caption_templates: own_captions",
        ),
        (
            {"type": "pivotal", "architecture": "sdxl", "embedding_train_fraction": 1.5},
            "between 0 and 1",
        ),
        (
            {"type": "pivotal", "architecture": "sdxl", "embedding_train_fraction": -0.1},
            "between 0 and 1",
        ),
        (
            {"type": "pivotal", "architecture": "sdxl", "caption_prefix": "photo of sks"},
            "must contain the placeholder token",
        ),
        ({"type": "lora", "architecture": "sd15", "optimizer": "sgd"}, "adamw"),
        ({"type": "lora", "architecture": "sd15", "mixed_precision": "fp8"}, "bf16"),
        ({"type": "lora", "architecture": "sd15", "caption_dropout": 1.0}, "caption_dropout"),
    ],
)
def test_rejects_impossible_configs(data: dict[str, Any], expected: str) -> None:
    assert expected in _error_text(data)


def test_unknown_key_message_names_the_key() -> None:
    text = _error_text({"type": "dora", "architecture": "sdxl", "rnak": 8})
    assert "rnak" in text and "Extra inputs are not permitted" in text


def test_templates_all_validate() -> None:
    keys = [t.key for t in TEMPLATES]
    assert len(keys) == len(set(keys))
    for template in TEMPLATES:
        config = parse_config(template.config())
        assert config.type == template.type and config.architecture == template.architecture
        assert isinstance(template.model_dump(mode="json"), dict)
    kinds = {(t.type, t.architecture) for t in TEMPLATES}
    for arch in ("sd15", "sdxl"):
        for kind in ("lora", "dora", "textual_inversion", "pivotal"):
            assert (kind, arch) in kinds


def test_template_overrides_and_lookup() -> None:
    template = get_template("sdxl-lora-style")
    assert parse_config(template.config({"rank": 4})).rank == 4
    with pytest.raises(KeyError, match="unknown training template"):
        get_template("nope")
    assert isinstance(template, BaseModel)


def test_config_and_templates_import_without_torch() -> None:
    code = (
        "import sys\n"
        "import worker.training, worker.training.config, worker.training.templates\n"
        "import worker.training.types, worker.training.callbacks\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
