"""Recurrent networks: tanh RNNs, LSTMs and GRUs for classification, language modeling and
sequence-to-sequence translation.

- Elman, "Finding structure in time", Cognitive Science 1990 (the tanh RNN).
- Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 1997; the forget
  gate from Gers, Schmidhuber & Cummins, "Learning to forget", Neural Computation 2000.
- Cho et al., "Learning phrase representations using RNN encoder-decoder for statistical
  machine translation", EMNLP 2014 (the GRU).
- Zaremba, Sutskever & Vinyals, "Recurrent neural network regularization", 2014 (the LM);
  Press & Wolf, "Using the output embedding to improve language models", EACL 2017 (tying).
- Sutskever, Vinyals & Le, "Sequence to sequence learning with neural networks", NeurIPS
  2014; Luong, Pham & Manning, "Effective approaches to attention-based neural machine
  translation", EMNLP 2015 (the attention used here).

Every model runs its recurrence through ``modelzoo.layers.Recurrent``, whose parameters are
named as in ``nn.LSTM``/``nn.GRU``/``nn.RNN``; ``backend="native"`` swaps torch's fused
kernels for the explicit cell equations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers.checks import check_sequence, check_tokens, param_dtype
from modelzoo.layers.helpers import model_name
from modelzoo.layers.recurrent import (
    Recurrent,
    RecurrentState,
    check_lengths,
    detach_state,
    map_state,
)
from modelzoo.layers.specs import TensorSpec, token_inputs
from modelzoo.layers.tracing import graph_leaf
from modelzoo.registry import register_model

__all__ = [
    "LuongAttention",
    "RNNClassifier",
    "RNNLanguageModel",
    "RNNSeq2Seq",
    "RecurrentLMOutput",
    "detach_hidden",
]

_PAPERS = {
    "rnn_tanh": "Elman, Finding structure in time, Cognitive Science 1990",
    "lstm": "Hochreiter & Schmidhuber, Long short-term memory, Neural Computation 1997",
    "gru": "Cho et al., Learning phrase representations using RNN encoder-decoder for "
    "statistical machine translation, EMNLP 2014",
    "lm": "Zaremba et al., Recurrent neural network regularization, arXiv 2014; "
    "Press & Wolf, Using the output embedding to improve language models, EACL 2017",
    "seq2seq": "Sutskever et al., Sequence to sequence learning with neural networks, "
    "NeurIPS 2014; Luong et al., Effective approaches to attention-based neural machine "
    "translation, EMNLP 2015",
}

# Example input lengths of the registrations (kept short so the contract tests stay fast).
_SEQ_LEN = 16
_TGT_LEN = 12

_POOLS = ("last", "mean")


def detach_hidden(hidden: RecurrentState | None) -> RecurrentState | None:
    """Cut the autograd history of a carried state (truncated back-propagation through time).

    Example::

        hidden = None
        for tokens, targets in batches:  # consecutive chunks of the same streams
            out = model(tokens, detach_hidden(hidden))
            loss = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten())
            hidden = out.hidden
    """
    return detach_state(hidden)


@graph_leaf  # reads shapes, which FX symbolic tracing cannot
def _check_same_batch(src: torch.Tensor, tgt_in: torch.Tensor, model: str) -> None:
    if tgt_in.ndim == 2 and src.ndim == 2 and tgt_in.shape[0] != src.shape[0]:
        raise InputShapeError(
            f"{model} expects src (B, S) and tgt_in (B, T) of the same batch size; got shapes "
            f"{tuple(src.shape)} and {tuple(tgt_in.shape)}."
        )


# --- blocks --------------------------------------------------------------------------------


class LuongAttention(nn.Module):
    """Global attention with Luong et al.'s multiplicative "general" score.

    ``score(h_t, m_s) = h_t^T W_a m_s``, ``a_t = softmax_s(score)``, ``c_t = sum_s a_ts m_s``,
    and the attentional state ``h~_t = tanh(W_c [c_t; h_t])``. The score is computed as
    ``(W_a^T h_t) . m_s`` so the memory is not re-projected at every decoding step.

    Args:
        query_size: features of the decoder states.
        memory_size: features of the encoder outputs.
    """

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.score_proj = nn.Linear(query_size, memory_size, bias=False)  # W_a^T
        self.combine = nn.Linear(memory_size + query_size, query_size, bias=False)  # W_c

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from each query step over the memory.

        Args:
            query: decoder states (B, T, query_size).
            memory: encoder outputs (B, S, memory_size).
            mask: (B, S), True at valid memory steps; None when all are valid.

        Returns:
            The attentional states (B, T, query_size) and the weights (B, T, S).
        """
        scores = self.score_proj(query) @ memory.transpose(1, 2)  # (B, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        context = weights @ memory  # (B, T, memory_size)
        return torch.tanh(self.combine(torch.cat([context, query], dim=-1))), weights


