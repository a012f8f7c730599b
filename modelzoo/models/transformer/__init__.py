"""Transformers for sequences: encoder classifiers, decoder-only LMs and encoder-decoders.

Vaswani et al., "Attention Is All You Need" (NeurIPS 2017): the encoder-decoder
and its layers. Radford et al., "Language Models are Unsupervised Multitask
Learners" (OpenAI 2019): the GPT-2 decoder-only language model.

All attention goes through ``F.scaled_dot_product_attention`` (see
``modelzoo.layers.attention``). Padding masks follow PyTorch's convention: a
boolean (B, T) tensor, True where a position is padding and must be ignored.

Three model classes:

* ``TransformerEncoderClassifier``: token embedding + positions, a stack of
  encoder layers (pre- or post-norm), CLS or mean pooling, a linear head.
* ``GPT``: a causal language model; ``model(tokens, targets=None)`` returns
  ``LMOutput(logits, loss)`` and ``generate`` decodes with a KV cache.
* ``TransformerSeq2Seq``: the encoder-decoder with shared embeddings and a
  tied output projection; ``generate`` does greedy and beam search.

All three take ``set_grad_checkpointing(True)``: each layer is recomputed in backward
instead of storing its activations (training only; see ``modelzoo.layers.checkpointing``).

The modules: ``layers`` (the encoder and decoder layers), ``encoder``, ``gpt`` and
``seq2seq`` (one model class each, with its registered builders).
"""

from __future__ import annotations

from modelzoo.models.transformer.encoder import TransformerEncoderClassifier
from modelzoo.models.transformer.gpt import GPT, GPTConfig, LMOutput
from modelzoo.models.transformer.layers import DecoderLayer, EncoderLayer
from modelzoo.models.transformer.seq2seq import SearchOutput, TransformerSeq2Seq

__all__ = [
    "EncoderLayer",
    "DecoderLayer",
    "TransformerEncoderClassifier",
    "GPTConfig",
    "GPT",
    "LMOutput",
    "SearchOutput",
    "TransformerSeq2Seq",
]
