"""Named training presets per method and architecture (no torch).

Served by `GET /v1/training-templates`; a template's `defaults` plus its `type` and
`architecture` form a complete, valid config (`Template.config()`), which the user may override.
Resolutions are written for the architecture's native size and scaled to the chosen base model's
(`resolution_for`); embedding templates set no placeholder token (the job name gives one).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.training.common_config import Architecture

TemplateType = Literal["textual_inversion", "lora", "dora", "pivotal"]


class Template(BaseModel):
    """A named preset of config defaults for one method and architecture."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="Stable identifier, e.g. 'sdxl-lora-style'.")
    name: str = Field(description="Human-readable name.")
    type: TemplateType = Field(description="Training method.")
    architecture: Architecture = Field(description="Base model family.")
    description: str = Field(description="When to use it.")
    defaults: dict[str, Any] = Field(description="Config fields this preset sets.")

    def config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The full config dict: defaults, then `overrides`, with type and architecture."""
        return {
            **self.defaults,
            **(overrides or {}),
            "type": self.type,
            "architecture": self.architecture,
        }


NATIVE_RESOLUTION: dict[str, int] = {"sd15": 512, "sdxl": 1024}
"""Each architecture's usual native size; a base model may have its own (the tiny demo ones)."""
MAX_RESOLUTION_FACTOR = 2
"""Resolutions above this multiple of a base model's native size are refused: the attention
cost grows with the fourth power of the side and the model was never trained that large."""
_RESOLUTION = NATIVE_RESOLUTION