class RecurrentLMOutput(NamedTuple):
    """What a recurrent language model returns: logits and the state to carry on.

    (A Transformer LM returns ``modelzoo.models.transformer.LMOutput``, logits and an
    optional loss: it has no state to carry.)
    """

    logits: torch.Tensor  # (B, T, vocab_size): next-token scores at every step
    hidden: RecurrentState  # state after the last step: pass it to the next chunk


# --- classifier ----------------------------------------------------------------------------


class RNNClassifier(nn.Module):
    """A recurrent sequence classifier over token ids or feature sequences.

    Inputs are token ids (B, T) when ``vocab_size`` is set, or features (B, T, input_size)
    when it is 0/None and ``input_size`` is set. ``forward_features`` pools the sequence
    into (B, num_features) with ``num_features = num_directions * hidden_size``: ``"last"``
    takes the top layer's state after each sequence's last valid step (for bidirectional
    layers, concatenated with the backward state after the first step); ``"mean"`` averages
    the outputs over the valid steps. With ``lengths``, a padded sequence gives the same
    result as the sequence alone.

    Args:
        mode: ``"rnn_tanh"``, ``"lstm"`` or ``"gru"``.
        vocab_size: token vocabulary; 0 or None for feature inputs.
        input_size: features per step of feature inputs (only without ``vocab_size``).
        num_classes: output classes; 0 makes the head an identity.
        embed_dim: token embedding size.
        hidden_size: recurrent state size per direction.
        num_layers: stacked recurrent layers.
        bidirectional: also read the sequence backwards.
        drop_rate: dropout between recurrent layers and before the head.
        pool: ``"last"`` or ``"mean"``.
        padding_idx: token id whose embedding is zero and receives no gradient.
        backend: ``"torch"`` (fused kernels) or ``"native"`` (explicit cell equations).
    """

    def __init__(
        self,
        mode: str = "lstm",
        vocab_size: int | None = 256,
        input_size: int | None = None,
        num_classes: int = 2,
        embed_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        drop_rate: float = 0.0,
        pool: str = "last",
        padding_idx: int | None = 0,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        if vocab_size and input_size is not None:
            raise ConfigError(
                f"pass either vocab_size (token inputs) or input_size (feature inputs), not "
                f"both; got vocab_size={vocab_size}, input_size={input_size}"
            )
        if not vocab_size and not input_size:
            raise ConfigError(
                "the classifier needs vocab_size > 0 for token inputs or input_size > 0 for "
                f"feature inputs; got vocab_size={vocab_size}, input_size={input_size}"
            )
        if pool not in _POOLS:
            raise ConfigError(f"unknown pool {pool!r}; use one of {', '.join(_POOLS)}")
        self.vocab_size = vocab_size or 0
        self.input_size = None if vocab_size else input_size
        self.num_classes = num_classes
        self.pool = pool
        self.drop_rate = drop_rate
        if self.vocab_size:
            self.embed: nn.Module = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
            rnn_input = embed_dim
        else:
            self.embed = nn.Identity()
            rnn_input = input_size
        self.rnn = Recurrent(
            mode,
            rnn_input,
            hidden_size,
            num_layers,
            bidirectional=bidirectional,
            dropout=drop_rate if num_layers > 1 else 0.0,  # torch warns about it otherwise
            backend=backend,
        )
        self.num_features = self.rnn.output_size
        self.feature_info: list[dict[str, Any]] = []  # one pooled vector, no feature levels
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        name = model_name(self, f"{self.rnn.cell}_classifier")
        if self.vocab_size:
            check_tokens(x, model=name, vocab_size=self.vocab_size)
            return self.embed(x)
        check_sequence(
            x, model=name, feature_size=self.input_size, dtype=param_dtype(self)
        )  # floats of the model's dtype; token ids need a model built with vocab_size
        return x

    def forward_features(
        self, x: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """Pooled sequence features (B, num_features)."""
        x = self._embed(x)  # (B, T, E)
        out, state = self.rnn(x, lengths)  # out: (B, T, D * H)
        if self.pool == "mean":
            if lengths is None:
                return out.mean(dim=1)
            lengths = torch.as_tensor(lengths, device=out.device)
            # Padded outputs are zero, so the sum covers the valid steps only.
            return out.sum(dim=1) / lengths.to(out.dtype)[:, None]
        h = state[0] if isinstance(state, tuple) else state  # (L * D, B, H)
        top = h[-self.rnn.num_directions :]  # (D, B, H): the last layer, forward first
        return top.transpose(0, 1).reshape(x.shape[0], self.num_features)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """Logits (B, num_classes) for token ids (B, T) or features (B, T, input_size).

        Args:
            x: the padded batch.
            lengths: valid steps per sequence (B,), each in [1, T]; None when all are full.
        """
        return self.forward_head(self.forward_features(x, lengths))


# --- language model ------------------------------------------------------------------------


class RNNLanguageModel(nn.Module):
    """A recurrent language model: embedding, recurrent layers, dropout, linear decoder.

    ``forward`` returns ``RecurrentLMOutput(logits, hidden)``; pass ``hidden`` (through
    ``detach_hidden``) to the next chunk of the same streams for truncated BPTT.

    Args:
        mode: ``"rnn_tanh"``, ``"lstm"`` or ``"gru"``.
        vocab_size: token vocabulary.
        embed_dim: token embedding size.
        hidden_size: recurrent state size.
        num_layers: stacked recurrent layers.
        drop_rate: dropout on the embeddings, between layers and before the decoder.
        tie_weights: share the embedding matrix with the decoder (needs
            ``hidden_size == embed_dim``).
        backend: ``"torch"`` (fused kernels) or ``"native"`` (explicit cell equations).
    """

    def __init__(
        self,
        mode: str = "lstm",
        vocab_size: int = 256,
        embed_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 2,
        drop_rate: float = 0.1,
        tie_weights: bool = True,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        if tie_weights and hidden_size != embed_dim:
            raise ConfigError(
                f"tie_weights=True shares the embedding with the decoder, so hidden_size must "
                f"equal embed_dim; got hidden_size={hidden_size}, embed_dim={embed_dim}. Make "
                "them equal, or pass tie_weights=False."
            )
        self.vocab_size = vocab_size
        self.tie_weights = tie_weights
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.drop = nn.Dropout(drop_rate)
        self.rnn = Recurrent(
            mode,
            embed_dim,
            hidden_size,
            num_layers,
            dropout=drop_rate if num_layers > 1 else 0.0,
            backend=backend,
        )
        self.decoder = nn.Linear(hidden_size, vocab_size)
        self._init_weights()
        if tie_weights:
            self.decoder.weight = self.embed.weight

    def _init_weights(self) -> None:
        # Small uniform embeddings (Zaremba et al.): N(0, 1) rows give a tied decoder
        # logits of a very large scale at the start.
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    detach_hidden = staticmethod(detach_hidden)

    def forward(
        self, tokens: torch.Tensor, hidden: RecurrentState | None = None
    ) -> RecurrentLMOutput:
        """Next-token logits for token ids (B, T), starting from ``hidden`` (zeros if None)."""
        check_tokens(
            tokens, model=model_name(self, f"{self.rnn.cell}_lm"), vocab_size=self.vocab_size
        )
        x = self.drop(self.embed(tokens))  # (B, T, E)
        out, hidden = self.rnn(x, state=hidden)  # (B, T, H)
        return RecurrentLMOutput(self.decoder(self.drop(out)), hidden)

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue token ids ``prompt`` (B, T) by sampling; call ``model.eval()`` first.

        Args:
            prompt: at least one token per sequence.
            max_new_tokens: tokens to add.
            temperature: divides the logits; 0 picks the most likely token (greedy).
            top_k: sample among the k most likely tokens only.
            generator: random source, for reproducible samples.

        Returns:
            The prompt followed by the new tokens, (B, T + max_new_tokens).
        """
        if prompt.ndim != 2 or prompt.shape[1] == 0:
            raise InputShapeError(
                f"generate() expects a prompt of shape (B, T) with T >= 1; got shape "
                f"{tuple(prompt.shape)}."
            )
        tokens, hidden, step_input = [prompt], None, prompt
        for _ in range(max_new_tokens):
            # The carried state holds the whole prefix: feed only the newest token.
            logits, hidden = self(step_input, hidden)
            logits = logits[:, -1].float()  # (B, V)
            if temperature <= 0:
                step_input = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.shape[-1]:
                    kth = logits.topk(top_k, dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = logits.softmax(dim=-1)
                step_input = torch.multinomial(probs, 1, generator=generator)
            tokens.append(step_input)
        return torch.cat(tokens, dim=1)


# --- sequence to sequence ------------------------------------------------------------------


class RNNSeq2Seq(nn.Module):
    """A recurrent encoder-decoder with Luong "general" attention (no input feeding).

    The encoder (optionally bidirectional, each direction ``hidden_size // 2`` wide, so
    its concatenated final states initialize the decoder layer by layer) reads ``src``;
    the decoder runs over the target and each of its states attends over the encoder
    outputs. Without input feeding, teacher-forced training runs the decoder as one fused
    recurrent call over the whole target.

    Token ids ``pad_id``, ``bos_id`` and ``eos_id`` belong to the target vocabulary; the
    source uses ``pad_id`` as its padding too.

    Args:
        mode: ``"rnn_tanh"``, ``"lstm"`` or ``"gru"``.
        vocab_size: source vocabulary (and target vocabulary, unless ``tgt_vocab_size``).
        tgt_vocab_size: target vocabulary; None for ``vocab_size``.
        embed_dim: embedding size of source and target tokens.
        hidden_size: decoder state size (the encoder outputs have the same size).
        num_layers: recurrent layers of the encoder and of the decoder.
        bidirectional: whether the encoder also reads the source backwards.
        drop_rate: dropout on embeddings, between layers and before the output layer.
        pad_id: padding token.
        bos_id: the token that starts every target.
        eos_id: the token that ends a target.
        backend: ``"torch"`` (fused kernels) or ``"native"`` (explicit cell equations).
    """

    def __init__(
        self,
        mode: str = "lstm",
        vocab_size: int = 256,
        tgt_vocab_size: int | None = None,
        embed_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = True,
        drop_rate: float = 0.1,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        tgt_vocab_size = tgt_vocab_size or vocab_size
        if bidirectional and hidden_size % 2:
            raise ConfigError(
                f"a bidirectional encoder splits hidden_size between its two directions, so "
                f"it must be even; got hidden_size={hidden_size}"
            )
        for key, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            if not 0 <= value < min(vocab_size, tgt_vocab_size):
                raise ConfigError(
                    f"{key}={value} must be a token id of both vocabularies, in "
                    f"[0, {min(vocab_size, tgt_vocab_size)})"
                )
        if pad_id == eos_id:
            raise ConfigError(f"pad_id and eos_id must differ; both are {pad_id}")
        self.vocab_size = vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.bidirectional = bidirectional
        dropout = drop_rate if num_layers > 1 else 0.0
        self.src_embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim, padding_idx=pad_id)
        self.encoder = Recurrent(
            mode,
            embed_dim,
            hidden_size // 2 if bidirectional else hidden_size,
            num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            backend=backend,
        )
        self.decoder = Recurrent(
            mode, embed_dim, hidden_size, num_layers, dropout=dropout, backend=backend
        )
        self.attention = LuongAttention(hidden_size, hidden_size)
        self.drop = nn.Dropout(drop_rate)
        self.out = nn.Linear(hidden_size, tgt_vocab_size)

    @property
    def _model_name(self) -> str:
        return model_name(self, f"{self.encoder.cell}_seq2seq")

    def _merge_directions(self, s: torch.Tensor) -> torch.Tensor:
        # (L * 2, B, H / 2) -> (L, B, H): per layer, [forward; backward] features.
        layers, batch = s.shape[0] // 2, s.shape[1]
        return s.view(layers, 2, batch, -1).permute(0, 2, 1, 3).reshape(layers, batch, -1)

    def encode(
        self, src: torch.Tensor, src_lengths: torch.Tensor | Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, RecurrentState]:
        """Encode source ids (B, S).

        Returns:
            The memory (B, S, hidden_size), its mask (B, S) (True at valid steps; None
            without lengths) and the decoder's initial state.
        """
        check_tokens(src, model=f"{self._model_name} (src)", vocab_size=self.vocab_size)
        mask = None
        if src_lengths is not None:
            src_lengths = check_lengths(
                src_lengths, batch_size=src.shape[0], max_len=src.shape[1], model=self._model_name
            ).to(src.device)
            mask = torch.arange(src.shape[1], device=src.device) < src_lengths[:, None]
        memory, state = self.encoder(self.drop(self.src_embed(src)), src_lengths)
        if self.bidirectional:
            state = map_state(state, self._merge_directions)
        return memory, mask, state

    def decode(
        self,
        tgt_in: torch.Tensor,
        state: RecurrentState,
        memory: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, RecurrentState]:
        """Decode target ids (B, T) from ``state``: logits (B, T, tgt_vocab_size) and the state."""
        check_tokens(tgt_in, model=f"{self._model_name} (tgt)", vocab_size=self.tgt_vocab_size)
        out, state = self.decoder(self.drop(self.tgt_embed(tgt_in)), state=state)  # (B, T, H)
        attended, _ = self.attention(out, memory, mask)
        return self.out(self.drop(attended)), state

    def forward(
        self,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        src_lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits.

        Args:
            src: source ids (B, S).
            tgt_in: target ids shifted right, starting with ``bos_id`` (B, T).
            src_lengths: valid source steps (B,); None when no source is padded.

        Returns:
            Logits (B, T, tgt_vocab_size); step t scores the target token after ``tgt_in[:, t]``.
        """
        _check_same_batch(src, tgt_in, self._model_name)
        memory, mask, state = self.encode(src, src_lengths)
        logits, _ = self.decode(tgt_in, state, memory, mask)
        return logits

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        max_len: int = 64,
        beam_size: int = 1,
        src_lengths: torch.Tensor | Sequence[int] | None = None,
        length_penalty: float = 0.0,
    ) -> torch.Tensor:
        """Translate: greedy decoding (``beam_size=1``) or beam search; call ``eval()`` first.

        Args:
            src: source ids (B, S).
            max_len: most target tokens to produce.
            beam_size: hypotheses kept per sequence.
            src_lengths: valid source steps (B,).
            length_penalty: beam search ranks finished hypotheses by log-probability /
                length ** length_penalty (0: raw log-probability, as GNMT's alpha = 0).

        Returns:
            Target ids (B, L), L <= max_len, without ``bos_id``: each row ends at its
            ``eos_id`` (kept) and is filled with ``pad_id`` after it, or runs to max_len.
        """
        if beam_size == 1:
            return self.greedy_search(src, max_len, src_lengths)
        return self.beam_search(src, max_len, beam_size, src_lengths, length_penalty)

    @torch.no_grad()
    def greedy_search(
        self,
        src: torch.Tensor,
        max_len: int = 64,
        src_lengths: torch.Tensor | Sequence[int] | None = None,
    ) -> torch.Tensor:
        """The most likely token at each step; output as in ``generate``."""
        memory, mask, state = self.encode(src, src_lengths)
        token = src.new_full((src.shape[0], 1), self.bos_id)
        finished = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        steps = []
        for _ in range(max_len):
            logits, state = self.decode(token, state, memory, mask)
            token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
            token = token.masked_fill(finished[:, None], self.pad_id)
            steps.append(token)
            finished |= token[:, 0] == self.eos_id
            if bool(finished.all()):
                break
        return torch.cat(steps, dim=1)

    @torch.no_grad()
    def beam_search(
        self,
        src: torch.Tensor,
        max_len: int = 64,
        beam_size: int = 4,
        src_lengths: torch.Tensor | Sequence[int] | None = None,
        length_penalty: float = 0.0,
    ) -> torch.Tensor:
        """Beam search on the summed log-probability; output as in ``generate``.

        A hypothesis that has produced ``eos_id`` keeps its score and competes with the
        open ones. Without a length penalty the search stops when every sequence's best
        hypothesis is finished (open ones can only lose probability); with one, when all
        hypotheses are finished, and the best by log-probability / length **
        ``length_penalty`` is returned. It stops after ``max_len`` steps in any case.
        """
        B, K, V = src.shape[0], beam_size, self.tgt_vocab_size
        if not 1 <= K <= V:
            raise ConfigError(f"beam_size must be in [1, {V}] (the target vocabulary); got {K}")
        memory, mask, state = self.encode(src, src_lengths)
        # Every hypothesis is a row: (B, ...) -> (B * K, ...), the K rows of a sequence adjacent.
        memory = memory.repeat_interleave(K, dim=0)
        mask = None if mask is None else mask.repeat_interleave(K, dim=0)
        state = map_state(state, lambda s: s.repeat_interleave(K, dim=1))
        scores = torch.full((B, K), float("-inf"), device=src.device)
        scores[:, 0] = 0.0  # one live hypothesis at the start, not K copies of it
        finished = torch.zeros(B * K, dtype=torch.bool, device=src.device)
        token = src.new_full((B * K, 1), self.bos_id)
        history = src.new_empty((B * K, 0))
        # A finished hypothesis can only be extended by padding, at no cost.
        pad_only = torch.full((V,), float("-inf"), device=src.device)
        pad_only[self.pad_id] = 0.0
        lengths = torch.zeros(B * K, device=src.device)  # tokens up to and including eos
        for _ in range(max_len):
            logits, state = self.decode(token, state, memory, mask)
            log_probs = logits[:, -1].float().log_softmax(dim=-1)  # (B * K, V)
            log_probs = torch.where(finished[:, None], pad_only, log_probs)
            candidates = (scores.view(B * K, 1) + log_probs).view(B, K * V)
            scores, index = candidates.topk(K, dim=-1)  # (B, K), best first
            origin = (index // V + torch.arange(B, device=src.device)[:, None] * K).view(-1)
            token = (index % V).view(B * K, 1)
            history = torch.cat([history[origin], token], dim=1)
            lengths = lengths[origin] + (~finished[origin]).float()
            finished = finished[origin] | (token[:, 0] == self.eos_id)
            state = map_state(state, lambda s, o=origin: s.index_select(1, o))
            done = finished.all() if length_penalty else finished.view(B, K)[:, 0].all()
            if bool(done):
                break
        if not length_penalty:
            return history.view(B, K, -1)[:, 0]
        normalized = scores / lengths.view(B, K).clamp_min(1.0) ** length_penalty
        best = torch.arange(B, device=src.device) * K + normalized.argmax(dim=1)  # (B,)
        # Columns past the longest chosen hypothesis hold only padding.
        return history[best, : int(lengths[best].max())]


# --- builders ------------------------------------------------------------------------------


def _classifier_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    if model.vocab_size:
        return token_inputs(model, _SEQ_LEN)
    return (TensorSpec((_SEQ_LEN, model.input_size), name="features"),)


def _seq2seq_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    return (
        TensorSpec((_SEQ_LEN,), torch.long, 0, model.vocab_size, name="src"),
        TensorSpec((_TGT_LEN,), torch.long, 0, model.tgt_vocab_size, name="tgt_in"),
    )


def _seq2seq_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, _TGT_LEN, model.tgt_vocab_size)


def _classifier_vocab(vocab_size: int | None, input_size: int | None) -> int | None:
    # Byte-level tokens unless the caller asks for features (input_size) or another vocabulary.
    return 256 if vocab_size is None and input_size is None else vocab_size


def _register_classifier(mode: str) -> Any:
    return register_model(
        family="rnn", task="sequence_classification", inputs=_classifier_inputs, paper=_PAPERS[mode]
    )


@_register_classifier("rnn_tanh")
def rnn_classifier(
    *,
    vocab_size: int | None = None,
    input_size: int | None = None,
    num_classes: int = 2,
    **kwargs: Any,
) -> RNNClassifier:
    """Elman tanh RNN classifier: 128-d embeddings of 256 byte tokens, one layer of 256.

    Pass ``input_size`` instead of ``vocab_size`` for (B, T, input_size) feature inputs.

    Dropout keywords: ``drop_rate`` is dropout before the classifier, and between recurrent
    layers when ``num_layers > 1``.
    """
    model_args = dict(
        mode="rnn_tanh",
        vocab_size=_classifier_vocab(vocab_size, input_size),
        input_size=input_size,
        num_classes=num_classes,
        embed_dim=128,
        hidden_size=256,
        num_layers=1,
    )
    return RNNClassifier(**dict(model_args, **kwargs))


@_register_classifier("gru")
def gru_classifier(
    *,
    vocab_size: int | None = None,
    input_size: int | None = None,
    num_classes: int = 2,
    **kwargs: Any,
) -> RNNClassifier:
    """GRU classifier: 128-d embeddings of 256 byte tokens, one layer of 256.

    Pass ``input_size`` instead of ``vocab_size`` for (B, T, input_size) feature inputs.

    Dropout keywords: ``drop_rate`` is dropout before the classifier, and between recurrent
    layers when ``num_layers > 1``.
    """
    model_args = dict(
        mode="gru",
        vocab_size=_classifier_vocab(vocab_size, input_size),
        input_size=input_size,
        num_classes=num_classes,
        embed_dim=128,
        hidden_size=256,
        num_layers=1,
    )
    return RNNClassifier(**dict(model_args, **kwargs))


@_register_classifier("lstm")
def lstm_classifier(
    *,
    vocab_size: int | None = None,
    input_size: int | None = None,
    num_classes: int = 2,
    **kwargs: Any,
) -> RNNClassifier:
    """LSTM classifier: 128-d embeddings of 256 byte tokens, one layer of 256.

    Pass ``input_size`` instead of ``vocab_size`` for (B, T, input_size) feature inputs.

    Dropout keywords: ``drop_rate`` is dropout before the classifier, and between recurrent
    layers when ``num_layers > 1``.
    """
    model_args = dict(
        mode="lstm",
        vocab_size=_classifier_vocab(vocab_size, input_size),
        input_size=input_size,
        num_classes=num_classes,
        embed_dim=128,
        hidden_size=256,
        num_layers=1,
    )
    return RNNClassifier(**dict(model_args, **kwargs))


def _register_lm() -> Any:
    return register_model(
        family="rnn", task="language_modeling", inputs=token_inputs, paper=_PAPERS["lm"]
    )


@_register_lm()
def gru_lm(*, vocab_size: int = 256, **kwargs: Any) -> RNNLanguageModel:
    """Byte-level GRU LM: 256-d tied embeddings, two layers of 256, dropout 0.1.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings,
    between recurrent layers and before the output layer.
    """
    model_args = dict(
        mode="gru", vocab_size=vocab_size, embed_dim=256, hidden_size=256, num_layers=2
    )
    return RNNLanguageModel(**dict(model_args, **kwargs))


@_register_lm()
def lstm_lm(*, vocab_size: int = 256, **kwargs: Any) -> RNNLanguageModel:
    """Byte-level LSTM LM: 256-d tied embeddings, two layers of 256, dropout 0.1.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings,
    between recurrent layers and before the output layer.
    """
    model_args = dict(
        mode="lstm", vocab_size=vocab_size, embed_dim=256, hidden_size=256, num_layers=2
    )
    return RNNLanguageModel(**dict(model_args, **kwargs))


def _register_seq2seq() -> Any:
    return register_model(
        family="rnn",
        task="seq2seq",
        inputs=_seq2seq_inputs,
        output_shape=_seq2seq_output,
        paper=_PAPERS["seq2seq"],
    )


@_register_seq2seq()
def gru_seq2seq(*, vocab_size: int = 256, **kwargs: Any) -> RNNSeq2Seq:
    """GRU encoder-decoder: 128-d embeddings, a bidirectional encoder (2 x 128) and a
    256-d decoder, one layer each, Luong attention.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings,
    between recurrent layers and before the output layer.
    """
    model_args = dict(
        mode="gru", vocab_size=vocab_size, embed_dim=128, hidden_size=256, bidirectional=True
    )
    return RNNSeq2Seq(**dict(model_args, **kwargs))


@_register_seq2seq()
def lstm_seq2seq(*, vocab_size: int = 256, **kwargs: Any) -> RNNSeq2Seq:
    """LSTM encoder-decoder: 128-d embeddings, a bidirectional encoder (2 x 128) and a
    256-d decoder, one layer each, Luong attention.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings,
    between recurrent layers and before the output layer.
    """
    model_args = dict(
        mode="lstm", vocab_size=vocab_size, embed_dim=128, hidden_size=256, bidirectional=True
    )
    return RNNSeq2Seq(**dict(model_args, **kwargs))
