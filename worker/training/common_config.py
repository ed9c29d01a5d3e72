"""Options shared by every training method (no torch: the API validates requests with these)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Architecture = Literal["sd15", "sdxl"]
OptimizerName = Literal["adamw", "prodigy"]
SchedulerName = Literal[
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
]
MixedPrecision = Literal["no", "fp16", "bf16"]


class ConfigError(ValueError):
    """A rule across fields, pinned to the field to change so the API can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class CommonTrainingConfig(BaseModel):
    """Fields every method shares. Subclasses add `type`, `learning_rate` and their options."""

    model_config = ConfigDict(extra="forbid")

    architecture: Architecture = Field(
        description="Base model family: 'sd15' (Stable Diffusion 1.5) or 'sdxl'."
    )

    # --- data -----------------------------------------------------------------------------
    resolution: int = Field(
        default=512,
        ge=16,
        le=2048,
        multiple_of=8,
        description="Training resolution in pixels (side of the square, or the area of the "
        "aspect-ratio buckets). 512 suits SD1.5, 1024 suits SDXL.",
    )
    center_crop: bool = Field(
        default=True,
        description="Crop the centre of each resized image; false crops at a random position.",
    )
    random_flip: bool = Field(
        default=False,
        description="Mirror images horizontally at random (not for asymmetric subjects/text).",
    )
    aspect_ratio_buckets: bool = Field(
        default=False,
        description="Group images by aspect ratio and train at near-native shapes instead of "
        "square crops.",
    )
    caption_dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Probability of training an image with an empty caption.",
    )
    shuffle_caption_delimiter: str | None = Field(
        default=None,
        min_length=1,
        description="If set (e.g. ','), caption parts split on it are shuffled every time the "
        "image is seen; the trigger word stays first.",
    )
    keep_data_in_memory: bool = Field(
        default=True,
        description="Keep decoded, resized images in RAM instead of re-reading them every epoch.",
    )

    # --- optimisation ---------------------------------------------------------------------
    max_train_steps: int = Field(
        default=1000, ge=1, le=1_000_000, description="Number of optimizer steps to train."
    )
    train_batch_size: int = Field(default=1, ge=1, le=256, description="Images per batch.")
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=256, description="Batches accumulated into one optimizer step."
    )
    optimizer: OptimizerName = Field(
        default="adamw",
        description="'adamw', or 'prodigy' (adapts its own step size; use learning rates "
        "around 1.0 with it).",
    )
    weight_decay: float = Field(default=1e-2, ge=0.0, description="Optimizer weight decay.")
    lr_scheduler: SchedulerName = Field(
        default="constant_with_warmup", description="Learning-rate schedule."
    )
    lr_warmup_steps: int = Field(
        default=0, ge=0, description="Steps over which the learning rate ramps up from 0."
    )
    max_grad_norm: float | None = Field(
        default=1.0, gt=0.0, description="Clip gradients to this norm; null disables clipping."
    )
    min_snr_gamma: float | None = Field(
        default=5.0,
        gt=0.0,
        description="Min-SNR loss weighting gamma (5 is the paper's value); null disables it.",
    )
    noise_offset: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Noise offset (e.g. 0.05) helps learning very dark/bright images.",
    )
    seed: int = Field(
        default=0, ge=0, le=2**31 - 1, description="Seed for data order, noise and validation."
    )
    mixed_precision: MixedPrecision = Field(
        default="bf16",
        description="'bf16' or 'fp16' computation on a GPU (frozen weights stored in that "
        "precision, trained weights in fp32); ignored on CPU, which always uses fp32.",
    )
    gradient_checkpointing: bool = Field(
        default=False,
        description="Recompute activations in the backward pass: less memory, ~25% slower.",
    )
    cache_vae_latents: bool | None = Field(
        default=None,
        description="Encode every image with the VAE once before training. null = automatic "
        "(on unless random cropping makes each epoch's crop different).",
    )
    cache_text_encoder_outputs: bool | None = Field(
        default=None,
        description="Reuse text-encoder outputs for captions already seen. Only possible while "
        "the text encoders are frozen; null = automatic (on whenever they are frozen).",
    )
    use_sdpa: bool = Field(
        default=True,
        description="Use PyTorch scaled-dot-product (flash/memory-efficient) attention.",
    )

    # --- validation and saving ------------------------------------------------------------
    validation_prompts: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Prompts rendered at step 0 and every `validate_every_n_steps`.",
    )
    negative_prompt: str | None = Field(
        default=None, description="Negative prompt used for every validation image."
    )
    num_validation_images: int = Field(
        default=2, ge=1, le=8, description="Images per validation prompt."
    )
    validate_every_n_steps: int | None = Field(
        default=250,
        ge=1,
        description="Render validation images every N steps (and always at the last step); "
        "null = only at step 0 and the last step.",
    )
    save_every_n_steps: int | None = Field(
        default=250,
        ge=1,
        description="Save a checkpoint and a resumable state every N steps (and always at the "
        "last step); null = only at the last step.",
    )
    validation_inference_steps: int = Field(
        default=30, ge=1, le=150, description="Denoising steps per validation image."
    )
    validation_guidance_scale: float = Field(
        default=7.5, ge=0.0, le=30.0, description="Classifier-free guidance of validation images."
    )

    @model_validator(mode="after")
    def check_common(self) -> Self:
        if self.lr_warmup_steps > self.max_train_steps:
            raise ConfigError(
                "lr_warmup_steps",
                f"the warm-up (lr_warmup_steps: {self.lr_warmup_steps}) is longer than the "
                f"training (max_train_steps: {self.max_train_steps}), so the learning rate "
                f"would never reach its value; train at least {self.lr_warmup_steps} steps, "
                f"or set a shorter warm-up, e.g. \"lr_warmup_steps\": "
                f"{max(self.max_train_steps // 10, 0)}.",
            )
        if self.cache_vae_latents and not self.center_crop:
            raise ConfigError(
                "cache_vae_latents",
                "cache_vae_latents needs center_crop: true — with random cropping every epoch "
                "sees a different crop, so latents cannot be computed once. Turn one of them off."
            )
        return self

    def text_encoder_trained(self) -> bool:
        """Whether any text-encoder weight (LoRA or embedding) is trained by this method."""
        return False

    def vae_cache_enabled(self) -> bool:
        """Resolved value of `cache_vae_latents` (None means automatic)."""
        if self.cache_vae_latents is None:
            return self.center_crop
        return self.cache_vae_latents
