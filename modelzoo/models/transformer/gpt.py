"""GPT: the decoder-only causal language model (Radford et al., 2019), with a KV cache
for generation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import check_tokens, token_inputs
from modelzoo.layers.attention import KVCache
from modelzoo.layers.checkpointing import GradCheckpointing, run_block
from modelzoo.layers.helpers import model_name
from modelzoo.layers.positional import LearnedPositionalEmbedding
from modelzoo.models.transformer.layers import EncoderLayer, init_bert_style
from modelzoo.registry import register_model

__all__ = ["GPT", "GPTConfig", "LMOutput"]

_GPT2_PAPER = "Radford et al., Language Models are Unsupervised Multitask Learners, OpenAI 2019"


class LMOutput(NamedTuple):
    """What a language model returns: ``logits`` (B, T, vocab_size), and the mean
    next-token cross-entropy ``loss`` when targets were given (else None)."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


@dataclass
class GPTConfig:
    """The shape of a GPT, and the one place its defaults are written.

    ``GPT.from_config(config)`` builds it; ``GPT``'s keyword arguments are these fields
    with these defaults (a test keeps them equal), and ``model.config`` holds them.
    """

    vocab_size: int = 256  # token ids; 256 is byte level, 50257 is GPT-2's BPE
    max_len: int = 128  # context window: the number of learned positions
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads per block; must divide d_model
    d_model: int = 64  # width of the residual stream
    d_ff: int | None = None  # feed-forward hidden width; None means 4 * d_model
    drop_rate: float = 0.0  # dropout on embeddings and on each residual branch (no head dropout)
    attn_drop_rate: float = 0.0  # dropout on attention weights
    tie_embeddings: bool = True  # the output projection reuses the token embedding matrix


