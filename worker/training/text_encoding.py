"""Prompt encoding for SD1.5 and SDXL, with a cache for frozen text encoders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import CLIPTokenizer


@dataclass
class TextConditioning:
    """UNet conditioning: prompt embeddings and (SDXL) the pooled text embedding."""

    prompt_embeds: torch.Tensor
    pooled: torch.Tensor | None


class PromptEncoder:
    """Encodes captions exactly as the diffusers pipelines encode prompts.

    SD1.5: the last hidden state. SDXL: both encoders' penultimate hidden states side by side
    and the second encoder's projected pooled output.
    """

    def __init__(
        self,
        tokenizers: Sequence[CLIPTokenizer],
        text_encoders: Sequence[torch.nn.Module],
        device: torch.device,
        max_cache_entries: int = 4096,
    ) -> None:
        self.tokenizers = list(tokenizers)
        self.text_encoders = list(text_encoders)
        self.device = device
        self._sdxl = len(self.text_encoders) == 2
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._max_cache = max_cache_entries

    def _token_ids(self, tokenizer: CLIPTokenizer, captions: Sequence[str]) -> torch.Tensor:
        ids = tokenizer(
            list(captions),
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return ids.to(self.device, non_blocking=True)

    def encode(self, captions: Sequence[str]) -> TextConditioning:
        """Run the text encoder(s); keeps the autograd graph when they are trained."""
        if not self._sdxl:
            ids = self._token_ids(self.tokenizers[0], captions)
            return TextConditioning(self.text_encoders[0](ids)[0], None)
        hidden: list[torch.Tensor] = []
        pooled: torch.Tensor | None = None
        for tokenizer, encoder in zip(self.tokenizers, self.text_encoders, strict=True):
            output = encoder(self._token_ids(tokenizer, captions), output_hidden_states=True)
            hidden.append(output.hidden_states[-2])
            pooled = output[0]
        return TextConditioning(torch.cat(hidden, dim=-1), pooled)

    @torch.no_grad()
    def encode_cached(self, captions: Sequence[str]) -> TextConditioning:
        """Encode with a per-caption memo; only valid while the encoders are frozen."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._cache))
        if missing:
            fresh = self.encode(missing)
            if len(self._cache) + len(missing) > self._max_cache:
                self._cache.clear()  # shuffled captions can be unbounded; keep memory flat
            for i, caption in enumerate(missing):
                pooled = None if fresh.pooled is None else fresh.pooled[i]
                self._cache[caption] = (fresh.prompt_embeds[i], pooled)
        entries = [self._cache[c] for c in captions]
        embeds = torch.stack([e[0] for e in entries])
        pooled_list = [e[1] for e in entries]
        pooled = None if pooled_list[0] is None else torch.stack(pooled_list)  # type: ignore[arg-type]
        return TextConditioning(embeds, pooled)
