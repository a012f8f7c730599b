"""Throughput of models, measured the way timm's benchmark script measures it.

One row per model and setting (mode, batch size, precision, channels_last, compile): warm-up
steps, then timed steps, each one synchronised on CUDA, giving

- throughput in the model's own unit (:func:`throughput_unit`): images/s, tokens/s (every input
  token: source and target for seq2seq), env-steps/s for RL networks (one observation is one
  environment step), clips/s for audio, samples/s otherwise;
- the step time: median, min and max over the timed steps (wall clock), and on the CPU the
  median process CPU time per step, which other processes on a shared machine inflate far less;
- peak memory the steps add above the model and inputs already resident: on CUDA
  ``torch.cuda.max_memory_allocated`` minus ``memory_allocated`` before the first step; on the
  CPU the peak resident set size (``VmHWM``, reset through ``/proc/self/clear_refs``) minus the
  resident size before the first step (Linux only; the allocator's caching makes it approximate);
- GFLOPs per sample of the measured step (forward in ``infer`` mode, forward + backward in
  ``train`` mode), counted by ``torch.utils.flop_counter.FlopCounterMode`` during the first
  warm-up step: matrix products, convolutions and attention, two FLOPs per multiply-add;
- parameters.

Train mode is forward + backward + optimizer step (SGD with momentum 0.9, or AdamW, fused on
CUDA) on the model's example inputs, with the loss the sum of the means of every float output
that requires grad. Precision goes through the trainer's :class:`~modelzoo.train.precision.
Precision`, as in training.

Used by ``modelzoo benchmark`` and ``scripts/throughput_results.py``.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import dataclasses
import functools
import gc
import io
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from modelzoo.errors import ConfigError
from modelzoo.layers.specs import TensorSpec
from modelzoo.train.precision import Precision
from modelzoo.utils import output_tensors
from modelzoo.utils.io import atomic_write_text

__all__ = [
    "MODES",
    "OPTIMIZERS",
    "PRECISIONS",
    "CSV_COLUMNS",
    "PEAK_BF16_DENSE_TFLOPS",
    "BenchmarkSettings",
    "BenchmarkRow",
    "StepRunner",
    "throughput_unit",
    "count_flops",
    "forward_flops",
    "benchmark_module",
    "benchmark_model",
    "benchmark_side_by_side",
    "rotated",
    "rows_to_csv",
    "write_csv",
    "read_csv",
    "peak_bf16_tflops",
    "mfu",
]

_logger = logging.getLogger(__name__)

MODES = ("infer", "train")
OPTIMIZERS = ("sgd", "adamw")
PRECISIONS = ("32", "bf16-mixed", "16-mixed", "bf16-true")
_LR = 1e-5  # small: the benchmark steps must not drive weights to inf/NaN (slow denormal paths)


@dataclass(frozen=True)
class BenchmarkSettings:
    """One setting a model is measured in.

    Attributes:
        mode: ``infer`` (eval, no grad) or ``train`` (forward + backward + optimizer step).
        batch_size: samples per step.
        precision: a trainer precision: ``32``, ``bf16-mixed``, ``16-mixed``, ``bf16-true``.
        channels_last: the model and its 4-D float inputs in channels-last memory format.
        compile: the model wrapped in ``torch.compile`` (compilation happens in the warm-up).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        optimizer: ``sgd`` (momentum 0.9) or ``adamw``; train mode only.
    """

    mode: str = "infer"
    batch_size: int = 1
    precision: str = "32"
    channels_last: bool = False
    compile: bool = False
    device: str = "cpu"
    optimizer: str = "sgd"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ConfigError(f"batch_size must be an integer >= 1; got {self.batch_size!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}"
            )
        device = _parse_device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"device {self.device!r} asked for, but torch.cuda.is_available() is False "
                f"(torch {torch.__version__}); use --device cpu, or a CUDA build of torch on a "
                "machine with a GPU"
            )

    @property
    def torch_device(self) -> torch.device:
        return _parse_device(self.device)


def _parse_device(text: str) -> torch.device:
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be cpu, cuda or cuda:N; got {text!r}")
    return device


@dataclass(frozen=True)
class BenchmarkRow:
    """The measurement of one model in one setting (one row of the table).

    Attributes:
        model: the model's name (``resnet50``, ``torchvision/resnet50``, ``timm/vgg11``).
        unit: what ``throughput`` counts per second: ``images/s``, ``tokens/s``,
            ``env-steps/s``, ``clips/s`` or ``samples/s``.
        items_per_sample: units in one sample (tokens per sequence; 1 otherwise).
        throughput: units per second at the median step time.
        step_ms, step_ms_min, step_ms_max: wall-clock step time over the timed steps.
        cpu_ms: median process CPU time per step (CPU device only; None on CUDA).
        steps: timed steps; warmup_steps: untimed steps before them.
        first_step_ms: the first (cold) step: compilation, kernel selection, allocation
            (eager models run it under FlopCounterMode, which adds its own overhead).
        peak_memory_mb: memory the steps add above the resident model and inputs (MiB);
            None where it cannot be measured. ``memory`` says how it was measured.
        gflops_per_sample: GFLOPs of one step per sample (forward in infer mode, forward +
            backward in train mode), as FlopCounterMode counts them.
        num_params: parameters of the model.
        group: rows measured side by side, steps interleaved and order rotated, share a group.
    """

    model: str
    mode: str
    batch_size: int
    precision: str
    channels_last: bool
    compile: bool
    device: str
    threads: int
    optimizer: str
    unit: str
    items_per_sample: int
    throughput: float
    step_ms: float
    step_ms_min: float
    step_ms_max: float
    cpu_ms: float | None
    steps: int
    warmup_steps: int
    first_step_ms: float
    peak_memory_mb: float | None
    memory: str
    gflops_per_sample: float
    num_params: int
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CSV_COLUMNS = tuple(f.name for f in dataclasses.fields(BenchmarkRow))


# --- units and FLOPs ---------------------------------------------------------------------------


def throughput_unit(input_spec: Sequence[TensorSpec], family: str, task: str) -> tuple[str, int]:
    """The unit a model's throughput is counted in, and how many of it one sample holds.

    RL networks count environment steps (one observation each); models fed integer sequences
    count tokens (every integer input with a sequence axis: source and target tokens of a
    seq2seq model alike); models fed (C, H, W) floats count images; audio models count clips.
    """
    if family == "rl" or task.startswith("rl_"):
        return "env-steps/s", 1
    tokens = sum(
        math.prod(spec.shape)
        for spec in input_spec
        if not spec.dtype.is_floating_point and spec.shape
    )
    if tokens:
        return "tokens/s", tokens
    if any(spec.dtype.is_floating_point and len(spec.shape) == 3 for spec in input_spec):
        return "images/s", 1
    if family == "audio":
        return "clips/s", 1
    return "samples/s", 1


def _cpu_flash_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_flash_backward_flops(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _custom_flop_formulas() -> dict[Any, Any]:
    # FlopCounterMode knows the CUDA attention kernels but not the CPU flash kernel that
    # F.scaled_dot_product_attention picks on the CPU; without these, attention counts as zero.
    aten = torch.ops.aten
    formulas: dict[Any, Any] = {}
    for name, fn in (
        ("_scaled_dot_product_flash_attention_for_cpu", _cpu_flash_flops),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_flash_backward_flops),
    ):
        if hasattr(aten, name):
            formulas[getattr(aten, name)] = fn
    return formulas


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of everything ``fn()`` runs (forward and, if it runs one, backward).

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (two FLOPs per multiply-add of
    matrix products, convolutions and attention; elementwise work is not counted), with the
    CPU flash-attention kernels added.
    """
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flop_formulas())
    with counter:
        fn()
    return int(counter.get_total_flops())