class GPT(GradCheckpointing, nn.Module):
    """A decoder-only causal language model with learned positions (GPT-2).

    ``model(tokens)`` returns ``LMOutput(logits, loss=None)``;
    ``model(tokens, targets)`` adds the cross-entropy between ``logits`` and
    ``targets`` (B, T), usually the tokens shifted left by one; ids of -100 in
    ``targets`` are ignored (PyTorch's default ``ignore_index``). The output is
    always an ``LMOutput``, so code never has to check what it got.

    Args: the fields of ``GPTConfig``, which ``self.config`` holds.
    """

    # The defaults are read from GPTConfig so that they are written once.
    def __init__(
        self,
        vocab_size: int = GPTConfig.vocab_size,
        max_len: int = GPTConfig.max_len,
        num_layers: int = GPTConfig.num_layers,
        num_heads: int = GPTConfig.num_heads,
        d_model: int = GPTConfig.d_model,
        d_ff: int | None = GPTConfig.d_ff,
        drop_rate: float = GPTConfig.drop_rate,
        attn_drop_rate: float = GPTConfig.attn_drop_rate,
        tie_embeddings: bool = GPTConfig.tie_embeddings,
    ) -> None:
        super().__init__()
        self.config = GPTConfig(
            vocab_size=vocab_size,
            max_len=max_len,
            num_layers=num_layers,
            num_heads=num_heads,
            d_model=d_model,
            d_ff=d_ff,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            tie_embeddings=tie_embeddings,
        )
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.tok_embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = LearnedPositionalEmbedding(max_len, d_model)
        self.drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(
            EncoderLayer(
                d_model,
                num_heads,
                d_ff or 4 * d_model,
                proj_drop=drop_rate,
                attn_drop=attn_drop_rate,
                act_layer=nn.GELU,
                norm_first=True,
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(init_bert_style)
        # GPT-2 scales the residual projections by 1/sqrt(2 * layers) so that the residual
        # stream's variance does not grow with depth.
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp.fc2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * num_layers))
        if tie_embeddings:
            self.head.weight = self.tok_embed.weight

    @classmethod
    def from_config(cls, config: GPTConfig) -> GPT:
        return cls(**asdict(config))

    def new_kv_cache(self) -> list[KVCache]:
        """An empty cache, one per block, for ``forward(..., kv_cache=...)``."""
        return [KVCache() for _ in self.blocks]

    def forward(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        kv_cache: list[KVCache] | None = None,
    ) -> LMOutput:
        """Next-token logits for token ids (B, T).

        Args:
            tokens: token ids, at most ``max_len`` per row.
            targets: the ids each position should predict (B, T); adds the loss.
            kv_cache: from ``new_kv_cache()``; ``tokens`` then continue the
                positions already in the cache, and their keys and values are
                added to it (inference only).

        Raises:
            InputShapeError: ids outside the vocabulary, or more positions than ``max_len``.
        """
        name = model_name(self, "gpt")
        offset = len(kv_cache[0]) if kv_cache else 0
        check_tokens(tokens, model=name, vocab_size=self.vocab_size, max_len=self.max_len)
        # Without a cache check_tokens has checked the length already.
        if offset and offset + tokens.shape[1] > self.max_len:
            raise InputShapeError(
                f"{name} takes at most max_len={self.max_len} positions; the cache holds "
                f"{offset} and {tokens.shape[1]} more were given. Start a new cache with the "
                f"last {self.max_len - tokens.shape[1]} tokens, or use generate(), which crops."
            )
        x = self.drop(self.pos_embed(self.tok_embed(tokens), offset))
        if kv_cache is None and self.grad_checkpointing_active():
            # A cache is filled in place, which a recomputation would repeat: never checkpointed.
            for block in self.blocks:
                x = run_block(block, x, is_causal=True, checkpointing=True)
        else:
            for i, block in enumerate(self.blocks):
                x = block(x, is_causal=True, kv_cache=kv_cache[i] if kv_cache else None)
        logits = self.head(self.norm(x))  # (B, T, V)
        if targets is None:
            return LMOutput(logits)
        if targets.shape != tokens.shape:
            raise InputShapeError(
                f"{name} expects targets of the tokens' shape {tuple(tokens.shape)}; got "
                f"{tuple(targets.shape)}."
            )
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return LMOutput(logits, loss)

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue each prompt row by ``max_new_tokens`` tokens.

        The model runs in eval mode for the call (its mode is restored after).
        Once a sequence outgrows ``max_len``, each step conditions on its last
        ``max_len`` tokens; since learned positions then shift, the cache is
        rebuilt at those steps, so the cached path gives exactly what full
        recomputation gives.

        Args:
            prompt: token ids (B, T0), T0 >= 1; a prompt longer than ``max_len``
                is cropped to its last ``max_len`` tokens for conditioning.
            max_new_tokens: tokens to add.
            temperature: divides the logits; 0 picks the most likely token (greedy).
            top_k: sample only among the ``top_k`` most likely tokens.
            use_cache: reuse keys and values of earlier positions (faster; same result).
            generator: random generator for sampling, for reproducible output.

        Returns:
            The prompt followed by the new tokens, (B, T0 + max_new_tokens).
        """
        name = model_name(self, "gpt")
        check_tokens(prompt, model=name, vocab_size=self.vocab_size)
        if prompt.shape[1] == 0:
            raise InputShapeError(f"{name}.generate needs a prompt of at least one token per row.")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0 is greedy); got {temperature}")
        was_training = self.training
        self.eval()
        try:
            tokens = prompt
            cache: list[KVCache] | None = None
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits = self(tokens[:, -self.max_len :]).logits
                elif cache is None or tokens.shape[1] > self.max_len:
                    cache = self.new_kv_cache()
                    logits = self(tokens[:, -self.max_len :], kv_cache=cache).logits
                else:
                    logits = self(tokens[:, len(cache[0]) :], kv_cache=cache).logits
                next_token = _sample(logits[:, -1], temperature, top_k, generator)
                tokens = torch.cat([tokens, next_token], dim=1)
        finally:
            self.train(was_training)
        return tokens


def _sample(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One token id per row (B, 1) from last-position logits (B, V)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


# --- registration ----------------------------------------------------------------------


def _register_lm(**kwargs: Any) -> Any:
    return register_model(
        family="transformer",
        task="language_modeling",
        inputs=token_inputs,
        paper=_GPT2_PAPER,
        **kwargs,
    )


@_register_lm()
def gpt_nano(*, vocab_size: int = 256, max_len: int = 128, **kwargs: Any) -> GPT:
    """4 layers, 4 heads, width 64, byte-level: a model to test and to overfit (0.2M).

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(vocab_size=vocab_size, max_len=max_len, num_layers=4, num_heads=4, d_model=64)
    return GPT(**dict(model_args, **kwargs))


@_register_lm()
def gpt_mini(*, vocab_size: int = 256, max_len: int = 256, **kwargs: Any) -> GPT:
    """minGPT's gpt-mini: 6 layers, 6 heads, width 192, byte-level (2.7M).

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size, max_len=max_len, num_layers=6, num_heads=6, d_model=192
    )
    return GPT(**dict(model_args, **kwargs))


@_register_lm()
def gpt2_small(*, vocab_size: int = 50257, max_len: int = 1024, **kwargs: Any) -> GPT:
    """GPT-2 124M: 12 layers, 12 heads, width 768, 1024 positions, tied embeddings.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size,
        max_len=max_len,
        num_layers=12,
        num_heads=12,
        d_model=768,
        drop_rate=0.1,
        attn_drop_rate=0.1,
    )
    return GPT(**dict(model_args, **kwargs))
