"""Int8 post-training quantization for CPU inference.

    import modelzoo as mz
    from modelzoo.quantize import calibration_data, load_quantized, save_quantized

    model = mz.create("resnet20.digits")
    qmodel = mz.quantize(model, mode="static", calibration=calibration_data("resnet20.digits"))
    save_quantized(qmodel, "resnet20-int8")
    qmodel = load_quantized("resnet20-int8")

``modelzoo quantize NAME_OR_RUN_DIR --mode dynamic|static --out DIR`` does the same from the
shell. Two modes, two paths through the PyTorch stack:

- ``dynamic``: weights of ``nn.Linear``, ``nn.LSTM`` and ``nn.GRU`` stored as int8,
  activations quantized on the fly per batch, no calibration. Path:
  ``torch.ao.quantization.quantize_dynamic`` (fbgemm kernels). torch marks
  ``torch.ao.quantization`` deprecated in favour of torchao, but torchao's eager
  replacement (``quantize_`` with ``Int8DynamicActivationInt8WeightConfig``) has no LSTM/GRU
  support and runs tensor subclasses that are several times slower than float on the CPU
  without ``torch.compile``; the torch.ao kernels are still in torch 2.14 and are used
  until that changes. The result is the model itself (same class, same outputs), with its
  quantizable layers replaced.
- ``static``: post-training static int8 for convolutional networks through the PT2E flow
  of torchao (``torchao.quantization.pt2e``; ``torch.ao.quantization.quantize_pt2e`` is gone
  from torch 2.14): ``torch.export`` with a dynamic batch, the x86 inductor quantizer
  (``X86InductorQuantizer``, per-channel int8 weights, per-tensor uint8 activations),
  ``prepare_pt2e``, calibration on real data, ``convert_pt2e``. The converted program is
  lowered to oneDNN int8 kernels (``lower_pt2e_quantized_to_x86``) for each input shape on
  first use, so it runs fast in eager mode without a compiler. The result is a
  :class:`QuantizedModel`.

:func:`save_quantized` writes a folder that :func:`load_quantized` reads back:

- every mode: ``quantization.json`` (mode, path, model, inputs, library versions,
  calibration facts) -- the folder's entry point;
- dynamic: the float model as ``save_pretrained`` writes it (``config.json``,
  ``model.safetensors``, ``README.md``), quantized again on load. Dynamic int8 depends
  on the weights alone (per-tensor min/max of each weight), so the reload gives the same
  int8 model bit for bit, and no pickle is read (torch's int8 LSTM state holds
  TorchScript objects that ``torch.load(weights_only=True)`` refuses). The folder is also
  one that ``modelzoo.from_pretrained`` and ``modelzoo predict`` read as the float model;
- static: ``model.pt2``, the converted program (``torch.export.save``; read with
  ``torch.export.load``).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.errors import ConfigError, ModelzooError
from modelzoo.utils.io import atomic_write

__all__ = [
    "MODES",
    "QuantizationError",
    "QuantizedModel",
    "calibration_data",
    "load_quantized",
    "quantize",
    "quantization_info",
    "save_quantized",
]

logger = logging.getLogger(__name__)

MODES = ("dynamic", "static")
DYNAMIC_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.LSTM, nn.GRU)
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)
DYNAMIC_PATH = "torch.ao.quantization.quantize_dynamic (fbgemm int8 kernels)"
STATIC_PATH = (
    "torchao.quantization.pt2e (torch.export + X86InductorQuantizer + prepare_pt2e/convert_pt2e), "
    "lowered to oneDNN int8 kernels with lower_pt2e_quantized_to_x86"
)
INFO_FILE = "quantization.json"
PROGRAM_FILE = "model.pt2"
FORMAT_VERSION = 1

DEFAULT_CALIBRATION_SAMPLES = 512  # what PT2E tutorials use; more changes little
CALIBRATION_BATCH_SIZE = 64
MAX_LOWERED_SHAPES = 8  # input shapes kept lowered at once (a data loader's last batch is one)


class QuantizationError(ModelzooError):
    """A model that the chosen mode cannot quantize, or a folder that is not a quantized model."""


# --- calibration data -------------------------------------------------------------------


def calibration_data(source: str | os.PathLike[str], *, split: str = "val") -> Any:
    """The data a weight set or run was trained on, for calibration: its validation split.

    The weight set's card (or the run's ``config.yaml``) names the data and its options
    (image size, kept classes, flattening); ``modelzoo.data.build_data`` builds it the same
    way. Calibrating on the test split would tune the quantizer on the data that measures
    it, so only ``val`` and ``train`` are accepted.

    Args:
        source: a weight set (``resnet20.digits``), an architecture (its default weight set)
            or a run directory.
        split: ``val`` (default) or ``train``.

    Returns:
        A ``DataLoader`` over the split (in order, with the data's own collate function, so
        detection targets of different sizes batch too), yielding ``(inputs..., target)``.

    Raises:
        ConfigError: the test split, a source without a recipe, data without that split.
    """
    if split not in ("val", "train"):
        raise ConfigError(
            f"calibration uses the val (or train) split, never {split!r}: the test split "
            "measures the quantized model"
        )
    recipe_data = _recipe_data(source)
    from modelzoo.data import build_data
    from modelzoo.data.registry import dataset_kwargs

    data = dict(recipe_data)
    name = data.pop("name")
    accepted = dataset_kwargs(name)
    kwargs = {k: v for k, v in data.items() if k in accepted}
    bundle = build_data(name, **kwargs)
    dataset = getattr(bundle, split, None)
    if dataset is None or len(dataset) == 0:
        raise ConfigError(f"{name} has no {split} split to calibrate on; pass calibration= data")
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset, batch_size=CALIBRATION_BATCH_SIZE, shuffle=False, collate_fn=bundle.collate_fn
    )


def _recipe_data(source: str | os.PathLike[str]) -> Mapping[str, Any]:
    path = Path(os.fspath(source)).expanduser()
    if path.is_dir():
        if (path / "config.yaml").is_file():
            from modelzoo.config import load_recipe

            return dict(load_recipe(path / "config.yaml").data)
        raise ConfigError(
            f"{path} is not a run directory (no config.yaml): its data is unknown; pass "
            "calibration data yourself (modelzoo quantize --calibration-data NAME)"
        )
    from modelzoo.registry import resolve_weight_set, split_name

    arch, tag = split_name(os.fspath(source))
    try:
        ws = resolve_weight_set(arch, tag or True)
    except ModelzooError as err:
        raise ConfigError(
            f"{source} names no weight set, so its training data is unknown: {err}"
        ) from err
    recipe = getattr(ws, "recipe", None) or {}
    if not recipe.get("data"):
        raise ConfigError(
            f"the card of {ws.name} names no training recipe, so its data is unknown; pass "
            "calibration data yourself"
        )
    return recipe["data"]


def _batches(calibration: Any, num_inputs: int, max_samples: int) -> Iterator[tuple[Any, ...]]:
    """Model inputs from calibration data, ``max_samples`` at most.

    A tensor is one batch; a map-style dataset is batched; any other iterable yields
    batches. A batch that is a tuple with one more item than the model has inputs is
    ``(inputs..., target)``, as the zoo's datasets give them: the target is dropped.
    """
    from torch.utils.data import DataLoader, Dataset

    if isinstance(calibration, torch.Tensor):
        source: Iterable[Any] = [calibration]
    elif isinstance(calibration, Dataset) and hasattr(calibration, "__len__"):
        source = DataLoader(calibration, batch_size=CALIBRATION_BATCH_SIZE, shuffle=False)
    elif isinstance(calibration, Iterable):
        source = calibration
    else:
        raise ConfigError(
            "calibration must be a tensor, a dataset or an iterable of batches; got "
            f"{type(calibration).__name__}"
        )
    seen = 0
    for batch in source:
        if isinstance(batch, torch.Tensor):
            inputs: tuple[Any, ...] = (batch,)
        elif isinstance(batch, (tuple, list)):
            inputs = tuple(batch[:num_inputs]) if len(batch) == num_inputs + 1 else tuple(batch)
        else:
            raise ConfigError(
                f"a calibration batch must be a tensor or a tuple (inputs..., target); got "
                f"{type(batch).__name__}"
            )
        if len(inputs) != num_inputs:
            raise ConfigError(
                f"a calibration batch holds {len(inputs)} inputs; the model takes {num_inputs}"
            )
        take = max_samples - seen
        if len(inputs[0]) > take:
            inputs = tuple(x[:take] for x in inputs)
        yield inputs
        seen += len(inputs[0])
        if seen >= max_samples:
            return


# --- the modes ----------------------------------------------------------------------------


def quantize(
    model: nn.Module,
    mode: str = "dynamic",
    calibration: Any = None,
    *,
    max_samples: int = DEFAULT_CALIBRATION_SAMPLES,
) -> nn.Module:
    """An int8 copy of a model for CPU inference (the model itself is left as it is).

    Args:
        model: a model made by ``modelzoo.create`` (or loaded by ``modelzoo.predict.load_model``).
        mode: ``dynamic`` (int8 weights of Linear/LSTM/GRU layers, activations quantized per
            batch; no calibration) or ``static`` (int8 convolutions and linear layers with
            activation ranges calibrated on data, through torchao's PT2E flow).
        calibration: for ``static``: a dataset of ``(inputs..., target)`` items, an iterable
            of batches, or a tensor of inputs; :func:`calibration_data` gives a weight set's
            validation split. Ignored by ``dynamic``.
        max_samples: calibration samples used at most.

    Returns:
        ``dynamic``: the model's class with its layers quantized. ``static``: a
        :class:`QuantizedModel`. Either has ``quantization`` (see :func:`quantization_info`)
        and keeps ``model_name`` and ``pretrained_cfg``.

    Raises:
        ConfigError: an unknown mode; static without calibration data.
        QuantizationError: a model with nothing the mode quantizes, or that the PT2E flow
            cannot capture.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if max_samples < 1:
        raise ConfigError(f"max_samples must be >= 1; got {max_samples}")
    if mode == "dynamic":
        return _quantize_dynamic(model)
    if calibration is None:
        raise ConfigError(
            "static quantization calibrates activation ranges on data: pass calibration= "
            "(e.g. modelzoo.quantize.calibration_data('resnet20.digits'), the val split)"
        )
    return _quantize_static(model, calibration, max_samples)


def _label(model: nn.Module) -> str:
    return str(getattr(model, "model_name", None) or type(model).__name__)


def _dynamic_layers(model: nn.Module) -> list[str]:
    from modelzoo.layers.recurrent import Recurrent

    return [
        n
        for n, m in model.named_modules()
        if isinstance(m, DYNAMIC_TYPES) or (isinstance(m, Recurrent) and m.cell in ("lstm", "gru"))
    ]


class RecurrentAdapter(nn.Module):
    """The zoo's ``Recurrent`` interface around a plain ``nn.LSTM`` / ``nn.GRU``.

    ``modelzoo.layers.Recurrent`` subclasses ``nn.RNNBase`` with its own forward
    (``(x, lengths, state) -> (outputs, state)``), so ``quantize_dynamic``, which swaps
    modules by exact type, passes it by. The adapter holds the same weights in the class
    ``quantize_dynamic`` knows (``rnn``, swapped for its int8 version) and keeps the zoo's
    calling convention and attributes, so the model around it runs unchanged.
    """

    def __init__(self, layer: nn.RNNBase) -> None:
        super().__init__()
        cls = {"lstm": nn.LSTM, "gru": nn.GRU}[layer.cell]
        self.cell = layer.cell
        self.input_size, self.hidden_size = layer.input_size, layer.hidden_size
        self.num_layers, self.bidirectional = layer.num_layers, layer.bidirectional
        self.rnn = cls(
            layer.input_size,
            layer.hidden_size,
            layer.num_layers,
            bias=layer.bias,
            batch_first=True,
            dropout=layer.dropout,
            bidirectional=layer.bidirectional,
        )
        self.rnn.load_state_dict(layer.state_dict())  # the same parameter names and shapes

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.num_directions * self.hidden_size

    def forward(
        self, x: torch.Tensor, lengths: Any = None, state: Any = None
    ) -> tuple[torch.Tensor, Any]:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        hx = tuple(state) if self.cell == "lstm" and state is not None else state
        if lengths is None:
            return self.rnn(x, hx)
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        # The packed path reorders sequences by length and the state with them, as Recurrent.
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, final


def _adapt_recurrent(model: nn.Module) -> int:
    """Put :class:`RecurrentAdapter` in place of every LSTM/GRU ``Recurrent``; their count."""
    from modelzoo.layers.recurrent import Recurrent

    swaps = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, Recurrent) and module.cell in ("lstm", "gru")
    ]
    for name, module in swaps:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, RecurrentAdapter(module))
    return len(swaps)


