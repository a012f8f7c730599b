"""Export a model to ONNX or a ``torch.export`` program, checked against eager PyTorch.

    from modelzoo.export import export_model
    result = export_model("resnet20.digits", "onnx", "resnet20.onnx")
    result.max_abs_diff      # onnxruntime vs eager PyTorch on the card's example inputs

``modelzoo export NAME_OR_RUN_DIR --format onnx|pt2 --out FILE`` is the same from the shell.

- ONNX goes through ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based
  exporter; ``dynamic_shapes`` keeps the batch dimension symbolic), and the file is run
  in ``onnxruntime`` on the CPU.
- ``pt2`` goes through ``torch.export.export`` and ``torch.export.save``; the saved bytes are
  reloaded with ``torch.export.load`` and run.

Either way the exported model is run on the card's example inputs
(``modelzoo.example_inputs``), at another batch size than the export's when the batch
is dynamic, and compared with the eager model: the largest absolute difference is
measured for every output, and an output that differs by more than
``rtol * max(1, max|eager|)`` (``rtol`` 1e-4 for float32) fails the export. Nothing is
written until the check has passed, and the file is written atomically.

Model outputs that are dataclasses, NamedTuples, dicts or distributions are flattened
to a tuple of tensors (the order of ``modelzoo.utils.output_tensors``); the file's
metadata names every input and output (``modelzoo.outputs``: ``["logits", "loss"]``), and
ONNX graph inputs and outputs carry those names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.errors import ConfigError, ModelzooError
from modelzoo.utils.io import atomic_write

__all__ = [
    "FORMATS",
    "RTOL",
    "ExportError",
    "ExportResult",
    "export_model",
    "flat_output_names",
    "load_export_source",
    "named_outputs",
    "read_metadata",
]

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "pt2")

# Largest accepted |exported - eager| relative to the output's scale, max(1, max|eager|).
# onnxruntime's kernels (convolution algorithms, fused attention, accumulation order) and
# torch.export's decompositions differ from eager PyTorch by float rounding: about 1e-6 for
# the zoo's float32 models. Half precision rounds 1000x coarser.
RTOL = {torch.float32: 1e-4, torch.float64: 1e-8, torch.float16: 1e-2, torch.bfloat16: 5e-2}

EXPORT_BATCH_SIZE = 2
CHECK_BATCH_SIZE = 3  # another size than the export's, so a batch fixed in the graph fails

METADATA_FILE = "modelzoo.json"  # the pt2 archive's extra file with the metadata


class ExportError(ModelzooError):
    """A model that cannot be exported, or whose export gives other outputs than eager."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and how close the exported model is to eager PyTorch.

    Attributes:
        path: the file written (None when ``out`` was None: checked, not written).
        format: ``onnx`` or ``pt2``.
        model: the model's registered name.
        input_names: the positional inputs, in order.
        output_names: the exported outputs, in order (see :func:`named_outputs`).
        dynamic_batch: whether the batch dimension is symbolic.
        export_batch_size: the batch size the model was captured at.
        check_batch_size: the batch size the check ran at (None: not checked).
        max_abs_diff: the largest |exported - eager| over all outputs (None: not checked).
        tolerance: the largest difference that was accepted (None: not checked).
        opset: the ONNX opset of the file (None for pt2).
        num_bytes: the size of the file.
        seconds: the time the export and the check took.
    """

    path: Path | None
    format: str
    model: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_batch: bool
    export_batch_size: int
    check_batch_size: int | None
    max_abs_diff: float | None
    tolerance: float | None
    opset: int | None
    num_bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        out = dataclasses.asdict(self)
        out["path"] = None if self.path is None else str(self.path)
        out["input_names"] = list(self.input_names)
        out["output_names"] = list(self.output_names)
        return out


# --- outputs ----------------------------------------------------------------------------


def named_outputs(output: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """Every tensor of a model output with a name, in ``output_tensors``'s order.

    A plain tensor is ``output``; dataclass fields and dict keys give their names
    (``logits``, ``loss``), tuple items their index (``output_0``), nested ones joined
    with dots (``state.0``); distributions give their parameters (``logits``, ``loc``).
    """
    if isinstance(output, torch.Tensor):
        return [(prefix or "output", output)]
    if isinstance(output, torch.distributions.Independent):
        return named_outputs(output.base_dist, prefix)
    if isinstance(output, torch.distributions.Distribution):
        names = [n for n in ("logits", "loc", "scale") if n in output.arg_constraints]
        return [(_join(prefix, n), getattr(output, n)) for n in names]
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        items = [(f.name, getattr(output, f.name)) for f in dataclasses.fields(output)]
    elif isinstance(output, dict):
        items = [(str(k), v) for k, v in output.items()]
    elif isinstance(output, tuple) and hasattr(output, "_fields"):  # NamedTuple
        items = list(zip(output._fields, output))
    elif isinstance(output, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(output)]
        if not prefix:
            items = [(f"output_{i}", v) for i, v in enumerate(output)]
    else:
        return []
    return [pair for key, value in items for pair in named_outputs(value, _join(prefix, key))]


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def flat_output_names(output: Any) -> list[str]:
    """The names :func:`named_outputs` gives, made unique and valid as ONNX value names."""
    names: list[str] = []
    for name, _ in named_outputs(output):
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


class _FlatOutputs(nn.Module):
    """The model with its output flattened to a tuple of tensors (what exporters accept)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t for _, t in named_outputs(self.model(*inputs)))


