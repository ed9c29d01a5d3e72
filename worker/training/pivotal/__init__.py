"""Pivotal tuning: a new token and a LoRA trained together."""