def _torch_ao_quantize_dynamic(model: nn.Module) -> nn.Module:
    """An int8 copy of ``model``: its Linear/LSTM/GRU layers (the zoo's Recurrent too)."""
    model = copy.deepcopy(model)
    _adapt_recurrent(model)
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is deprecated on every call; the module
        # docstring says why it is still the path taken.
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        return torch.ao.quantization.quantize_dynamic(
            model, set(DYNAMIC_TYPES), dtype=torch.qint8, inplace=True
        )


def _quantize_dynamic(model: nn.Module) -> nn.Module:
    layers = _dynamic_layers(model)
    if not layers:
        raise QuantizationError(
            f"{_label(model)} has no Linear, LSTM or GRU layer for dynamic int8; convolutional "
            "models take mode='static' with calibration data"
        )
    convs = [n for n, m in model.named_modules() if isinstance(m, CONV_TYPES)]
    if convs:
        logger.warning(
            "%s: dynamic mode quantizes its %d Linear/LSTM/GRU layers only; its %d convolutions "
            "stay float (mode='static' quantizes them)",
            _label(model),
            len(layers),
            len(convs),
        )
    model = model.eval()
    qmodel = _torch_ao_quantize_dynamic(model)
    qmodel.quantization = _info(model, "dynamic", DYNAMIC_PATH, layers=len(layers))
    qmodel.float_files = _float_files(model)
    logger.info("%s: %d layers quantized dynamically to int8", _label(model), len(layers))
    return qmodel


