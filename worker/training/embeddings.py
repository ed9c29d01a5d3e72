"""New-token embeddings trained for textual inversion and pivotal tuning."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import CLIPTokenizer

from worker.training.captions import placeholder_tokens
from worker.training.textual_inversion.config import EmbeddingOptions


class TrainedTokenEmbedding(torch.nn.Module):
    """A frozen token-embedding table whose newest rows come from a small trainable tensor.

    Training only `vectors` (instead of the whole vocabulary with a restore-after-step trick)
    keeps gradients and optimizer state tiny.
    """

    def __init__(self, base: torch.nn.Embedding, first_id: int, vectors: torch.Tensor) -> None:
        super().__init__()
        self.base = base
        self.first_id = first_id
        self.vectors = torch.nn.Parameter(vectors.float().clone())

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.base(input_ids)
        count = self.vectors.shape[0]
        is_new = ((input_ids >= self.first_id) & (input_ids < self.first_id + count)).unsqueeze(-1)
        local = (input_ids - self.first_id).clamp(0, count - 1)
        return torch.where(is_new, self.vectors.to(out.dtype)[local], out)


def _initial_vectors(
    options: EmbeddingOptions, tokenizer: CLIPTokenizer, table: torch.Tensor
) -> torch.Tensor:
    count = options.num_vectors
    if options.initializer_token is not None:
        ids = tokenizer.encode(options.initializer_token, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(
                f"initializer_token {options.initializer_token!r} is {len(ids)} tokens for this "
                "model's tokenizer; use a single common word or initial_phrase instead"
            )
        return table[ids[0]].expand(count, -1).clone()
    if options.initial_phrase is not None:
        ids = tokenizer.encode(options.initial_phrase, add_special_tokens=False)
        rows = table[ids]
        if len(ids) >= count:
            return torch.stack([chunk.mean(0) for chunk in torch.tensor_split(rows, count)])
        return rows[torch.arange(count) % len(ids)].clone()
    return table.mean(0, keepdim=True).expand(count, -1).clone()


class NewToken:
    """Adds the placeholder token(s) to every tokenizer/text encoder and trains their vectors."""

    def __init__(
        self,
        options: EmbeddingOptions,
        tokenizers: Sequence[CLIPTokenizer],
        text_encoders: Sequence[torch.nn.Module],
    ) -> None:
        self.options = options
        self.tokens = placeholder_tokens(options.placeholder_token, options.num_vectors)
        self.embeddings: list[TrainedTokenEmbedding] = []
        seen: set[int] = set()
        for tokenizer, encoder in zip(tokenizers, text_encoders, strict=True):
            if id(tokenizer) not in seen:
                self._add_tokens(tokenizer)
                seen.add(id(tokenizer))
            self.embeddings.append(self._wrap(tokenizer, encoder))

    def _add_tokens(self, tokenizer: CLIPTokenizer) -> None:
        added = tokenizer.add_tokens(self.tokens)
        if added != len(self.tokens):
            raise ValueError(
                f"the placeholder token {self.options.placeholder_token!r} (or one of "
                f"{self.tokens}) already exists in the vocabulary; choose a new word such as "
                "'<my-concept>'"
            )

    def _wrap(self, tokenizer: CLIPTokenizer, encoder: torch.nn.Module) -> TrainedTokenEmbedding:
        # transformers 5 flattened CLIPTextModel (no `.text_model`); support both layouts.
        embeddings = getattr(encoder, "text_model", encoder).embeddings
        base: torch.nn.Embedding = embeddings.token_embedding
        table = base.weight.detach().float()
        vectors = _initial_vectors(self.options, tokenizer, table)
        first_id = tokenizer.convert_tokens_to_ids(self.tokens[0])
        new_ids = slice(first_id, first_id + len(self.tokens))
        # Some checkpoints pad the table beyond the tokenizer; never shrink it.
        rows = max(len(tokenizer), table.shape[0])
        grown = torch.nn.Embedding(rows, table.shape[1], dtype=base.weight.dtype)
        with torch.no_grad():
            grown.weight[: table.shape[0]] = base.weight
            grown.weight[new_ids] = vectors.to(base.weight.dtype)
        grown.to(base.weight.device).requires_grad_(False)
        wrapped = TrainedTokenEmbedding(grown, first_id, vectors.to(base.weight.device))
        embeddings.token_embedding = wrapped
        encoder.config.vocab_size = rows
        return wrapped

    def parameters(self) -> list[torch.nn.Parameter]:
        return [e.vectors for e in self.embeddings]

    def set_trainable(self, trainable: bool) -> None:
        for param in self.parameters():
            param.requires_grad_(trainable)
            if not trainable:
                param.grad = None

    def vectors(self) -> list[torch.Tensor]:
        """The current vectors per text encoder (detached)."""
        return [e.vectors.detach() for e in self.embeddings]

    def state(self) -> dict[str, torch.Tensor]:
        return {f"embedding.{i}": v for i, v in enumerate(self.vectors())}

    @torch.no_grad()
    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        for i, embedding in enumerate(self.embeddings):
            embedding.vectors.copy_(state[f"embedding.{i}"])
