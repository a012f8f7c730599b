"""Recurrent layers (tanh RNN, LSTM, GRU) with two interchangeable backends.

``Recurrent`` keeps its parameters under exactly the names and shapes of
``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``), so a state dict moves between
them without remapping. Two backends compute the same function:

- ``"torch"`` runs torch's fused kernels (cuDNN on GPU); variable-length
  batches go through packed sequences.
- ``"native"`` runs the cell equations below in an explicit time loop: a
  readable reference, and the place to change the cell (layer norm, peepholes,
  zoneout, ...). Variable-length batches are handled by masking, so padding
  never changes the result.

Cell equations (``x`` the input, ``h``/``c`` the previous state, ``W_i*``/``b_i*``
the input weights, ``W_h*``/``b_h*`` the recurrent weights, gates stacked in
torch's order):

- tanh RNN: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``
- LSTM (gates i, f, g, o): ``c' = σ(f) * c + σ(i) * tanh(g)``, ``h' = σ(o) * tanh(c')``
- GRU (gates r, z, n): ``n = tanh(W_in x + b_in + σ(r) * (W_hn h + b_hn))``,
  ``h' = (1 - σ(z)) * n + σ(z) * h``

Shapes: inputs are batch-first, ``(B, T, input_size)``; outputs are
``(B, T, num_directions * hidden_size)`` with zeros at padded steps; a state is
``(num_layers * num_directions, B, hidden_size)`` (layer-major, forward
direction first), a ``(h, c)`` pair of those for LSTMs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers.checks import skip_value_checks
from modelzoo.layers.tracing import graph_leaf

__all__ = ["Recurrent", "RecurrentState", "check_lengths", "detach_state", "map_state"]

# A tensor for tanh RNNs and GRUs, an (h, c) pair for LSTMs.
RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_TORCH_MODES = {"rnn_tanh": "RNN_TANH", "lstm": "LSTM", "gru": "GRU"}
_BACKENDS = ("torch", "native")


def map_state(state: RecurrentState, fn: Callable[[torch.Tensor], torch.Tensor]) -> RecurrentState:
    """Apply ``fn`` to every tensor of a state (one tensor, or an LSTM's (h, c) pair)."""
    if isinstance(state, (torch.Tensor, torch.fx.Proxy)):  # a Proxy while FX traces a model
        return fn(state)
    return tuple(fn(s) for s in state)  # type: ignore[return-value]


def detach_state(state: RecurrentState | None) -> RecurrentState | None:
    """Cut the autograd history of a state, for truncated back-propagation through time."""
    return None if state is None else map_state(state, torch.Tensor.detach)


def check_lengths(
    lengths: torch.Tensor | Sequence[int], *, batch_size: int, max_len: int, model: str
) -> torch.Tensor:
    """Validate per-sequence lengths of a padded (B, T, ...) batch and return them as a tensor.

    Args:
        lengths: one length per sequence, each in [1, T].
        batch_size: B.
        max_len: T, the padded length.
        model: the model's name, for the message.

    Raises:
        InputShapeError: wrong count, a non-integer dtype, or a length outside [1, T].
    """
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(lengths)
    got = tuple(int(d) for d in lengths.shape)
    if lengths.ndim != 1 or got[0] != batch_size:
        raise InputShapeError(
            f"{model} expects lengths of shape ({batch_size},), one per sequence of the batch; "
            f"got shape {got}."
        )
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise InputShapeError(
            f"{model} expects integer lengths; got dtype {lengths.dtype}. Use lengths.long()."
        )
    if not skip_value_checks(lengths) and lengths.numel():
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > max_len:
            raise InputShapeError(
                f"{model} expects lengths in [1, {max_len}] (the padded length T={max_len}); "
                f"got lengths in [{low}, {high}]. Drop empty sequences, or pad the batch to "
                "the longest sequence."
            )
    return lengths


@graph_leaf  # reads the input's shape, which FX symbolic tracing cannot
def _check_steps(x: torch.Tensor, input_size: int, cell: str) -> None:
    if x.ndim != 3 or x.shape[-1] != input_size or x.shape[1] == 0:
        raise InputShapeError(
            f"{cell} layer expects inputs of shape (B, T, {input_size}) with T >= 1; got shape "
            f"{tuple(x.shape)}."
        )


@graph_leaf  # reads shapes, which FX symbolic tracing cannot
def _check_state(state: RecurrentState, want: tuple[int, ...], cell: str) -> None:
    if cell == "lstm":
        if isinstance(state, torch.Tensor) or len(state) != 2:
            raise InputShapeError(
                f"an LSTM state is a pair (h, c) of tensors of shape {want}; got "
                f"{type(state).__name__}."
            )
        tensors = list(state)
    else:
        if not isinstance(state, torch.Tensor):
            raise InputShapeError(
                f"a {cell} state is one tensor of shape {want}; got {type(state).__name__}."
            )
        tensors = [state]
    for t in tensors:
        if tuple(t.shape) != want:
            raise InputShapeError(
                f"expected a state of shape {want} (num_layers * num_directions, B, "
                f"hidden_size); got shape {tuple(t.shape)}."
            )


# --- the cells of the native backend ------------------------------------------------------
# Each takes the input projection ``gi = W_ih x + b_ih`` of one step, the previous state
# as a tuple, and the recurrent weights; it returns the new state as a tuple whose first
# entry is the step's output.

CellState = tuple[torch.Tensor, ...]


def rnn_tanh_cell(
    gi: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> CellState:
    (h,) = state
    return (torch.tanh(gi + F.linear(h, w_hh, b_hh)),)


def lstm_cell(
    gi: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> CellState:
    h, c = state
    i, f, g, o = (gi + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def gru_cell(
    gi: torch.Tensor, state: CellState, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> CellState:
    (h,) = state
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    # The reset gate scales the recurrent term including its bias: torch's (and cuDNN's)
    # variant of Cho et al.'s GRU, needed for weight compatibility.
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * h,)


_CELLS = {"rnn_tanh": rnn_tanh_cell, "lstm": lstm_cell, "gru": gru_cell}
_KERNELS = {"rnn_tanh": torch.rnn_tanh, "lstm": torch.lstm, "gru": torch.gru}


class Recurrent(nn.RNNBase):
    """A multi-layer, optionally bidirectional tanh RNN, LSTM or GRU.

    It subclasses ``nn.RNNBase`` for the parameter layout and for cuDNN's weight
    flattening on GPU; its forward is its own (batch-first, lengths, two backends).

    Args:
        mode: ``"rnn_tanh"``, ``"lstm"`` or ``"gru"``.
        input_size: features per step of the input.
        hidden_size: features of the state, per direction.
        num_layers: stacked layers; each layer reads the previous one's outputs.
        bidirectional: add a layer running backwards in time; outputs concatenate
            the two directions (forward first).
        dropout: dropout on the outputs of every layer but the last (training only).
        bias: whether the cells have biases.
        backend: ``"torch"`` (fused kernels) or ``"native"`` (explicit cell equations).
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bidirectional: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
        backend: str = "torch",
    ) -> None:
        if mode not in _TORCH_MODES:
            raise ConfigError(
                f"unknown recurrent mode {mode!r}; use one of {', '.join(_TORCH_MODES)}"
            )
        if backend not in _BACKENDS:
            raise ConfigError(f"unknown recurrent backend {backend!r}; use 'torch' or 'native'")
        super().__init__(
            _TORCH_MODES[mode],
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=True,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.cell = mode
        self.backend = backend

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features per step of the outputs."""
        return self.num_directions * self.hidden_size

    def extra_repr(self) -> str:
        return f"mode={self.cell!r}, backend={self.backend!r}, " + super().extra_repr()

    def initial_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> RecurrentState:
        """The all-zero state used when none is given."""
        weight = self.weight_ih_l0
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        zeros = torch.zeros(shape, device=device or weight.device, dtype=dtype or weight.dtype)
        return (zeros, zeros.clone()) if self.cell == "lstm" else zeros

    def _check_state(self, state: RecurrentState, batch_size: int) -> None:
        want = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        _check_state(state, want, self.cell)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
        state: RecurrentState | None = None,
    ) -> tuple[torch.Tensor, RecurrentState]:
        """Run the layers over a batch-first sequence.

        Args:
            x: inputs of shape (B, T, input_size).
            lengths: valid steps per sequence, each in [1, T]; steps at or after a
                sequence's length are padding and do not affect its result.
            state: the initial state (zeros when None).

        Returns:
            ``(outputs, final_state)``: outputs of shape (B, T, num_directions *
            hidden_size), zero at padded steps; the state after each sequence's
            last valid step (the backward direction's after its first step).
        """
        _check_steps(x, self.input_size, self.cell)
        B, T = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = check_lengths(lengths, batch_size=B, max_len=T, model=f"{self.cell} layer")
        if state is None:
            # x.new_zeros rather than initial_state(): FX tracing cannot pass x.device along.
            zeros = x.new_zeros((self.num_layers * self.num_directions, B, self.hidden_size))
            state = (zeros, zeros.clone()) if self.cell == "lstm" else zeros
        else:
            self._check_state(state, B)
        if self.backend == "native":
            return self._forward_native(x, lengths, state)
        return self._forward_torch(x, lengths, state)

    def _forward_torch(
        self, x: torch.Tensor, lengths: torch.Tensor | None, state: RecurrentState
    ) -> tuple[torch.Tensor, RecurrentState]:
        kernel = _KERNELS[self.cell]
        # Read the parameters afresh rather than through RNNBase's cached list: that stays
        # right under functional_call and export, and on GPU they are the flattened views.
        weights = [getattr(self, name) for name in self._flat_weights_names]
        hx = list(state) if self.cell == "lstm" else state
        if lengths is None:
            result = kernel(
                x, hx, weights, self.bias, self.num_layers, self.dropout, self.training,
                self.bidirectional, True,
            )  # fmt: skip
            out, final = result[0], result[1:]
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            # The kernel sees sequences sorted by length; the state follows that order.
            hx = map_state(state, lambda s: s.index_select(1, packed.sorted_indices))
            hx = list(hx) if self.cell == "lstm" else hx
            result = kernel(
                packed.data, packed.batch_sizes, hx, weights, self.bias, self.num_layers,
                self.dropout, self.training, self.bidirectional,
            )  # fmt: skip
            out_packed = PackedSequence(
                result[0], packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
            )
            out, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=x.shape[1])
            final = tuple(s.index_select(1, packed.unsorted_indices) for s in result[1:])
        return out, (final[0], final[1]) if self.cell == "lstm" else final[0]

    def _forward_native(
        self, x: torch.Tensor, lengths: torch.Tensor | None, state: RecurrentState
    ) -> tuple[torch.Tensor, RecurrentState]:
        cell = _CELLS[self.cell]
        B, T, _ = x.shape
        states = list(state) if self.cell == "lstm" else [state]  # each (L * D, B, H)
        valid = None
        if lengths is not None:
            steps = torch.arange(T, device=x.device)
            valid = (steps < lengths.to(x.device)[:, None]).unsqueeze(-1)  # (B, T, 1)
        finals: list[CellState] = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                suffix = f"l{layer}_reverse" if direction else f"l{layer}"
                index = layer * self.num_directions + direction
                w_ih = getattr(self, f"weight_ih_{suffix}")
                w_hh = getattr(self, f"weight_hh_{suffix}")
                b_ih = getattr(self, f"bias_ih_{suffix}") if self.bias else None
                b_hh = getattr(self, f"bias_hh_{suffix}") if self.bias else None
                # The input projection does not depend on the state: one matmul for all steps.
                gi = F.linear(layer_input, w_ih, b_ih)  # (B, T, gates * H)
                h = tuple(s[index] for s in states)  # each (B, H)
                out_steps: list[torch.Tensor] = [x.new_empty(0)] * T
                order = range(T - 1, -1, -1) if direction else range(T)
                for t in order:
                    new = cell(gi[:, t], h, w_hh, b_hh)
                    if valid is None:
                        h = new
                        out_steps[t] = new[0]
                    else:
                        # Padded steps keep the state: the backward direction then starts
                        # at each sequence's last valid step from the initial state.
                        keep = valid[:, t]
                        h = tuple(torch.where(keep, n, o) for n, o in zip(new, h, strict=True))
                        out_steps[t] = torch.where(keep, new[0], 0.0)
                outputs.append(torch.stack(out_steps, dim=1))  # (B, T, H)
                finals.append(h)
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        final = tuple(torch.stack(parts, dim=0) for parts in zip(*finals, strict=True))
        return layer_input, (final[0], final[1]) if self.cell == "lstm" else final[0]