def _info(model: nn.Module, mode: str, path: str, **facts: Any) -> dict[str, Any]:
    import torchao

    return {
        "format_version": FORMAT_VERSION,
        "model": _label(model),
        "mode": mode,
        "path": path,
        "torch": torch.__version__,
        "torchao": torchao.__version__,
        **facts,
    }


def _float_files(model: nn.Module) -> dict[str, bytes] | None:
    """The float model as ``save_pretrained`` writes it (what a dynamic folder holds)."""
    from modelzoo.weights.pretrained import pretrained_files

    if not getattr(model, "model_name", None):
        return None  # not made by modelzoo.create: runs, but cannot be saved
    files = pretrained_files(model)
    # config.json last: a folder without it is not one from_pretrained reads
    return {name: files[name] for name in sorted(files, key=lambda n: n == "config.json")}


def quantization_info(model: nn.Module) -> dict[str, Any]:
    """What :func:`quantize` did to ``model`` (mode, path, versions); {} for a float model."""
    return dict(getattr(model, "quantization", None) or {})


def _static_program(
    model: nn.Module, calibration: Any, max_samples: int
) -> tuple[torch.export.ExportedProgram, int, tuple[torch.Tensor, ...]]:
    """The calibrated, converted PT2E program of ``model``, with a dynamic batch."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    from modelzoo.export import example_batch

    label = _label(model)
    card_inputs = example_batch(model, 2)
    batches = [
        tuple(x.to(card_inputs[i].device) for i, x in enumerate(inputs))
        for inputs in _batches(calibration, len(card_inputs), max_samples)
    ]
    if not batches:
        raise ConfigError("the calibration data is empty")
    # Captured at the data's shapes (a weight set may run at another size than the card's
    # default input), with the batch dimension symbolic.
    example = tuple(x[:2] for x in batches[0])
    batch = torch.export.Dim("batch")
    shapes = tuple({0: batch} for _ in example)
    try:
        captured = torch.export.export(model, example, dynamic_shapes=shapes).module()
        quantizer = X86InductorQuantizer()
        quantizer.set_global(get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(captured, quantizer)
    except Exception as err:
        raise QuantizationError(
            f"{label}: the PT2E flow failed (torch.export, or the x86 quantizer's annotation): "
            f"{type(err).__name__}: {err}"
        ) from err
    with torch.no_grad():
        for inputs in batches:
            prepared(*inputs)
    seen = sum(len(inputs[0]) for inputs in batches)
    converted = convert_pt2e(prepared)
    quantized = [
        n for n in converted.graph.nodes if n.op == "call_function" and "quantize" in str(n.target)
    ]
    if not quantized:
        raise QuantizationError(
            f"{label}: the x86 quantizer found no convolution or linear layer to quantize; "
            "models of Linear/LSTM/GRU layers take mode='dynamic'"
        )
    # Exported again, so that the converted model is one program that torch.export.save keeps.
    program = torch.export.export(converted, example, dynamic_shapes=shapes)
    return program, seen, example


def _quantize_static(model: nn.Module, calibration: Any, max_samples: int) -> QuantizedModel:
    model = model.eval()
    program, seen, example = _static_program(model, calibration, max_samples)
    info = _info(model, "static", STATIC_PATH, calibration_samples=seen)
    qmodel = QuantizedModel(
        program,
        info,
        model_name=getattr(model, "model_name", None),
        pretrained_cfg=getattr(model, "pretrained_cfg", None),
    )
    try:
        # Lowered once now, so that a model the x86 lowering cannot take fails here with
        # the reason, not at its first prediction.
        qmodel(*example)
    except Exception as err:
        raise QuantizationError(
            f"{_label(model)}: the quantized program could not be lowered to x86 int8 kernels: "
            f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        ) from err
    logger.info("%s: static int8 through PT2E, calibrated on %d samples", _label(model), seen)
    return qmodel


class QuantizedModel(nn.Module):
    """A statically quantized model: a converted PT2E program, run through oneDNN int8 kernels.

    Call it like the float model. The program is lowered for the x86 CPU for each new
    input shape (seconds, once; the most recent shapes are kept), so the first call at a
    new batch size is slow and the following ones are fast. ``program`` is the portable
    form that :func:`save_quantized` writes. It runs on the CPU only and has no
    ``train`` mode.

    Attributes:
        program: the converted ``torch.export`` program (reference int8 ops).
        quantization: what was done (see :func:`quantization_info`).
        model_name: the float model's registered name.
        pretrained_cfg: the float model's input facts (size, mean/std, labels), if any.
    """

    def __init__(
        self,
        program: torch.export.ExportedProgram,
        quantization: dict[str, Any],
        *,
        model_name: str | None = None,
        pretrained_cfg: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.program = program
        self.quantization = quantization
        self.model_name = model_name
        self.pretrained_cfg = pretrained_cfg
        # Plain dict, not submodules: exported graphs refuse .train()/.eval().
        self._lowered: dict[tuple[Any, ...], nn.Module] = {}

    def train(self, mode: bool = True) -> QuantizedModel:
        """Stays in inference mode: an int8 program has no training behaviour to switch on."""
        self.training = False
        return self

    def lowered(self, *inputs: torch.Tensor) -> nn.Module:
        """The program lowered to x86 int8 kernels for inputs of these shapes."""
        key = tuple((tuple(x.shape), x.dtype) for x in inputs)
        module = self._lowered.pop(key, None)
        if module is None:
            from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

            module = lower_pt2e_quantized_to_x86(self.program.module(), tuple(inputs))
            while len(self._lowered) >= MAX_LOWERED_SHAPES:
                self._lowered.pop(next(iter(self._lowered)))
        self._lowered[key] = module  # most recent last
        return module

    def forward(self, *inputs: torch.Tensor) -> Any:
        if any(x.device.type != "cpu" for x in inputs):
            raise ConfigError("a statically quantized model runs on the CPU; move inputs there")
        with torch.no_grad():
            return self.lowered(*inputs)(*inputs)

    def extra_repr(self) -> str:
        return f"model={self.model_name!r}, path={self.quantization.get('path', '')!r}"


# --- saving and loading -----------------------------------------------------------------


def save_quantized(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write a quantized model to a folder that :func:`load_quantized` reads.

    Every file is serialized in memory and written atomically, ``quantization.json``
    last (a folder without it is not a quantized model), so a failure leaves no
    half-written folder.

    Returns:
        The directory.
    """
    info = quantization_info(model)
    if not info:
        raise ConfigError(
            "save_quantized takes a model made by modelzoo.quantize(); this one is not quantized"
        )
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} exists and is not a directory")
    files: dict[str, bytes] = {}
    if info["mode"] == "static":
        assert isinstance(model, QuantizedModel)
        buffer = io.BytesIO()
        torch.export.save(model.program, buffer)
        files[PROGRAM_FILE] = buffer.getvalue()
        info = {**info, "pretrained_cfg": model.pretrained_cfg}
    else:
        pretrained = getattr(model, "float_files", None)
        if not pretrained:
            raise ConfigError(
                f"{info.get('model')}: a dynamic int8 model is saved as its float weights, "
                "which modelzoo.quantize() keeps only for models made by modelzoo.create"
            )
        files.update(pretrained)
    files[INFO_FILE] = json.dumps(info, indent=2, sort_keys=True, default=str).encode() + b"\n"
    created = not directory.exists()
    try:
        for name, data in files.items():  # quantization.json last (dicts keep order)
            atomic_write(directory / name, data)
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    logger.info("saved %s to %s", ", ".join(files), directory)
    return directory


