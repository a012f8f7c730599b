"""The encoder-decoder Transformer (Vaswani et al., 2017) with shared embeddings, a tied
output projection, and greedy and beam-search generation."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import LayerType, check_tokens, get_act_layer, get_norm_layer
from modelzoo.layers.attention import KVCache, causal_mask
from modelzoo.layers.checkpointing import GradCheckpointing, run_block
from modelzoo.layers.helpers import model_name
from modelzoo.layers.positional import SinusoidalPositionalEncoding
from modelzoo.models.transformer.layers import (
    VASWANI_PAPER,
    DecoderLayer,
    EncoderLayer,
    check_padding_mask,
    key_mask,
)
from modelzoo.registry import TensorSpec, register_model

__all__ = ["SearchOutput", "TransformerSeq2Seq"]


class SearchOutput(NamedTuple):
    """What greedy and beam search return: the generated ``tokens`` (B, L) and the
    ``scores`` (B,) by which they were chosen: the log-probability of each row up to and
    including its end token (divided by ``length ** length_penalty`` for beam search)."""

    tokens: torch.Tensor
    scores: torch.Tensor


class TransformerSeq2Seq(GradCheckpointing, nn.Module):
    """The Transformer encoder-decoder, with one vocabulary for source and target.

    ``forward(src, tgt_in, src_padding_mask=None, tgt_padding_mask=None)``
    returns next-token logits (B, T_tgt, vocab_size) for the target input
    (teacher forcing: ``tgt_in`` starts with ``bos_id``). Padding masks are
    (B, T) bool, True at padding. ``generate`` decodes greedily or with beam
    search and a KV cache.

    Args:
        vocab_size: token ids, shared by source and target.
        d_model: model width.
        num_layers: encoder layers (and decoder layers unless ``num_decoder_layers``).
        num_heads: attention heads per layer.
        d_ff: feed-forward hidden width.
        max_len: longest source or target sequence accepted.
        num_decoder_layers: decoder layers; None means ``num_layers``.
        drop_rate: dropout on the embeddings and on every residual branch (the only dropout
            of a model without a classifier head; see ``transformer_seq2seq``).
        attn_drop_rate: dropout on attention weights.
        act_layer: feed-forward activation.
        norm_layer: normalization type.
        norm_first: pre-norm layers with a final norm after each stack (trains
            more easily), or post-norm layers as in the paper.
        tie_embeddings: the output projection reuses the embedding matrix.
        pad_id: padding id, written after an end token by ``generate``.
        bos_id: the id that starts every target sequence.
        eos_id: the id that ends a target sequence.
    """

    def __init__(
        self,
        vocab_size: int = 256,
        d_model: int = 128,
        num_layers: int = 3,
        num_heads: int = 4,
        d_ff: int = 512,
        max_len: int = 128,
        num_decoder_layers: int | None = None,
        drop_rate: float = 0.1,
        attn_drop_rate: float = 0.0,
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.LayerNorm,
        norm_first: bool = True,
        tie_embeddings: bool = True,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        for what, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            if not 0 <= value < vocab_size:
                raise ConfigError(f"{what}={value} must be a token id in [0, {vocab_size})")
        act, norm = get_act_layer(act_layer), get_norm_layer(norm_layer)
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.embed_scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_enc = SinusoidalPositionalEncoding(d_model, max_len)
        self.drop = nn.Dropout(drop_rate)
        layer_args: dict[str, Any] = dict(
            proj_drop=drop_rate,
            attn_drop=attn_drop_rate,
            act_layer=act,
            norm_layer=norm,
            norm_first=norm_first,
        )
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, num_heads, d_ff, **layer_args) for _ in range(num_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, num_heads, d_ff, **layer_args)
            for _ in range(num_decoder_layers or num_layers)
        )
        self.encoder_norm = norm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = norm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        # Unit-variance embeddings after the sqrt(d_model) scale.
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        if tie_embeddings:
            self.head.weight = self.embed.weight

    def _name(self) -> str:
        return model_name(self, "transformer_seq2seq")

    def new_kv_cache(self) -> list[tuple[KVCache, KVCache]]:
        """Empty (self-attention, cross-attention) caches, one pair per decoder layer."""
        return [(KVCache(), KVCache()) for _ in self.decoder]

    def encode(
        self, src: torch.Tensor, src_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder output (B, S, d_model) for source ids (B, S)."""
        name = self._name()
        check_tokens(src, model=f"{name} (src)", vocab_size=self.vocab_size, max_len=self.max_len)
        if src_padding_mask is not None:
            check_padding_mask(src_padding_mask, src, name, "src_padding_mask")
        x = self.drop(self.pos_enc(self.embed(src) * self.embed_scale))
        attn_mask = key_mask(src_padding_mask)
        checkpointing = self.grad_checkpointing_active()
        for layer in self.encoder:
            x = run_block(layer, x, attn_mask, checkpointing=checkpointing)
        return self.encoder_norm(x)

    def decode(
        self,
        tgt_in: torch.Tensor,
        memory: torch.Tensor,
        src_padding_mask: torch.Tensor | None = None,
        tgt_padding_mask: torch.Tensor | None = None,
        kv_cache: list[tuple[KVCache, KVCache]] | None = None,
    ) -> torch.Tensor:
        """Next-token logits (B, T, vocab_size) for target ids (B, T) given the encoder output.

        Args:
            tgt_in: target ids; with ``kv_cache``, the positions after those cached.
            memory: ``encode(src)``.
            src_padding_mask: the source padding mask given to ``encode``.
            tgt_padding_mask: target padding (True = padding); not with ``kv_cache``.
            kv_cache: from ``new_kv_cache()``, for incremental decoding.
        """
        name = self._name()
        offset = len(kv_cache[0][0]) if kv_cache else 0
        # Without a cache check_tokens checks the length (one check FX tracing can record).
        max_len = None if offset else self.max_len
        check_tokens(tgt_in, model=f"{name} (tgt_in)", vocab_size=self.vocab_size, max_len=max_len)
        total = offset + tgt_in.shape[1]
        if offset and total > self.max_len:
            cached = f" after {offset} cached" if offset else ""
            raise InputShapeError(
                f"{name} takes target sequences of at most max_len={self.max_len} steps; got "
                f"{total} in shape {tuple(tgt_in.shape)}{cached}. Truncate the target, or "
                f"build the model with max_len>={total}."
            )
        self_mask = None
        if tgt_padding_mask is not None:
            if kv_cache is not None:
                raise ConfigError("tgt_padding_mask cannot be combined with a kv_cache")
            check_padding_mask(tgt_padding_mask, tgt_in, name, "tgt_padding_mask")
            T = tgt_in.shape[1]
            self_mask = causal_mask(T, T, tgt_in.device) & key_mask(tgt_padding_mask)
        memory_mask = key_mask(src_padding_mask)
        x = self.drop(self.pos_enc(self.embed(tgt_in) * self.embed_scale, offset))
        if kv_cache is None and self.grad_checkpointing_active():
            # A cache is filled in place, which a recomputation would repeat: never checkpointed.
            for layer in self.decoder:
                x = run_block(layer, x, memory, self_mask, memory_mask, checkpointing=True)
        else:
            for i, layer in enumerate(self.decoder):
                x = layer(x, memory, self_mask, memory_mask, kv_cache[i] if kv_cache else None)
        return self.head(self.decoder_norm(x))

    def forward(
        self,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        src_padding_mask: torch.Tensor | None = None,
        tgt_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-token logits (B, T_tgt, vocab_size) for each target input position."""
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt_in, memory, src_padding_mask, tgt_padding_mask)

    def _special_ids(
        self, bos_id: int | None, eos_id: int | None, pad_id: int | None
    ) -> tuple[int, int, int]:
        return (
            self.bos_id if bos_id is None else bos_id,
            self.eos_id if eos_id is None else eos_id,
            self.pad_id if pad_id is None else pad_id,
        )

    def _check_gen_len(self, max_len: int) -> None:
        if not 1 <= max_len <= self.max_len:
            raise ConfigError(
                f"max_len={max_len} generated tokens is outside [1, {self.max_len}], the "
                f"target lengths {self._name()} was built for; build it with a larger max_len."
            )

    @torch.no_grad()
    def greedy_search(
        self,
        src: torch.Tensor,
        max_len: int,
        *,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        src_padding_mask: torch.Tensor | None = None,
    ) -> SearchOutput:
        """The most likely next token at every step; see ``generate``."""
        self._check_gen_len(max_len)
        bos_id, eos_id, pad_id = self._special_ids(bos_id, eos_id, pad_id)
        memory = self.encode(src, src_padding_mask)
        B = src.shape[0]
        cache = self.new_kv_cache()
        last = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(B, dtype=torch.bool, device=src.device)
        scores = torch.zeros(B, device=src.device)
        out = []
        for _ in range(max_len):
            logits = self.decode(last, memory, src_padding_mask, kv_cache=cache)[:, -1]
            logp = F.log_softmax(logits.float(), dim=-1)  # (B, V)
            token = logp.argmax(dim=-1)
            scores = scores + logp.gather(1, token[:, None])[:, 0].masked_fill(finished, 0.0)
            token = token.masked_fill(finished, pad_id)  # (B,)
            out.append(token)
            finished = finished | (token == eos_id)
            last = token[:, None]
            if bool(finished.all()):
                break
        return SearchOutput(torch.stack(out, dim=1), scores)

    @torch.no_grad()
    def beam_search(
        self,
        src: torch.Tensor,
        max_len: int,
        beam_size: int = 4,
        *,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        src_padding_mask: torch.Tensor | None = None,
        length_penalty: float = 1.0,
    ) -> SearchOutput:
        """Keep the ``beam_size`` most likely partial targets at every step; see ``generate``.

        A finished hypothesis stays in the beam and extends with padding at no
        cost, so hypotheses compete on their total log-probability while
        searching; the search stops when every hypothesis has ended or after
        ``max_len`` steps, and returns per source the hypothesis with the best
        log-probability divided by ``length ** length_penalty``.
        """
        self._check_gen_len(max_len)
        bos_id, eos_id, pad_id = self._special_ids(bos_id, eos_id, pad_id)
        if beam_size < 1:
            raise ConfigError(f"beam_size must be at least 1; got {beam_size}")
        B, K, V, device = src.shape[0], beam_size, self.vocab_size, src.device
        memory = self.encode(src, src_padding_mask).repeat_interleave(K, dim=0)  # (B*K, S, C)
        if src_padding_mask is not None:
            src_padding_mask = src_padding_mask.repeat_interleave(K, dim=0)
        cache = self.new_kv_cache()
        # Only the first beam is live at the start, or the K beams would be K copies.
        scores = torch.full((B, K), float("-inf"), device=device)
        scores[:, 0] = 0.0
        last = torch.full((B * K, 1), bos_id, dtype=torch.long, device=device)
        hyps = torch.empty(B * K, 0, dtype=torch.long, device=device)
        finished = torch.zeros(B * K, dtype=torch.bool, device=device)
        lengths = torch.zeros(B * K, device=device)
        pad_only = torch.full((V,), float("-inf"), device=device)
        pad_only[pad_id] = 0.0
        batch_base = torch.arange(B, device=device)[:, None] * K  # (B, 1)
        for _ in range(max_len):
            logits = self.decode(last, memory, src_padding_mask, kv_cache=cache)[:, -1]
            logp = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
            logp = torch.where(finished[:, None], pad_only, logp)
            candidates = (scores.view(B * K, 1) + logp).view(B, K * V)
            scores, index = candidates.topk(K, dim=1)  # (B, K)
            parent = (batch_base + index // V).view(-1)  # (B*K,) rows of the previous step
            token = (index % V).view(-1)
            lengths = lengths[parent] + (~finished[parent]).float()
            finished = finished[parent] | (token == eos_id)
            hyps = torch.cat([hyps[parent], token[:, None]], dim=1)
            # Cross-attention caches need no reordering: a parent is a beam of the same source.
            for self_cache, _ in cache:
                self_cache.reorder(parent)
            last = token[:, None]
            if bool(finished.all()):
                break
        normalized = scores / lengths.view(B, K).clamp_min(1.0) ** length_penalty
        best = batch_base.view(-1) + normalized.argmax(dim=1)  # (B,)
        # The best hypotheses may have ended before the search stopped: drop the columns
        # past the longest of them, which hold only padding.
        tokens = hyps[best, : int(lengths[best].max())]
        return SearchOutput(tokens, normalized.view(-1)[best])

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        max_len: int,
        beam_size: int = 1,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        *,
        src_padding_mask: torch.Tensor | None = None,
        length_penalty: float = 1.0,
    ) -> torch.Tensor:
        """Decode a target for each source row: greedy for ``beam_size=1``, else beam search.

        The model runs in eval mode for the call (its mode is restored after).

        Args:
            src: source ids (B, S).
            max_len: the most tokens to generate per row (at most the model's ``max_len``).
            beam_size: hypotheses kept per source.
            bos_id: start id fed first; default the model's ``bos_id``.
            eos_id: end id; a row stops after it. Default the model's ``eos_id``.
            pad_id: written after a row's end; default the model's ``pad_id``.
            src_padding_mask: source padding (True = padding).
            length_penalty: beam search ranks finished hypotheses by
                log-probability / length ** length_penalty (0: raw log-probability).

        Returns:
            Generated ids (B, L), L <= max_len, without the start id; each row ends
            with ``eos_id`` followed by ``pad_id``, unless it reached ``max_len``.
            ``greedy_search`` and ``beam_search`` also give the scores.
        """
        was_training = self.training
        self.eval()
        try:
            ids = dict(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
            if beam_size == 1:
                greedy = self.greedy_search(src, max_len, src_padding_mask=src_padding_mask, **ids)
                return greedy.tokens
            return self.beam_search(
                src,
                max_len,
                beam_size,
                src_padding_mask=src_padding_mask,
                length_penalty=length_penalty,
                **ids,
            ).tokens
        finally:
            self.train(was_training)


# --- registration ----------------------------------------------------------------------


def _seq2seq_inputs(model: nn.Module, seq_len: int = 16) -> tuple[TensorSpec, ...]:
    seq_len = min(seq_len, model.max_len)
    return (
        TensorSpec((seq_len,), torch.long, 0, model.vocab_size, name="src"),
        TensorSpec((seq_len,), torch.long, 0, model.vocab_size, name="tgt_in"),
    )


def _seq2seq_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, min(16, model.max_len), model.vocab_size)


def _register_seq2seq(**kwargs: Any) -> Any:
    return register_model(
        family="transformer",
        task="seq2seq",
        inputs=_seq2seq_inputs,
        output_shape=_seq2seq_output,
        paper=VASWANI_PAPER,
        **kwargs,
    )


@_register_seq2seq()
def transformer_seq2seq(
    *, vocab_size: int = 256, max_len: int = 128, **kwargs: Any
) -> TransformerSeq2Seq:
    """3+3 pre-norm layers of width 128, byte-level vocabulary with pad/bos/eos = 0/1/2.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size,
        max_len=max_len,
        d_model=128,
        num_layers=3,
        num_heads=4,
        d_ff=512,
        norm_first=True,
    )
    return TransformerSeq2Seq(**dict(model_args, **kwargs))


@_register_seq2seq()
def transformer_base(
    *, vocab_size: int = 37000, max_len: int = 1024, **kwargs: Any
) -> TransformerSeq2Seq:
    """The paper's base model: 6+6 post-norm layers, d_model 512, 8 heads, d_ff 2048,
    dropout 0.1, sinusoidal positions, shared embeddings and output projection.

    The vocabulary defaults to 37000, the shared source-target BPE vocabulary
    of the paper's WMT 2014 English-German experiments (63M parameters with it).

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size,
        max_len=max_len,
        d_model=512,
        num_layers=6,
        num_heads=8,
        d_ff=2048,
        drop_rate=0.1,
        act_layer=nn.ReLU,
        norm_first=False,
        tie_embeddings=True,
    )
    return TransformerSeq2Seq(**dict(model_args, **kwargs))