# --- loading ----------------------------------------------------------------------------


def load_export_source(source: str | os.PathLike[str] | nn.Module) -> nn.Module:
    """The model to export or quantize, in eval mode.

    Args:
        source: a model made by ``modelzoo.create`` (used as it is), a weight set
            (``resnet20.digits``), an architecture (its default weights; without weight
            sets, its random initialization), a run directory (the weights its best, else
            last, checkpoint evaluated), a ``save_pretrained`` folder or an ``hf-hub:`` id.

    Raises:
        UnknownModelError: no such model.
        WeightsError: the weights cannot be had (offline, say); the message says where to
            put the file.
        ConfigError, CheckpointError: a folder that is neither kind, a run without checkpoints.
    """
    if isinstance(source, nn.Module):
        return source.eval()
    from modelzoo.predict import load_model
    from modelzoo.registry import model_card, split_name

    text = os.fspath(source)
    if not Path(text).expanduser().exists() and ":" not in text and "/" not in text:
        arch, tag = split_name(text)
        if tag is None and not model_card(arch).weights:
            import modelzoo

            logger.info("%s has no weight sets: exporting its random initialization", arch)
            return modelzoo.create(arch).eval()
    return load_model(text)


def model_label(model: nn.Module) -> str:
    """The registered name of a model made by ``modelzoo.create``, else its class name."""
    return str(getattr(model, "model_name", None) or type(model).__name__)


def input_names(model: nn.Module, count: int) -> list[str]:
    """The names of the model's positional inputs, from its card (``images``, ``tokens``)."""
    from modelzoo.registry import model_card

    try:
        specs = model_card(model_label(model)).input_spec
    except ModelzooError:
        specs = ()
    names = [spec.name for spec in specs]
    if len(names) != count or len(set(names)) != count:
        names = [f"input_{i}" for i in range(count)]
    return names


