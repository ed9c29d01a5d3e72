"""LoRA and DoRA concept models."""