@functools.cache
def _prime_flop_counter() -> None:
    """Run FlopCounterMode once, so its lazy imports do not count as a model's memory."""
    count_flops(lambda: torch.ones(2, 2) @ torch.ones(2, 2))


def forward_flops(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """FLOPs of one eval-mode forward of ``model(*inputs)`` (all samples of the batch)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return count_flops(lambda: model(*inputs))
    finally:
        model.train(was_training)


# --- memory ------------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


def _libc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so RSS deltas count this step's memory."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _MemoryProbe:
    """Peak memory above a baseline: CUDA's allocator statistics, or the CPU's RSS high water."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = 0
        self.method = ""
        if device.type == "cuda":
            self.method = "cuda max_memory_allocated above the resident model"
        elif _status_kib("VmHWM") is not None:
            try:
                _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
                self.method = "cpu peak RSS (VmHWM) above the resident model"
            except OSError:
                self.method = ""

    def start(self) -> None:
        _prime_flop_counter()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.method:
            _libc_trim()
            _CLEAR_REFS.write_text("5")
            self.base = (_status_kib("VmRSS") or 0) * 1024

    def peak_mb(self) -> float | None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
        if not self.method:
            return None
        peak = _status_kib("VmHWM")
        return None if peak is None else max(0, peak * 1024 - self.base) / 2**20


# --- one model, one setting --------------------------------------------------------------------


def _loss(output: Any) -> torch.Tensor:
    tensors = output_tensors(output)
    parts = [t.float().mean() for t in tensors if t.is_floating_point() and t.requires_grad]
    if not parts:
        raise ConfigError(
            "train mode needs a float output that requires grad, and this model's output has "
            "none (it has no trainable parameters on the path to its outputs); benchmark it in "
            "infer mode"
        )
    return torch.stack(parts).sum()


class StepRunner:
    """A model prepared for one setting; :meth:`timed_step` runs and times one step.

    The model is moved to the device, converted by the precision (``bf16-true``), put in
    channels-last format and compiled as the settings say, so it is changed in place; build a
    fresh one for another setting.

    Args:
        model: the model.
        inputs: its positional inputs for one step (the batch the settings name).
        settings: the setting to measure.
    """

    def __init__(
        self, model: nn.Module, inputs: Sequence[torch.Tensor], settings: BenchmarkSettings
    ) -> None:
        self.settings = settings
        self.device = settings.torch_device
        self.precision = Precision(settings.precision, self.device)
        model = self.precision.convert_module(model.to(self.device))
        if settings.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.train(settings.mode == "train")
        self.model = model
        self.inputs = tuple(self._prepare(x) for x in inputs)
        self.forward: Callable[..., Any] = torch.compile(model) if settings.compile else model
        self.optimizer: torch.optim.Optimizer | None = None
        if settings.mode == "train":
            params = [p for p in model.parameters() if p.requires_grad]
            if not params:
                raise ConfigError(
                    "train mode needs trainable parameters, and this model has none; "
                    "benchmark it in infer mode"
                )
            fused = self.device.type == "cuda"
            if settings.optimizer == "adamw":
                self.optimizer = torch.optim.AdamW(params, lr=_LR, fused=fused)
            else:
                self.optimizer = torch.optim.SGD(params, lr=_LR, momentum=0.9, fused=fused)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = self.precision.convert_input(x.to(self.device))
        if self.settings.channels_last and x.ndim == 4 and x.is_floating_point():
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def run(self, *, eager: bool = False) -> None:
        """One step, not synchronised (``eager``: through the uncompiled model)."""
        forward = self.model if eager else self.forward
        if self.optimizer is None:
            with torch.no_grad(), self.precision.autocast():
                forward(*self.inputs)
            return
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            loss = _loss(forward(*self.inputs))
        self.precision.backward(loss)
        self.precision.step(self.optimizer)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed_step(self) -> tuple[float, float]:
        """Run one step; its (wall-clock seconds, process CPU seconds), synchronised."""
        self.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        self.run()
        self.synchronize()
        return time.perf_counter() - wall, time.process_time() - cpu

    def counted_step(self) -> tuple[int, float]:
        """One eager step under FlopCounterMode: (FLOPs, wall-clock seconds)."""
        self.synchronize()
        wall = time.perf_counter()
        flops = count_flops(lambda: self.run(eager=True))
        self.synchronize()
        return flops, time.perf_counter() - wall


@dataclass
class _Warm:
    flops: int
    first_s: float
    peak_mb: float | None
    memory: str


def _warm_up(runner: StepRunner, warmup_steps: int) -> _Warm:
    """The untimed steps: the first eager one counts FLOPs, then ``warmup_steps`` in all."""
    probe = _MemoryProbe(runner.device)
    probe.start()
    flops, first_s = runner.counted_step()
    done = 0 if runner.settings.compile else 1  # the counted step ran the eager model
    if runner.settings.compile:  # the first compiled step compiles: that is the cold one
        first_s = runner.timed_step()[0]
        done = 1
    for _ in range(warmup_steps - done):
        runner.timed_step()
    return _Warm(flops, first_s, probe.peak_mb(), probe.method)


def _row(
    name: str,
    runner: StepRunner,
    warm: _Warm,
    times: Sequence[tuple[float, float]],
    *,
    warmup_steps: int,
    unit: str,
    items_per_sample: int,
    num_params: int,
    group: str = "",
) -> BenchmarkRow:
    settings = runner.settings
    walls = [w for w, _ in times]
    median = statistics.median(walls)
    batch = settings.batch_size
    cpu = statistics.median(c for _, c in times) if runner.device.type == "cpu" else None
    return BenchmarkRow(
        model=name,
        mode=settings.mode,
        batch_size=batch,
        precision=settings.precision,
        channels_last=settings.channels_last,
        compile=settings.compile,
        device=str(runner.device),
        threads=torch.get_num_threads(),
        optimizer=settings.optimizer if settings.mode == "train" else "",
        unit=unit,
        items_per_sample=items_per_sample,
        throughput=batch * items_per_sample / median,
        step_ms=median * 1e3,
        step_ms_min=min(walls) * 1e3,
        step_ms_max=max(walls) * 1e3,
        cpu_ms=None if cpu is None else cpu * 1e3,
        steps=len(times),
        warmup_steps=warmup_steps,
        first_step_ms=warm.first_s * 1e3,
        peak_memory_mb=warm.peak_mb,
        memory=warm.memory,
        gflops_per_sample=warm.flops / batch / 1e9,
        num_params=num_params,
        group=group,
    )


def _check_counts(warmup_steps: int, min_steps: int, max_steps: int, min_time: float) -> None:
    if warmup_steps < 1:
        raise ConfigError(f"warmup_steps must be >= 1 (the first step is cold); got {warmup_steps}")
    if min_steps < 1 or max_steps < min_steps:
        raise ConfigError(
            f"need 1 <= min_steps <= max_steps; got min_steps={min_steps}, max_steps={max_steps}"
        )
    if min_time < 0:
        raise ConfigError(f"min_time must be >= 0 seconds; got {min_time}")


def benchmark_module(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    settings: BenchmarkSettings,
    *,
    name: str,
    unit: str = "samples/s",
    items_per_sample: int = 1,
    warmup_steps: int = 2,
    min_steps: int = 3,
    max_steps: int = 1000,
    min_time: float = 1.0,
) -> BenchmarkRow:
    """Measure any module on given inputs (the batch ``settings.batch_size`` names).

    Timed steps run until both ``min_steps`` steps and ``min_time`` seconds are reached, or
    ``max_steps`` steps are.

    Raises:
        ConfigError: a bad count or setting, or train mode for a model without trainable
            parameters or float outputs that require grad.
    """
    _check_counts(warmup_steps, min_steps, max_steps, min_time)
    num_params = sum(p.numel() for p in model.parameters())
    runner = StepRunner(model, inputs, settings)
    warm = _warm_up(runner, warmup_steps)
    times: list[tuple[float, float]] = []
    start = time.perf_counter()
    while len(times) < max_steps and (
        len(times) < min_steps or time.perf_counter() - start < min_time
    ):
        times.append(runner.timed_step())
    return _row(
        name,
        runner,
        warm,
        times,
        warmup_steps=warmup_steps,
        unit=unit,
        items_per_sample=items_per_sample,
        num_params=num_params,
    )


def _unit_of(name: str) -> tuple[str, int]:
    from modelzoo.registry import model_card

    card = model_card(name)
    return throughput_unit(card.input_spec, card.family, card.task)


def benchmark_model(name: str, settings: BenchmarkSettings, **timing: Any) -> BenchmarkRow:
    """Build ``name`` (random weights, seed 0) and measure it on its example inputs.

    Args:
        name: a registered name, ``timm/<name>`` or ``torchvision/<name>``.
        settings: the setting to measure.
        **timing: ``warmup_steps``, ``min_steps``, ``max_steps``, ``min_time`` (see
            :func:`benchmark_module`).
    """
    from modelzoo.registry import create, model_card

    unit, items = _unit_of(name)
    torch.manual_seed(0)
    model = create(name)
    inputs = model_card(name).example_inputs(settings.batch_size)
    return benchmark_module(
        model, inputs, settings, name=name, unit=unit, items_per_sample=items, **timing
    )


def rotated(names: Sequence[str], repeat: int) -> list[str]:
    """The order of the sides in repeat ``repeat``: each side goes first in turn."""
    k = repeat % len(names) if names else 0
    return [*names[k:], *names[:k]]


def benchmark_side_by_side(
    sides: Mapping[str, tuple[nn.Module, Sequence[torch.Tensor]]],
    settings: BenchmarkSettings,
    *,
    group: str,
    unit: str = "samples/s",
    items_per_sample: int = 1,
    warmup_steps: int = 1,
    repeats: int = 3,
    steps_per_repeat: int = 1,
) -> list[BenchmarkRow]:
    """Measure several models of the same job in one process, their steps interleaved.

    Each side is warmed up in turn (FLOPs and peak memory come from its warm-up), then every
    repeat runs ``steps_per_repeat`` timed steps of each side, the side that goes first
    rotating from repeat to repeat (:func:`rotated`), so that drifting machine load reaches
    every side alike. Each side's row holds all its timed steps; all rows share ``group``.

    Args:
        sides: row name -> (model, inputs); the inputs should be the same tensors for all.
        settings: the one setting every side runs in.
    """
    if not sides:
        raise ConfigError("benchmark_side_by_side needs at least one side")
    if repeats < 1 or steps_per_repeat < 1:
        raise ConfigError(
            f"repeats and steps_per_repeat must be >= 1; got {repeats}, {steps_per_repeat}"
        )
    _check_counts(warmup_steps, 1, 1, 0.0)
    runners: dict[str, StepRunner] = {}
    warm: dict[str, _Warm] = {}
    params: dict[str, int] = {}
    for label, (model, inputs) in sides.items():
        params[label] = sum(p.numel() for p in model.parameters())
        runners[label] = StepRunner(model, inputs, settings)
        warm[label] = _warm_up(runners[label], warmup_steps)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in sides}
    for repeat in range(repeats):
        for label in rotated(list(sides), repeat):
            for _ in range(steps_per_repeat):
                times[label].append(runners[label].timed_step())
    return [
        _row(
            label,
            runners[label],
            warm[label],
            times[label],
            warmup_steps=warmup_steps,
            unit=unit,
            items_per_sample=items_per_sample,
            num_params=params[label],
            group=group,
        )
        for label in sides
    ]