def resolution_for(template_resolution: int, architecture: str, native: int) -> int:
    """A template's resolution (written for the architecture's native size) on a base model
    whose native size is `native`: the same fraction of it, a multiple of 8."""
    scaled = template_resolution * native // NATIVE_RESOLUTION[architecture]
    return max(16, scaled // 8 * 8)


def resolution_problem(resolution: int, native: int, base_model: str) -> str | None:
    """Why `resolution` is refused on a base model of native size `native`, else None."""
    limit = native * MAX_RESOLUTION_FACTOR
    if resolution <= limit:
        return None
    return (f"Resolution {resolution} px is far above the {native} px base model "
            f"'{base_model}' was made for (at most {limit} px): training would be very slow "
            f"and learn little. Use {native} px or less.")


def placeholder_from_name(name: str) -> str:
    """A placeholder token derived from the job name: 'My Cat!' -> '<my-cat>'."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())
    return f"<{slug[:30].strip('-') or 'concept'}>"


def default_validation_prompts(config: dict[str, Any]) -> list[str]:
    """Prompts for a job given none, built from its trigger so every job has images to compare
    (a step-0 row and one per checkpoint): the placeholder token, else the caption prefix."""
    token = config.get("placeholder_token") if config.get("type") in (
        "textual_inversion", "pivotal") else None
    if token:
        if config.get("caption_templates") == "style":
            return [f"a painting in the style of {token}", f"a landscape in the style of {token}"]
        return [f"a photo of {token}", f"a close-up photo of {token}"]
    prefix = (config.get("caption_prefix") or "").strip()
    if prefix:
        return [prefix, f"{prefix}, in a different setting"]
    return ["a photo", "a painting"]


def _lora_templates(arch: Architecture) -> list[Template]:
    res = _RESOLUTION[arch]
    label = "SD 1.5" if arch == "sd15" else "SDXL"
    common = {"resolution": res, "aspect_ratio_buckets": True, "min_snr_gamma": 5.0}
    return [
        Template(
            key=f"{arch}-lora-style",
            name=f"{label} LoRA — style",
            type="lora",
            architecture=arch,
            description="An artistic style from 20–100 varied images with descriptive captions.",
            defaults={
                **common,
                "rank": 16,
                "alpha": 8,
                "learning_rate": 1e-4,
                "max_train_steps": 2000,
                "train_batch_size": 2,
                "caption_dropout": 0.05,
                "random_flip": True,
                "lr_scheduler": "cosine",
                "lr_warmup_steps": 100,
            },
        ),
        Template(
            key=f"{arch}-lora-subject",
            name=f"{label} LoRA — subject / character",
            type="lora",
            architecture=arch,
            description="A person or character from 10–30 images; captions start with a "
            "trigger word.",
            defaults={
                **common,
                "rank": 32,
                "alpha": 16,
                "learning_rate": 1e-4,
                "max_train_steps": 1500,
                "caption_prefix": "sks person",
                "train_text_encoder": True,
                "text_encoder_learning_rate": 5e-5,
                "lr_scheduler": "constant_with_warmup",
                "lr_warmup_steps": 50,
            },
        ),
        Template(
            key=f"{arch}-lora-object",
            name=f"{label} LoRA — object",
            type="lora",
            architecture=arch,
            description="A product or object from 5–20 images, shown from several angles.",
            defaults={
                **common,
                "rank": 16,
                "alpha": 16,
                "learning_rate": 1e-4,
                "max_train_steps": 1000,
                "caption_prefix": "sks object",
                "random_flip": True,
            },
        ),
        Template(
            key=f"{arch}-lora-quick-test",
            name=f"{label} LoRA — quick test",
            type="lora",
            architecture=arch,
            description="A short run to check a dataset end to end in minutes.",
            defaults={
                "resolution": res // 2,
                "rank": 4,
                "learning_rate": 5e-4,
                "max_train_steps": 100,
                "save_every_n_steps": 50,
                "validate_every_n_steps": 50,
                "num_validation_images": 1,
                "validation_inference_steps": 20,
            },
        ),
        Template(
            key=f"{arch}-dora-subject",
            name=f"{label} DoRA — subject / character",
            type="dora",
            architecture=arch,
            description="Weight-decomposed LoRA: closer to full fine-tuning at a low rank.",
            defaults={
                **common,
                "rank": 16,
                "alpha": 16,
                "learning_rate": 1e-4,
                "max_train_steps": 1500,
                "caption_prefix": "sks person",
                "lr_warmup_steps": 50,
            },
        ),
    ]


def _embedding_templates(arch: Architecture) -> list[Template]:
    res = _RESOLUTION[arch]
    label = "SD 1.5" if arch == "sd15" else "SDXL"
    return [
        Template(
            key=f"{arch}-ti-object",
            name=f"{label} embedding — object",
            type="textual_inversion",
            architecture=arch,
            description="A new word for an object or subject, from 5–20 images.",
            defaults={
                "resolution": res,
                "num_vectors": 4,
                "initial_phrase": "object",
                "caption_templates": "object",
                "learning_rate": 5e-3,
                "max_train_steps": 2000,
                "lr_warmup_steps": 100,
            },
        ),
        Template(
            key=f"{arch}-ti-style",
            name=f"{label} embedding — style",
            type="textual_inversion",
            architecture=arch,
            description="A new word for a visual style, from 20–100 images.",
            defaults={
                "resolution": res,
                "num_vectors": 8,
                "initial_phrase": "painting",
                "caption_templates": "style",
                "learning_rate": 5e-3,
                "max_train_steps": 3000,
                "random_flip": True,
                "lr_warmup_steps": 100,
            },
        ),
        Template(
            key=f"{arch}-pivotal-character",
            name=f"{label} pivotal — character",
            type="pivotal",
            architecture=arch,
            description="A character: a new token and a LoRA learning against it together; "
            "most faithful, exports a LoRA and an embedding.",
            defaults={
                "resolution": res,
                "aspect_ratio_buckets": True,
                "num_vectors": 2,
                "initial_phrase": "person",
                "rank": 16,
                "alpha": 16,
                "learning_rate": 1e-4,
                "embedding_learning_rate": 1e-3,
                "embedding_train_fraction": 0.5,
                "max_train_steps": 1500,
                "lr_warmup_steps": 50,
            },
        ),
    ]


TEMPLATES: list[Template] = [
    template
    for arch in ("sd15", "sdxl")
    for template in (*_lora_templates(arch), *_embedding_templates(arch))
]
"""Every preset, for both architectures."""

_BY_KEY = {template.key: template for template in TEMPLATES}


def get_template(key: str) -> Template:
    """The template with `key`; raises KeyError naming the known keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown training template {key!r}; known: {sorted(_BY_KEY)}") from None
