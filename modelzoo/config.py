"""Recipes: the YAML schema, its validation, and ``key=value`` overrides.

A recipe has four sections::

    # modelzoo train configs/resnet/resnet20_digits.yaml
    model: {name: resnet20, num_classes: 10, in_chans: 1}
    data: {name: digits, batch_size: 64}
    task: {name: classification}
    train: {epochs: 30, lr: 1.0e-3, optimizer: adamw, precision: "32", seed: 0}

``train`` is checked against :class:`TrainConfig` key by key; ``model`` against
the builder's keywords, ``data`` and ``task`` against their factories'. A
misspelled key raises :class:`ConfigError` naming the close match. Files are
read with ``yaml.safe_load`` only, and ``1e-4`` is read as a float (plain YAML
1.1 would read it as a string).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelzoo.errors import ConfigError

__all__ = [
    "TrainConfig",
    "Recipe",
    "load_recipe",
    "parse_overrides",
    "apply_overrides",
    "recipe_from_dict",
    "check_keys",
    "check_batch_size",
    "from_mapping",
    "parse_scalar",
]

SECTIONS = ("model", "data", "task", "train")
PRECISIONS = ("32", "bf16-mixed", "16-mixed", "bf16-true")


@dataclass
class TrainConfig:
    """How to train. Every field can be set in a recipe's ``train`` section."""

    epochs: int = 1  # passes over the training data; sets the schedule's length
    max_steps: int | None = None  # stop after this many optimizer steps (resume can raise it)
    seed: int = 0  # seeds python, numpy and torch; data order derives from it
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["32", "bf16-mixed", "16-mixed", "bf16-true"] = "32"
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0  # applied only to parameters with ndim >= 2
    weight_decay_all: bool = False  # decay biases and norm parameters too (Caffe/Torch's way)
    momentum: float = 0.9  # sgd only
    betas: tuple[float, float] = (0.9, 0.999)  # adam/adamw only
    scheduler: Literal["constant", "cosine", "step", "multistep"] = "constant"
    warmup_steps: int = 0  # linear warm-up before the schedule
    warmup_lr: float | None = None  # hold this lr during the warm-up instead (ResNet-110's 0.01)
    min_lr: float = 0.0  # cosine floor
    step_size: int = 1000  # step schedule: decay every step_size optimizer steps
    gamma: float = 0.1  # step and multistep schedules: decay factor
    milestones: list[int] | None = None  # multistep: decay at these optimizer steps (from 0)
    grad_accum: int = 1  # micro-batches per optimizer step
    clip_grad_norm: float | None = None  # clip the global grad norm to this value
    ema_decay: float | None = None  # keep an EMA of the weights (evaluated and saved when set)
    ema_warmup: bool = True  # EMA decay min(ema_decay, (1 + n) / (10 + n)) after n updates
    layer_decay: float | None = None  # lr x this per layer from the head to the input (BEiT)
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    monitor: str | None = None  # eval metric for best.ckpt / early stopping (default: task's)
    log_every: int = 10  # optimizer steps between metrics.csv rows
    eval_every: int | None = None  # optimizer steps between evaluations (default: each epoch)
    checkpoint_every: int | None = None  # optimizer steps between step-<N>.ckpt files
    keep_last: int = 2  # step-<N>.ckpt files kept
    max_bad_steps: int = 0  # non-finite losses skipped before NonFiniteLossError
    channels_last: bool = False  # memory format for 4-D image models
    compile: bool = False  # torch.compile the model
    grad_checkpointing: bool = False  # recompute activations in backward (model must support it)
    progress: bool = True  # show a progress bar
    plots: bool = True  # write plots/*.png
    tensorboard: bool = True  # write TensorBoard events when tensorboard is installed
    num_workers: int = 0  # DataLoader worker processes
    fsdp: bool = False  # shard the model with FSDP2 (fully_shard) under torchrun
    dry_run: bool = False  # a few steps on a little data, to check a recipe end to end

    def __post_init__(self) -> None:
        # Values set from Python get the same conversion as recipe values ("1e-3" -> 0.001),
        # so a wrong type fails here, naming the field, instead of deep inside the optimizer.
        for name, hint in _train_hints().items():
            setattr(self, name, _convert(getattr(self, name), hint, f"train.{name}"))
        for name, low, high, fix in _TRAIN_RANGES:
            _check_range(f"train.{name}", getattr(self, name), low, high, fix)
        for i, beta in enumerate(self.betas):
            _check_range(f"train.betas[{i}]", beta, (0.0, True), (1.0, False), _BETAS_FIX)
        self._check_schedule()
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(
                f"train.device must be auto, cpu, cuda or cuda:N; got {self.device!r}"
            )

    def _check_schedule(self) -> None:
        """ConfigError for schedule settings that would be ignored or are out of order."""
        if self.scheduler == "multistep":
            steps = self.milestones
            if not steps:
                raise ConfigError(
                    "train.scheduler=multistep needs train.milestones, the optimizer steps at "
                    "which the lr is multiplied by train.gamma, e.g. "
                    "train.milestones=[32000, 48000]"
                )
            if any(b <= a for a, b in zip(steps, steps[1:])) or steps[0] < 1:
                raise ConfigError(
                    f"train.milestones={steps} must be positive and increasing, e.g. [32000, 48000]"
                )
        elif self.milestones is not None:
            raise ConfigError(
                f"train.milestones is only read by train.scheduler=multistep (the scheduler is "
                f"{self.scheduler!r}): set train.scheduler=multistep, or leave milestones out"
            )
        if self.warmup_lr is not None and not self.warmup_steps:
            raise ConfigError(
                "train.warmup_lr is held for train.warmup_steps steps, which is 0: set "
                "train.warmup_steps (e.g. 400), or leave warmup_lr out"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "train") -> TrainConfig:
        """Build from a mapping, checking every key and converting every value."""
        return from_mapping(cls, values, where)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out