def load_quantized(directory: str | os.PathLike[str]) -> nn.Module:
    """A quantized model from a folder :func:`save_quantized` (or ``modelzoo quantize``) wrote.

    Raises:
        QuantizationError: a folder without ``quantization.json``, or of an unknown mode.
    """
    directory = Path(directory).expanduser()
    info_path = directory / INFO_FILE
    if not info_path.is_file():
        raise QuantizationError(
            f"{directory} holds no {INFO_FILE}: it is not a folder written by "
            "modelzoo quantize / modelzoo.quantize.save_quantized"
        )
    info = json.loads(info_path.read_text())
    mode = info.get("mode")
    if mode == "static":
        program = torch.export.load(directory / PROGRAM_FILE)
        cfg = info.pop("pretrained_cfg", None)
        return QuantizedModel(
            program, info, model_name=info.get("model"), pretrained_cfg=_tupled(cfg)
        )
    if mode == "dynamic":
        from modelzoo.weights.pretrained import from_pretrained

        model = from_pretrained(directory, strict=True).eval()
        qmodel = _torch_ao_quantize_dynamic(model)
        qmodel.float_files = _float_files(model)
        qmodel.quantization = info
        return qmodel
    raise QuantizationError(f"{info_path}: unknown mode {mode!r}; expected one of {MODES}")


def _tupled(cfg: Any) -> Any:
    """A ``pretrained_cfg`` read from JSON, with tuples where the card holds them."""
    if not isinstance(cfg, dict):
        return cfg
    return {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