def example_batch(model: nn.Module, batch_size: int, *, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The card's example inputs for ``model`` (its overrides, e.g. ``in_chans``, honoured).

    A model whose ``pretrained_cfg`` prepares images to another ``input_size`` than the
    architecture's default gets images of that size.
    """
    from modelzoo.registry import example_inputs

    try:
        inputs = example_inputs(model, batch_size, seed=seed)
    except ConfigError as err:
        raise ConfigError(
            f"export needs a model made by modelzoo.create (its card says what its inputs are); "
            f"got a {type(model).__name__}: {err}"
        ) from err
    # Weights trained at another image size than the architecture's default (resnet20 on
    # 16x16 digits) are exported at the size their card prepares images to: only the batch
    # dimension is symbolic, so that size is the one the file accepts.
    cfg = getattr(model, "pretrained_cfg", None)
    size = tuple(cfg.get("input_size") or ()) if isinstance(cfg, dict) else ()
    if len(inputs) == 1 and inputs[0].is_floating_point() and len(size) == inputs[0].ndim - 1:
        (x,) = inputs
        if tuple(x.shape[1:]) != size and x.shape[1] == size[0]:
            generator = torch.Generator().manual_seed(seed)
            shape = (batch_size, *size)
            inputs = (torch.randn(shape, generator=generator, dtype=x.dtype).to(x.device),)
    return inputs


# --- export -----------------------------------------------------------------------------


def _metadata(
    model: nn.Module, fmt: str, inputs: Sequence[str], outputs: Sequence[str], dynamic: bool
) -> dict[str, str]:
    """The facts a deployment needs besides the graph, as string key/values."""
    from modelzoo import __version__

    meta = {
        "modelzoo.version": __version__,
        "modelzoo.model": model_label(model),
        "modelzoo.format": fmt,
        "modelzoo.inputs": json.dumps(list(inputs)),
        "modelzoo.outputs": json.dumps(list(outputs)),
        "modelzoo.dynamic_batch": json.dumps(dynamic),
        "modelzoo.torch": torch.__version__,
    }
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict):
        # How inputs are prepared (size, mean/std, labels): a deployment needs it.
        meta["modelzoo.pretrained_cfg"] = json.dumps(cfg, default=str, sort_keys=True)
    return meta


def _dynamic_shapes(inputs: Sequence[torch.Tensor]) -> tuple[Any, ...]:
    batch = torch.export.Dim("batch")
    return (tuple({0: batch} for _ in inputs),)  # one entry: the wrapper's *inputs


def _export_onnx(
    wrapper: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    names: Sequence[str],
    outputs: Sequence[str],
    dynamic: bool,
    opset: int | None,
    meta: dict[str, str],
) -> tuple[bytes, int]:
    kwargs: dict[str, Any] = {}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamic:
        kwargs["dynamic_shapes"] = _dynamic_shapes(inputs)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # the exporter reports its steps on stdout
        program = torch.onnx.export(
            wrapper,
            inputs,
            dynamo=True,
            input_names=list(names),
            output_names=list(outputs),
            **kwargs,
        )
    logger.debug("torch.onnx.export: %s", log.getvalue())
    proto = program.model_proto
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return proto.SerializeToString(), int(used) if used is not None else -1


def _export_pt2(
    wrapper: nn.Module, inputs: tuple[torch.Tensor, ...], dynamic: bool, meta: dict[str, str]
) -> bytes:
    program = torch.export.export(
        wrapper, inputs, dynamic_shapes=_dynamic_shapes(inputs) if dynamic else None
    )
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(meta)})
    return buffer.getvalue()


def onnx_session(model_bytes: bytes) -> Any:
    """An onnxruntime CPU session on one thread (the check must not take the machine)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are not the user's
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _run_exported(fmt: str, data: bytes, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    if fmt == "onnx":
        session = onnx_session(data)
        feeds = {spec.name: x.numpy() for spec, x in zip(session.get_inputs(), inputs)}
        return [torch.from_numpy(out) for out in session.run(None, feeds)]
    program = torch.export.load(io.BytesIO(data))
    with torch.no_grad():
        return list(program.module()(*inputs))


def _compare(
    got: Sequence[torch.Tensor], expected: Sequence[torch.Tensor], names: Sequence[str]
) -> tuple[float, float]:
    """The largest difference and the tolerance it was held to; raises past the tolerance."""
    if len(got) != len(expected):
        raise ExportError(
            f"the exported model returns {len(got)} outputs, eager PyTorch {len(expected)}"
        )
    worst, tolerance = 0.0, 0.0
    for name, out, ref in zip(names, got, expected):
        if tuple(out.shape) != tuple(ref.shape):
            raise ExportError(
                f"output {name!r}: the exported model gives shape {tuple(out.shape)}, eager "
                f"PyTorch {tuple(ref.shape)}"
            )
        if not ref.is_floating_point():  # labels, indices, masks: equal or wrong
            if not torch.equal(out.to(ref.dtype), ref):
                raise ExportError(f"output {name!r} (integer) differs from eager PyTorch")
            continue
        if ref.numel() == 0:
            continue
        diff = float((out.double() - ref.double()).abs().max())
        scale = max(1.0, float(ref.double().abs().max()))
        allowed = RTOL.get(ref.dtype, 1e-4) * scale
        if not diff <= allowed:  # NaN fails too
            raise ExportError(
                f"output {name!r}: the exported model differs from eager PyTorch by {diff:.3g} "
                f"(max abs), more than the {allowed:.3g} allowed "
                f"({RTOL.get(ref.dtype, 1e-4):g} x max(1, max|output|))"
            )
        worst, tolerance = max(worst, diff), max(tolerance, allowed)
    return worst, tolerance


def export_model(
    model_or_name: nn.Module | str | os.PathLike[str],
    fmt: str = "onnx",
    out: str | os.PathLike[str] | None = None,
    *,
    dynamic_batch: bool = True,
    opset: int | None = None,
    check: bool = True,
    batch_size: int = EXPORT_BATCH_SIZE,
) -> ExportResult:
    """Export a model to ONNX or a ``torch.export`` program and check it against eager PyTorch.

    Args:
        model_or_name: a model made by ``modelzoo.create``, or anything
            :func:`load_export_source` loads (a weight set, a run directory, a folder).
        fmt: ``onnx`` or ``pt2``.
        out: the file to write (None: export and check only).
        dynamic_batch: keep the batch dimension symbolic, so the file runs at any batch size.
        opset: the ONNX opset (default: the exporter's); ignored for pt2.
        check: run the exported model (onnxruntime, or ``torch.export.load``) and compare it
            with eager PyTorch; a difference past the tolerance raises and writes nothing.
        batch_size: the batch size of the inputs the model is captured with.

    Returns:
        What was written, with the measured difference.

    Raises:
        ConfigError: an unknown format, an opset with pt2, a model not made by
            ``modelzoo.create``.
        ExportError: the exporter failed, or the exported model's outputs differ from eager.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if opset is not None and fmt != "onnx":
        raise ConfigError(f"--opset is an ONNX setting; the {fmt} format has none")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    start = time.perf_counter()
    model = load_export_source(model_or_name)
    label = model_label(model)
    inputs = example_batch(model, batch_size)
    with torch.no_grad():
        reference_output = model(*inputs)
    outputs = flat_output_names(reference_output)
    if not outputs:
        raise ExportError(f"{label} returns no tensors ({type(reference_output).__name__})")
    names = input_names(model, len(inputs))
    meta = _metadata(model, fmt, names, outputs, dynamic_batch)
    wrapper = _FlatOutputs(model).eval()
    used_opset = None
    try:
        if fmt == "onnx":
            data, used_opset = _export_onnx(
                wrapper, inputs, names, outputs, dynamic_batch, opset, meta
            )
        else:
            data = _export_pt2(wrapper, inputs, dynamic_batch, meta)
    except ModelzooError:
        raise
    except Exception as err:  # the exporters raise many kinds; say which model and format
        raise ExportError(
            f"{label} could not be exported to {fmt}: {type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        ) from err
    check_size = max_diff = tolerance = None
    if check:
        # A dynamic batch is checked at another size than the export's.
        check_size = batch_size
        if dynamic_batch:
            check_size = CHECK_BATCH_SIZE if batch_size != CHECK_BATCH_SIZE else batch_size + 1
        feeds = example_batch(model, check_size, seed=1)
        with torch.no_grad():
            expected = [t for _, t in named_outputs(model(*feeds))]
        try:
            got = _run_exported(fmt, data, feeds)
        except Exception as err:
            raise ExportError(
                f"{label}: the exported {fmt} model failed to run at batch {check_size}: "
                f"{type(err).__name__}: {err}"
            ) from err
        max_diff, tolerance = _compare(got, expected, outputs)
        logger.info(
            "%s (%s): max abs diff %.3g at batch %d (tolerance %.3g)",
            label,
            fmt,
            max_diff,
            check_size,
            tolerance,
        )
    path = None
    if out is not None:
        path = atomic_write(Path(out).expanduser(), data)
    return ExportResult(
        path=path,
        format=fmt,
        model=label,
        input_names=tuple(names),
        output_names=tuple(outputs),
        dynamic_batch=dynamic_batch,
        export_batch_size=batch_size,
        check_batch_size=check_size,
        max_abs_diff=max_diff,
        tolerance=tolerance,
        opset=used_opset,
        num_bytes=len(data),
        seconds=time.perf_counter() - start,
    )


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``modelzoo.*`` metadata of a file :func:`export_model` wrote (ONNX or pt2).

    Values are strings; ``modelzoo.inputs`` and ``modelzoo.outputs`` are JSON lists of names.
    """
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in proto.metadata_props if p.key.startswith("modelzoo.")}
    extra = {METADATA_FILE: ""}
    torch.export.load(path, extra_files=extra)
    return json.loads(extra[METADATA_FILE]) if extra[METADATA_FILE] else {}