def _train_hints() -> dict[str, Any]:
    return _type_hints(TrainConfig)


# A bound is (value, inclusive); None means unbounded on that side.
_Bound = tuple[float, bool] | None
_BETAS_FIX = "Adam's betas are decay rates of its moment estimates, e.g. train.betas=[0.9, 0.999]."
_TRAIN_RANGES: tuple[tuple[str, _Bound, _Bound, str], ...] = (
    ("epochs", (1, True), None, "Train for at least one epoch, e.g. train.epochs=10."),
    ("max_steps", (1, True), None, "Use a positive step count, or null for no limit."),
    (
        "lr",
        (0.0, True),
        None,
        "The learning rate is a step size: use a small positive value, e.g. train.lr=1e-3.",
    ),
    (
        "weight_decay",
        (0.0, True),
        None,
        "Weight decay shrinks weights toward zero: use 0 (none) or e.g. train.weight_decay=0.05.",
    ),
    ("momentum", (0.0, True), (1.0, False), "SGD momentum, e.g. train.momentum=0.9."),
    (
        "warmup_steps",
        (0, True),
        None,
        "The warm-up length in optimizer steps: use 0 (none) or e.g. train.warmup_steps=100.",
    ),
    (
        "warmup_lr",
        (0.0, False),
        None,
        "The lr held during the warm-up, e.g. train.warmup_lr=0.01, or null for a linear ramp.",
    ),
    ("min_lr", (0.0, True), None, "The cosine schedule's floor: 0 or a small positive lr."),
    ("step_size", (1, True), None, "Optimizer steps between decays, e.g. train.step_size=1000."),
    ("gamma", (0.0, False), None, "The step schedule's factor, e.g. train.gamma=0.1."),
    ("grad_accum", (1, True), None, "Micro-batches per optimizer step: 1 for none."),
    (
        "clip_grad_norm",
        (0.0, False),
        None,
        "The largest global gradient norm, e.g. train.clip_grad_norm=1.0, or null for none.",
    ),
    (
        "ema_decay",
        (0.0, False),
        (1.0, False),
        "The weight of the old average per step, e.g. train.ema_decay=0.999, or null for no EMA.",
    ),
    (
        "layer_decay",
        (0.0, False),
        (1.0, True),
        "The lr factor per layer toward the input, e.g. train.layer_decay=0.75, or null.",
    ),
    (
        "early_stopping_patience",
        (1, True),
        None,
        "Evaluations without improvement before stopping, or null to never stop early.",
    ),
    ("log_every", (1, True), None, "Optimizer steps between metrics.csv rows, e.g. 10."),
    ("eval_every", (1, True), None, "Optimizer steps between evaluations, or null (each epoch)."),
    (
        "checkpoint_every",
        (1, True),
        None,
        "Optimizer steps between step-<N>.ckpt files, or null for none.",
    ),
    ("keep_last", (1, True), None, "How many step-<N>.ckpt files to keep, e.g. 2."),
    ("max_bad_steps", (0, True), None, "Non-finite steps to skip before stopping; 0 for none."),
    ("num_workers", (0, True), None, "DataLoader worker processes; 0 loads in this process."),
)


def _describe_range(low: _Bound, high: _Bound, integer: bool) -> str:
    kind = "an integer" if integer else "a number"
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low[1] else '>'} {low[0]:g}")
    if high is not None:
        parts.append(f"{'<=' if high[1] else '<'} {high[0]:g}")
    return f"{kind} {' and '.join(parts)}"


def _check_range(where: str, value: Any, low: _Bound, high: _Bound, fix: str) -> None:
    """Raise ConfigError naming the value, the range it must be in, and how to fix it."""
    if value is None:
        return
    # `not (a <= b)` rather than `a > b`: NaN fails every comparison and must be refused too.
    ok = low is None or (value >= low[0] if low[1] else value > low[0])
    ok = ok and (high is None or (value <= high[0] if high[1] else value < high[0]))
    if not ok or value != value:
        expected = _describe_range(low, high, isinstance(value, int))
        raise ConfigError(f"{where}={value!r} is out of range: expected {expected}. {fix}")


