"""Language modelling: next-token cross-entropy, perplexity, and truncated BPTT for RNN LMs.

Batches are ``(input, target)`` token windows (B, T), the target being the input
shifted by one. The task works with any model that returns next-token logits
(B, T, V): a tensor, or an output with ``.logits`` (``GPT``'s ``LMOutput`` and
``RNNLanguageModel``'s ``RecurrentLMOutput``).

With ``stateful=True`` (contiguous streams, e.g. ``stdlib_chars_stream``, whose
``info["stateful"]`` recipes pass on) a recurrent model's state is carried from
one batch to the next, detached so that gradients stop at the batch boundary
(truncated back-propagation through time, Zaremba et al. 2014). The state is
reset at the start of each epoch and saved in the task's state dict, so a
resumed run continues from exactly the state the interrupted one had.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.train.tasks.base import Task, Totals

__all__ = ["LanguageModelingTask", "lm_logits"]

_logger = logging.getLogger(__name__)

# A recurrent state: one tensor (tanh RNN, GRU) or an LSTM's (h, c) pair, each (L, B, H).
State = torch.Tensor | tuple[torch.Tensor, ...]


def lm_logits(out: Any) -> torch.Tensor:
    """The logits of a language model's output: the tensor itself, ``.logits`` or its first item."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)):
        return out[0]
    raise TypeError(
        f"cannot find logits in a {type(out).__name__}; a language model should return a "
        "tensor (B, T, V) or an output with a .logits field"
    )


def _map(state: State, fn: Any) -> State:
    return fn(state) if isinstance(state, torch.Tensor) else tuple(fn(s) for s in state)


def _first(state: State) -> torch.Tensor:
    return state if isinstance(state, torch.Tensor) else state[0]


class LanguageModelingTask(Task):
    """Next-token cross-entropy on ``(input, target)`` windows.

    Metrics: ``loss`` (mean cross-entropy per token, nats), ``perplexity``
    (``exp(loss)`` of the whole evaluation, not a mean of per-batch
    perplexities) and ``accuracy`` (top-1 next-token accuracy).

    Args:
        model: returns next-token logits (B, T, V), as a tensor or an output with ``.logits``;
            to carry a state, ``model(tokens, hidden)`` returns ``.hidden`` too.
        stateful: carry the recurrent state across consecutive batches (truncated BPTT);
            only for contiguous, unshuffled streams. Recipes take it from the data's info.
            Models that return no state (transformers) are run batch by batch regardless.
        ignore_index: target id that is not scored (e.g. -100 for unscored steps).
    """

    name = "lm"
    monitor = "loss"

    def __init__(
        self, model: nn.Module, *, stateful: bool = False, ignore_index: int = -100
    ) -> None:
        super().__init__(model)
        self.stateful = stateful
        self.ignore_index = ignore_index
        self._hidden: State | None = None  # carried across training batches
        self._eval_hidden: State | None = None  # carried across one evaluation's batches
        self._warned = False

    # --- the carried state --------------------------------------------------------------

    def _run(self, net: nn.Module, tokens: torch.Tensor, state: State | None) -> tuple[Any, Any]:
        """Forward, passing the carried state when there is one; returns (output, new state)."""
        if not self.stateful:
            return net(tokens), None
        if state is not None and _first(state).shape[1] != tokens.shape[0]:
            # A batch of another size (the end of a split) cannot continue the streams.
            _logger.debug("batch of %d rows: the carried state is dropped", tokens.shape[0])
            state = None
        if state is not None:
            state = _map(state, lambda s: s.to(tokens.device))
        out = net(tokens) if state is None else net(tokens, state)
        hidden = getattr(out, "hidden", None)
        if hidden is None:
            # A transformer LM on a stream: every window stands alone, nothing to carry.
            if not self._warned:
                _logger.warning(
                    "stateful=True, but %s returns no hidden state (no .hidden in its output); "
                    "each batch is processed on its own",
                    type(self.model).__name__,
                )
                self._warned = True
            return out, None
        # Detached: gradients stop at the batch boundary (truncated BPTT).
        return out, _map(hidden, torch.Tensor.detach)

    def on_epoch_start(self, epoch: int) -> None:
        self._hidden = None

    def state_dict(self) -> dict[str, Any]:
        if self._hidden is None:
            return {}
        hidden = self._hidden
        return {"hidden": hidden if isinstance(hidden, torch.Tensor) else list(hidden)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        hidden = state.get("hidden")
        self._hidden = (
            hidden if hidden is None or isinstance(hidden, torch.Tensor) else tuple(hidden)
        )

    # --- steps ----------------------------------------------------------------------------

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        tokens, target = batch[0], batch[-1]
        out, self._hidden = self._run(self.net, tokens, self._hidden)
        logits = lm_logits(out).float()
        loss = F.cross_entropy(
            logits.flatten(0, 1), target.flatten(), ignore_index=self.ignore_index
        )
        return {"loss": loss}

    def validation_step(self, batch: Any) -> Totals:
        tokens, target = batch[0], batch[-1]
        out, self._eval_hidden = self._run(self.model, tokens, self._eval_hidden)
        logits = lm_logits(out).float().flatten(0, 1)  # (B * T, V)
        target = target.flatten()
        scored = target != self.ignore_index
        n = int(scored.sum())
        loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="sum")
        correct = ((logits.argmax(-1) == target) & scored).sum()
        return {"loss": (loss.item(), n), "accuracy": (correct.item(), n)}

    def compute_metrics(self, totals: Totals) -> dict[str, float]:
        # Called once at the end of every evaluation: the next one starts from a fresh state.
        self._eval_hidden = None
        metrics = super().compute_metrics(totals)
        if "loss" in metrics:
            loss = metrics["loss"]
            metrics["perplexity"] = math.exp(loss) if loss < 700 else math.inf
        return metrics

    def predict_step(self, batch: Any) -> torch.Tensor:
        """The most likely next token at every position (B, T)."""
        out = self.model(self.inputs_of(batch))
        return lm_logits(out).argmax(-1)
