"""Atelier's training library: textual inversion, LoRA, DoRA and pivotal tuning.

A pure library driven through callbacks (no database, Celery or HTTP). This package and its
config/template modules import without torch so the API can validate requests; the modules that
train import torch themselves.
"""