# --- CSV ---------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def rows_to_csv(rows: Iterable[BenchmarkRow]) -> str:
    """The rows as CSV text, one line per row under a header of :data:`CSV_COLUMNS`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = row.to_dict()
        writer.writerow([_cell(values[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()


def write_csv(rows: Iterable[BenchmarkRow], path: str | Path) -> Path:
    """Write the rows to ``path`` atomically (a reader never sees half a table)."""
    return atomic_write_text(path, rows_to_csv(rows))


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(BenchmarkRow)}


def _parse(column: str, text: str) -> Any:
    kind = str(_FIELD_TYPES[column])
    if text == "" and "None" in kind:
        return None
    if kind == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text == "true"
    if kind == "int":
        return int(text)
    if kind.startswith("float"):
        return float(text)
    return text


def read_csv(path: str | Path) -> list[BenchmarkRow]:
    """Rows written by :func:`write_csv`.

    Raises:
        ConfigError: the file's header is not :data:`CSV_COLUMNS`, or a cell does not parse;
            the message names the line.
    """
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != CSV_COLUMNS:
            raise ConfigError(
                f"{path}: the header is {header!r}, expected the benchmark columns "
                f"{', '.join(CSV_COLUMNS)}; write the file with `modelzoo benchmark --csv`"
            )
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(CSV_COLUMNS):
                raise ConfigError(f"{path}:{line}: {len(cells)} cells, expected {len(CSV_COLUMNS)}")
            try:
                values = {c: _parse(c, v) for c, v in zip(CSV_COLUMNS, cells)}
            except ValueError as err:
                raise ConfigError(f"{path}:{line}: {err}") from None
            rows.append(BenchmarkRow(**values))
    return rows


# --- model FLOPs utilisation -------------------------------------------------------------------

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from NVIDIA's data sheets (the sheets
# print the 2:4-sparsity figure; dense is half of it): H100 SXM5 1,979 -> 989.4;
# H100 PCIe 1,513 -> 756.5; H100 NVL 1,671 -> 835.5; H200 SXM 1,979 -> 989.4 (the same
# tensor cores as H100 SXM); H200 NVL 1,671 -> 835.5. First match on the device name wins.
PEAK_BF16_DENSE_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.5),
    ("H100 NVL", 835.5),
    ("H200 NVL", 835.5),
    ("H100", 989.4),
    ("H200", 989.4),
)


def peak_bf16_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name (``torch.cuda.get_device_name()``), if known."""
    for key, tflops in PEAK_BF16_DENSE_TFLOPS:
        if all(part in device_name for part in key.split()):
            return tflops
    return None


def mfu(flops_per_step: float, step_seconds: float, peak_tflops: float) -> float:
    """Model FLOPs utilisation: the FLOPs a step needs per second, over the device's peak.

    ``flops_per_step`` is the model's count (forward + backward as FlopCounterMode counts
    them), not what the hardware ran (no recomputation), so MFU is comparable across
    implementations (PaLM, appendix B).
    """
    if flops_per_step < 0 or step_seconds <= 0 or peak_tflops <= 0:
        raise ConfigError(
            f"mfu needs flops >= 0, step time > 0 and peak > 0; got {flops_per_step}, "
            f"{step_seconds}, {peak_tflops}"
        )
    return flops_per_step / step_seconds / (peak_tflops * 1e12)