def check_batch_size(value: Any, where: str = "data.batch_size") -> int:
    """A batch size as a positive int; ConfigError naming the value and the fix otherwise."""
    size = _convert(value, int, where)
    _check_range(
        where,
        size,
        (1, True),
        None,
        f"It is the number of samples per process per step: use e.g. {where}=32.",
    )
    return size


@dataclass
class Recipe:
    """A whole recipe: the four sections, validated."""

    model: dict[str, Any]
    data: dict[str, Any]
    task: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": copy.deepcopy(self.model),
            "data": copy.deepcopy(self.data),
            "task": copy.deepcopy(self.task),
            "train": self.train.to_dict(),
        }


def check_keys(values: dict[str, Any], accepted: list[str] | set[str], where: str) -> None:
    """Raise ConfigError for a key not in ``accepted``, naming the closest one."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values; got {values!r}")
    for key in values:
        if key not in accepted:
            close = difflib.get_close_matches(str(key), list(accepted), n=1, cutoff=0.6)
            hint = f" Did you mean {where}.{close[0]}?" if close else ""
            raise ConfigError(
                f"unknown key {where}.{key}.{hint} Accepted: {', '.join(sorted(accepted))}."
            )


T = typing.TypeVar("T")


def from_mapping(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Build a config dataclass from a mapping: every key checked, every value converted
    to the type its field declares (``"1e-3"`` -> 1e-3 for a float field).

    Raises:
        ConfigError: an unknown key (naming the close match) or a value of the wrong type.
    """
    check_keys(values, [f.name for f in dataclasses.fields(cls)], where)
    hints = _type_hints(cls)
    return cls(**{k: _convert(v, hints[k], f"{where}.{k}") for k, v in values.items()})


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types (resolving them is slow, and they never change)."""
    return typing.get_type_hints(cls)


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Convert a YAML or command-line value to the type a field declares."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is Literal:
        text = str(value) if not isinstance(value, bool) else value
        if text in args:
            return text
        raise ConfigError(f"{where} must be one of {', '.join(map(str, args))}; got {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, e.g. [32000, 48000]; got {value!r}")
        item = args[0] if args else Any
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where} must be a list of {len(args)} values; got {value!r}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where} must be true or false; got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
            return int(value)
        raise ConfigError(f"{where} must be an integer; got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.match(value.strip()):
            return float(value)
        raise ConfigError(f"{where} must be a number; got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} must be a string; got {value!r}")
    return value


def parse_scalar(text: str) -> Any:
    """Parse one command-line or YAML scalar the way a person means it (1e-4 is a float)."""
    import yaml

    value = yaml.safe_load(text) if text.strip() else ""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    return value


def _fix_floats(value: Any) -> Any:
    """YAML 1.1 reads 1e-4 (no dot) as a string; read such strings as floats."""
    if isinstance(value, dict):
        return {k: _fix_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fix_floats(v) for v in value]
    if isinstance(value, str) and _FLOAT.match(value) and not value.lstrip("+-").isdigit():
        return float(value)
    return value


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """Turn ``["train.lr=3e-4", "model.num_classes=5"]`` into nested mappings."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"override {item!r} must look like section.key=value, e.g. train.lr=3e-4"
            )
        check_keys({section: None}, SECTIONS, "recipe")
        out.setdefault(section, {})[name] = parse_scalar(text)
    return out


def apply_overrides(raw: dict[str, Any], overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A copy of a raw recipe mapping with the overrides merged in."""
    merged = copy.deepcopy(raw)
    for section, values in overrides.items():
        merged.setdefault(section, {}).update(values)
    return merged


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    """Validate a raw mapping's structure and the ``train`` section."""
    check_keys(raw, SECTIONS, "recipe")
    for section in ("model", "data"):
        if not isinstance(raw.get(section), dict) or "name" not in raw[section]:
            raise ConfigError(f"recipe section {section!r} needs a mapping with a 'name' key")
    raw = _fix_floats(raw)
    if "batch_size" in raw["data"]:
        raw["data"]["batch_size"] = check_batch_size(raw["data"]["batch_size"])
    return Recipe(
        model=dict(raw["model"]),
        data=dict(raw["data"]),
        task=dict(raw.get("task") or {}),
        train=TrainConfig.from_dict(dict(raw.get("train") or {})),
    )


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe (``yaml.safe_load`` only), apply overrides, and validate it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no recipe file at {path}; pass the path of a YAML recipe")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping with sections {', '.join(SECTIONS)}")
    return recipe_from_dict(apply_overrides(raw, parse_overrides(overrides or [])))
