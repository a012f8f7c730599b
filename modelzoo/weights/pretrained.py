"""``save_pretrained`` / ``from_pretrained``: a model as a folder that rebuilds it.

The folder is the Hugging Face Hub layout, so a local folder and a Hub repo are
interchangeable (``modelzoo.push_to_hub`` uploads exactly what ``save_pretrained``
writes; ``create("hf-hub:org/repo")`` reads it back through ``from_pretrained``):

- ``config.json``: the model's registered name and builder arguments, its
  ``pretrained_cfg`` (the preprocessing ``modelzoo.transforms`` builds, class names) when
  it has one, and the card's facts (license, metrics, recipe, source weights; for RL
  policies the environment and observation statistics);
- ``model.safetensors``: the weights (no pickle);
- ``README.md``: the model card, with the YAML front matter the Hub reads
  (``library_name``, ``license``, ``tags``).

``from_pretrained`` also reads timm's layout (``config.json`` with ``architecture``,
``num_classes``, ``model_args`` and ``pretrained_cfg``, as ``timm.models.push_to_hf_hub``
writes it): an architecture the zoo has natively (e.g. ``vit_base_patch16_224``, whose
parameter names are timm's) is built natively, any other through the ``timm/`` bridge.

``save_pretrained`` takes a model, a run directory (its evaluated weights, recipe and test
metrics; an RL run's policy with its environment and observation statistics) or a folder.
:func:`policy_from_pretrained` turns a policy's folder (or Hub repo) back into a
:class:`~modelzoo.train.rl.play.LoadedPolicy` that plays as it did in training.

A folder may come from anywhere, so ``config.json`` is read as untrusted: its model name
must be a registered (or timm/torchvision) model name without a weight tag, its builder
arguments may not name files, URLs or weights to fetch, layer types (``__type__``) must be
torch or modelzoo ``nn.Module`` classes, and a policy's environment must be a registered
gymnasium id (no ``module:`` import) without file arguments.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from modelzoo.errors import ConfigError, ModelzooError, WeightsError
from modelzoo.utils.io import atomic_write
from modelzoo.weights.layout import CONFIG_NAME, LIBRARY_NAME, README_NAME, WEIGHTS_NAME
from modelzoo.weights.readme_card import is_policy_card, render_model_card

__all__ = [
    "save_pretrained",
    "pretrained_files",
    "from_pretrained",
    "read_pretrained_config",
    "PretrainedConfig",
    "model_card_facts",
    "render_model_card",
    "policy_from_pretrained",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "README_NAME",
    "LIBRARY_NAME",
]

_logger = logging.getLogger(__name__)

_CONFIG_FORMAT = 1
_HUB_PREFIX = "hf-hub:"

_TYPE_MODULES = ("torch.", "modelzoo.")
_TYPE_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_EXTERNAL_NAME = re.compile(r"(timm|torchvision)/[A-Za-z0-9][A-Za-z0-9_\-]*")
# Arguments of create() and of the bridged libraries that load weights or read files: a
# config.json must not be able to make from_pretrained fetch or open anything by itself.
_RESERVED_KWARGS = frozenset({"pretrained", "features_only", "out_indices", "strict"})
_PATH_LIKE_KWARG = re.compile(
    r"^(pretrained|checkpoint|weights|cache|hf_hub|url|file|model_dir)|(_path|_file|_url|_dir)$"
)


def _encode(value: Any, key: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, key) for v in value]}
    if isinstance(value, list):
        return [_encode(v, key) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, type) and issubclass(value, nn.Module):
        path = f"{value.__module__}.{value.__qualname__}"
        if path.startswith(_TYPE_MODULES):
            return {"__type__": path}
    raise ConfigError(
        f"save_pretrained: the builder argument {key}={value!r} cannot be written to "
        f"{CONFIG_NAME}; pass config={{...}} with JSON values (e.g. act_layer='gelu')"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        if set(value) == {"__type__"}:
            return _import_layer_type(value["__type__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _import_layer_type(path: str) -> type[nn.Module]:
    # Only public torch and modelzoo classes, by dotted name: config.json may come from anywhere.
    if (
        not isinstance(path, str)
        or not path.startswith(_TYPE_MODULES)
        or not _TYPE_PATH.fullmatch(path)
    ):
        raise WeightsError(
            f"{CONFIG_NAME} names a layer type {path!r}; only public torch/modelzoo nn.Module "
            "classes given by their dotted name (e.g. 'torch.nn.modules.activation.GELU') are "
            "accepted"
        )
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            return obj
        break
    raise WeightsError(f"{CONFIG_NAME} names layer type {path!r}, which is not an nn.Module class")


# --- saving -----------------------------------------------------------------------------------

# The facts a card may hold (config.json "card", README.md); anything else is refused.
CARD_KEYS = (
    "description",
    "source",
    "license",
    "metrics",
    "recipe",
    "input_spec",
    "tags",
    "num_params",
)


def save_pretrained(
    model: nn.Module | str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    config: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``README.md``; ``from_pretrained`` rebuilds.

    Args:
        model: a model made by ``modelzoo.create`` (or a ``features_only`` wrapper of one);
            or a run directory (its evaluated weights, with the recipe and test metrics;
            an RL run's policy, with its environment and observation statistics); or a
            folder written by ``save_pretrained`` or ``modelzoo finetune`` (re-written
            with its card).
        directory: created if needed; existing files of the same names are replaced.
        config: the builder arguments to record; default ``model.init_kwargs``
            (recorded by ``create``), with ``num_classes`` updated after a
            ``reset_classifier``.
        card: facts for the model card, over the ones found (the weight set it was
            loaded from, the run's recipe and metrics): ``description``, ``source``,
            ``license`` (an SPDX id such as ``"bsd-3-clause"``), ``metrics`` (dataset ->
            metric -> value), ``recipe``, ``input_spec``, ``tags``.
        repo_id: the Hub repository the folder is meant for (``org/repo``); the card's
            loading instructions name it. ``push_to_hub`` passes it.

    Returns:
        The directory.

    Every file is serialized in memory first and then written with
    :func:`~modelzoo.utils.io.atomic_write`, the weights first and ``config.json`` last
    (a folder without ``config.json`` is not one ``from_pretrained`` reads), so a failure
    never leaves a half-written file, and a folder this call created is removed again.
    The output depends only on the model and the card (no dates), so saving twice gives
    the same bytes.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} exists and is not a directory")
    files = pretrained_files(model, config=config, card=card, repo_id=repo_id)
    created = not directory.exists()
    try:
        for name in (WEIGHTS_NAME, README_NAME, CONFIG_NAME):  # config.json last
            atomic_write(directory / name, files[name])
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    _logger.info("saved %s to %s", ", ".join(files), directory)
    return directory


def pretrained_files(
    model: nn.Module | str | os.PathLike[str],
    *,
    config: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
) -> dict[str, bytes]:
    """The files :func:`save_pretrained` writes, in memory: name -> bytes.

    ``push_to_hub`` commits exactly these bytes, so a Hub repo and a local folder saved
    with the same arguments hold the same files. The arguments are ``save_pretrained``'s.
    """
    from safetensors.torch import save

    found: dict[str, Any] = {}
    if not isinstance(model, nn.Module):
        model, found = _load_target(model)
    features = _is_feature_wrapper(model)
    inner = model.model if features else model
    name = getattr(model, "model_name", None) or getattr(inner, "model_name", None)
    if not name:
        raise ConfigError(
            "save_pretrained needs a model made by modelzoo.create() (it records the model "
            "name); set model.model_name = '<registered name>' and pass config={...}"
        )
    if config is None and not hasattr(inner, "init_kwargs"):
        _logger.warning(
            "save_pretrained: %s records no builder arguments (init_kwargs); pass config={...} "
            "(e.g. num_classes, in_chans) unless it was built with the defaults",
            name,
        )
    kwargs = dict(getattr(inner, "init_kwargs", {}) if config is None else config)
    num_classes = getattr(inner, "num_classes", None)
    if config is None and callable(getattr(inner, "get_classifier", None)):
        if isinstance(num_classes, int) and not isinstance(num_classes, bool):
            kwargs["num_classes"] = num_classes  # reset_classifier() may have changed it
    payload: dict[str, Any] = {
        "model_name": name,
        "model_kwargs": {k: _encode(v, k) for k, v in kwargs.items()},
        "format_version": _CONFIG_FORMAT,
    }
    if features:
        payload["features_only"] = True
        payload["out_indices"] = list(model.out_indices)
    cfg = _saved_cfg(model)
    if cfg:
        payload["pretrained_cfg"] = cfg
    facts = {**model_card_facts(model), **found, **dict(card or {})}
    facts["num_params"] = sum(p.numel() for p in inner.parameters())
    payload["card"] = _checked_card(facts)
    if repo_id is not None:
        _check_repo_id(repo_id)
    try:
        config_text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as err:
        raise ConfigError(f"save_pretrained: the card or config is not plain JSON: {err}") from err
    return {
        README_NAME: render_model_card(payload, repo_id=repo_id).encode("utf-8"),
        CONFIG_NAME: config_text.encode("utf-8"),
        # Tied weights are stored once; load_pretrained restores the other names from the tie.
        WEIGHTS_NAME: save(_untied_state(inner), metadata={"format": "pt"}),
    }


def _check_repo_id(repo_id: str) -> None:
    from modelzoo.weights.hub import check_repo_id

    check_repo_id(repo_id)


def _saved_cfg(model: nn.Module) -> dict[str, Any] | None:
    """The model's ``pretrained_cfg`` as config.json records it (None: it has none)."""
    from modelzoo.transforms import resolve_pretrained_cfg

    try:
        cfg = resolve_pretrained_cfg(model)
    except ModelzooError:
        return None
    # Where the weights were on this machine is no fact about the model.
    cfg = {k: v for k, v in cfg.items() if k not in ("source", "file")}
    return json.loads(json.dumps(cfg, default=_jsonable)) if cfg else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def _checked_card(facts: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(facts) - set(CARD_KEYS))
    if unknown:
        raise ConfigError(f"card keys {unknown} are not known; a card holds {', '.join(CARD_KEYS)}")
    out = {k: facts[k] for k in CARD_KEYS if facts.get(k) not in (None, "", {}, [])}
    metrics = out.get("metrics", {})
    if not isinstance(metrics, Mapping) or not all(
        isinstance(v, Mapping) and all(isinstance(x, (int, float)) for x in v.values())
        for v in metrics.values()
    ):
        raise ConfigError(
            f"card metrics must map a dataset to metric -> number, e.g. "
            f"{{'digits/test': {{'accuracy': 0.98}}}}; got {metrics!r}"
        )
    if "tags" in out and not (
        isinstance(out["tags"], (list, tuple)) and all(isinstance(t, str) for t in out["tags"])
    ):
        raise ConfigError(f"card tags must be a list of strings; got {out['tags']!r}")
    return out


def model_card_facts(model: nn.Module) -> dict[str, Any]:
    """What a model's card can say about it from what it carries.

    A model loaded from one of the zoo's weight sets gives that set's name (``source``),
    license, description, recipe and input spec, and its published metrics when it was
    loaded unchanged (``load_report.exact``); a model loaded from a library or the Hub
    gives that source; a ``pretrained_cfg`` with a ``license`` gives the license.
    """
    inner = model.model if _is_feature_wrapper(model) else model
    facts: dict[str, Any] = {}
    report = getattr(inner, "load_report", None) or getattr(model, "load_report", None)
    label = getattr(report, "source", None)
    ws = _published_weight_set(label)
    if ws is not None:
        facts["source"] = ws.name
        facts["license"] = ws.license
        facts["description"] = ws.description
        if isinstance(ws.recipe, Mapping):
            facts["recipe"] = dict(ws.recipe)
        if ws.input_spec:
            facts["input_spec"] = dict(ws.input_spec)
        if ws.metrics and getattr(report, "exact", False):
            facts["metrics"] = {k: dict(v) for k, v in ws.metrics.items()}
    elif isinstance(label, str) and label.startswith(("timm/", "torchvision/", _HUB_PREFIX)):
        facts["source"] = label
    cfg = getattr(inner, "pretrained_cfg", None)
    if not facts.get("license") and isinstance(cfg, Mapping):
        license_ = cfg.get("license")
        if isinstance(license_, str) and license_:
            facts["license"] = license_
    return {k: v for k, v in facts.items() if v not in (None, "", {})}


def _published_weight_set(label: Any) -> Any:
    """The zoo's weight set that a load report's ``source`` names, or None."""
    if not isinstance(label, str) or "." not in label or "/" in label or "\\" in label:
        return None
    from modelzoo.registry import is_model, split_name
    from modelzoo.weights.manifest import get_weight_set

    arch, tag = split_name(label)
    if tag is None or not is_model(arch):
        return None
    try:
        return get_weight_set(arch, tag)
    except ModelzooError:
        return None


def _load_target(target: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """The model a folder or run directory holds, and the card facts it records."""
    path = Path(target).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"{target!r} is not a model, a run directory (config.yaml and checkpoints/) or a "
            "model folder (config.json); pass one of those"
        )
    for folder in (path, path / "model"):  # a fine-tune run keeps its model in model/
        if (folder / CONFIG_NAME).is_file():
            facts = dict(read_pretrained_config(folder).card)
            facts.pop("num_params", None)
            facts.update(_finetune_card(folder))
            return from_pretrained(folder), facts
    if (path / "config.yaml").is_file():
        return _from_run_dir(path)
    raise ConfigError(
        f"{path} holds neither config.json (a model folder) nor config.yaml and checkpoints/ "
        "(a run directory)"
    )


def _finetune_card(folder: Path) -> dict[str, Any]:
    """The facts of a ``modelzoo finetune`` card (``model_card.json``) in a model folder."""
    card = _read_json(folder / "model_card.json")
    facts: dict[str, Any] = {}
    if isinstance(card.get("metrics"), dict):
        facts["metrics"] = card["metrics"]
    if isinstance(card.get("license"), str):
        facts["license"] = card["license"]
    if isinstance(card.get("recipe"), dict):
        facts["recipe"] = card["recipe"]
    source = card.get("source_weights")
    if isinstance(source, dict) and isinstance(source.get("name"), str):
        facts["source"] = source["name"]
    return facts


def _from_run_dir(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """A run directory's evaluated model (an RL run's policy) and its recipe and metrics."""
    from modelzoo.config import load_recipe
    from modelzoo.train.rl import is_rl_recipe

    recipe = load_recipe(path / "config.yaml")
    measured = _read_json(path / "test_metrics.json")
    numbers = {
        k: float(v)
        for k, v in measured.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    facts: dict[str, Any] = {"recipe": recipe.to_dict()}
    if is_rl_recipe(recipe):
        from modelzoo.train.rl.play import load_policy, policy_card_spec
        from modelzoo.train.rl.runner import parse_recipe

        policy = load_policy(path)
        data, _, _ = parse_recipe(recipe)
        facts["input_spec"] = policy_card_spec(data, policy.obs_rms)
        if numbers:
            facts["metrics"] = {f"{data.env_id}/test": numbers}
        return policy.model, facts
    from modelzoo.predict import load_model

    model = load_model(path)
    if numbers:
        facts["metrics"] = {f"{recipe.data.get('name')}/test": numbers}
    start = recipe.model.get("pretrained")
    if isinstance(start, str) and _published_weight_set(start) is not None:
        facts["source"] = start
    return model, facts


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _untied_state(model: nn.Module) -> dict[str, Any]:
    """The state dict with each shared tensor once, contiguous, under its first name."""
    state: dict[str, Any] = {}
    seen: set[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = set()
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach()
        if tensor.device.type == "meta":
            raise ConfigError(f"save_pretrained: {key} is on the meta device and holds no values")
        view = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        if tensor.numel() and view in seen:
            continue  # the same tensor under another name (tied weights)
        seen.add(view)
        tensor = tensor.to("cpu")
        state[key] = tensor if tensor.is_contiguous() else tensor.contiguous()
    # Partly overlapping views (not the same tensor) are stored as copies.
    return _separate_storages(state)


def _separate_storages(state: dict[str, Any]) -> dict[str, Any]:
    """Copies of tensors that still share storage: safetensors refuses shared memory."""
    owners: set[int] = set()
    out = {}
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr()
        if tensor.numel() and ptr in owners:
            tensor = tensor.clone()
        owners.add(tensor.untyped_storage().data_ptr())
        out[key] = tensor
    return out


# --- reading ----------------------------------------------------------------------------------

_TIMM_ARCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")
# timm's legacy single-dict config.json keeps these next to the preprocessing facts.
_TIMM_TOP_KEYS = ("architecture", "num_features", "model_args", "label_names", "labels")


@dataclass(frozen=True)
class PretrainedConfig:
    """What a folder's ``config.json`` says, checked.

    Attributes:
        name: what ``create`` builds: a registered name, or ``timm/<arch>`` for a timm
            architecture the zoo does not have natively.
        kwargs: the builder arguments (decoded).
        layout: ``"modelzoo"`` (``save_pretrained``) or ``"timm"`` (``push_to_hf_hub``).
        features_only: the folder holds a feature extractor.
        out_indices: its feature levels.
        pretrained_cfg: the preprocessing facts as recorded (timm's: with its top-level
            ``num_classes`` and ``label_names``), or None.
        card: the card's facts ({} when none).
        path: the ``config.json``.
    """

    name: str
    kwargs: dict[str, Any]
    layout: str
    features_only: bool = False
    out_indices: list[int] | None = None
    pretrained_cfg: dict[str, Any] | None = None
    card: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: Path = Path(CONFIG_NAME)

    def resolved_cfg(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The folder's complete ``pretrained_cfg`` (what ``transforms`` builds), or None.

        Fitted to builder ``overrides``: another ``in_chans``/``img_size`` changes the input
        size (same crop), another ``num_classes`` drops the class names. A folder without a
        ``pretrained_cfg`` in ``config.json`` may still have a fine-tune's ``model_card.json``.
        """
        return _folder_cfg(self, self.path.parent, overrides or {})


def read_pretrained_config(directory: str | os.PathLike[str]) -> PretrainedConfig:
    """Read and check the ``config.json`` of a model folder (the zoo's layout or timm's).

    Raises:
        WeightsError: no ``config.json``, invalid JSON, or content that names no known
            architecture or could make loading open a file or fetch weights.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsError(
            f"{directory} has no {CONFIG_NAME}, so it was not written by save_pretrained; to load "
            f"weights into a model you build, use modelzoo.create(name, pretrained='{directory}')"
        )
    try:
        payload = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise WeightsError(f"{config_path} is not valid JSON: {err}") from err
    if isinstance(payload, dict) and "model_name" not in payload and "architecture" in payload:
        return _timm_config(payload, config_path)
    name, raw_kwargs, out_indices = _checked_config(payload, config_path)
    cfg = payload.get("pretrained_cfg")
    card = payload.get("card")
    return PretrainedConfig(
        name=name,
        kwargs=_decode(raw_kwargs),
        layout="modelzoo",
        features_only=payload.get("features_only") is True,
        out_indices=out_indices,
        pretrained_cfg=dict(cfg) if isinstance(cfg, dict) else None,
        card=dict(card) if isinstance(card, dict) else {},
        path=config_path,
    )


def _timm_config(payload: dict[str, Any], path: Path) -> PretrainedConfig:
    """timm's layout: build natively when the zoo has the architecture, else through timm."""
    from modelzoo.registry import accepted_kwargs, is_model

    arch = payload.get("architecture")
    if not isinstance(arch, str) or not _TIMM_ARCH.fullmatch(arch.partition(".")[0]):
        raise WeightsError(
            f"{path}: architecture must be a timm model name such as 'vit_base_patch16_224'; "
            f"got {arch!r}"
        )
    arch = arch.partition(".")[0]
    num_classes = payload.get("num_classes")
    if num_classes is not None and (
        not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0
    ):
        raise WeightsError(f"{path}: num_classes must be an integer >= 0, got {num_classes!r}")
    model_args = payload.get("model_args", {})
    if not isinstance(model_args, dict):
        raise WeightsError(f"{path}: model_args must be a JSON object, got {model_args!r}")
    _check_config_value(model_args, path, "model_args")
    kwargs = dict(model_args)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    accepted = accepted_kwargs(arch) if is_model(arch) else frozenset()
    native = is_model(arch) and (accepted is None or set(kwargs) <= accepted)
    raw_cfg = payload.get("pretrained_cfg")
    if raw_cfg is None:  # timm's legacy single-dict config
        raw_cfg = {k: v for k, v in payload.items() if k not in _TIMM_TOP_KEYS}
    if not isinstance(raw_cfg, dict):
        raise WeightsError(f"{path}: pretrained_cfg must be a JSON object, got {raw_cfg!r}")
    cfg = dict(raw_cfg)
    cfg["architecture"] = arch
    if num_classes is not None:
        cfg["num_classes"] = num_classes
    labels = payload.get("label_names", payload.get("labels"))
    if isinstance(labels, list) and all(isinstance(x, str) for x in labels):
        cfg["label_names"] = tuple(labels)
    _logger.info(
        "%s: timm's layout for %s, built %s",
        path,
        arch,
        "natively" if native else "through the timm bridge",
    )
    return PretrainedConfig(
        name=arch if native else f"timm/{arch}",
        kwargs=kwargs,
        layout="timm",
        pretrained_cfg=cfg,
        path=path,
    )


def from_pretrained(
    directory: str | os.PathLike[str], *, strict: bool | None = None, **overrides: Any
) -> nn.Module:
    """Rebuild a model from a folder written by :func:`save_pretrained` (or in timm's layout).

    Args:
        directory: the folder holding ``config.json`` and the weights, or a Hub id
            ``hf-hub:org/repo[@revision]`` (downloaded through huggingface_hub first).
        strict: refuse any difference between file and model; default: strict
            unless ``overrides`` change the model.
        **overrides: builder arguments that replace the recorded ones, e.g.
            ``num_classes=5`` (the head is re-initialized) or ``in_chans=1``
            (the first convolution is adapted).

    Returns:
        The model, with ``load_report`` set, and ``pretrained_cfg`` when the folder
        records its preprocessing (adjusted to ``in_chans``/``img_size`` overrides; without
        class names when ``num_classes`` changes).
    """
    import modelzoo

    label = None
    if isinstance(directory, str) and directory.startswith(_HUB_PREFIX):
        from modelzoo.weights.hub import download_model

        snapshot = download_model(directory)
        if CONFIG_NAME not in snapshot.files:
            raise WeightsError(
                f"{snapshot.ref} has no {CONFIG_NAME} naming its architecture; load its weights "
                f"into one you name: modelzoo.create('<arch>', pretrained='{snapshot.ref}')"
            )
        directory, label = snapshot.folder, snapshot.label
    directory = Path(directory)
    conf = read_pretrained_config(directory)
    kwargs = {**conf.kwargs, **overrides}
    if conf.features_only and "features_only" not in overrides:
        # The wrapper is rebuilt the way create() builds it (the bridges have their own);
        # the saved weights are the wrapped model's, which load under its "model." prefix.
        kwargs.update(features_only=True, out_indices=conf.out_indices)
    model = modelzoo.create(conf.name, **kwargs)
    if strict is None:  # a feature extractor of the same model still loads every tensor
        strict = not (set(overrides) - {"features_only", "out_indices"})
    from modelzoo.transfer import load_pretrained

    try:
        report = load_pretrained(model, directory, strict=strict)
    except WeightsError as err:
        if conf.layout == "timm" and not conf.name.startswith("timm/"):
            raise WeightsError(
                f"{err}\nThe folder is in timm's layout for {conf.name}, which the zoo builds "
                f"natively; to load it with timm's own model instead, use "
                f"modelzoo.create('timm/{conf.name}', pretrained=...)"
            ) from err
        raise
    if label is not None:
        report = dataclasses.replace(report, source=label)
    _attach(model, "load_report", report)
    cfg = conf.resolved_cfg(overrides)
    if cfg is not None:
        _attach(model, "pretrained_cfg", cfg)
    return model


def _attach(model: nn.Module, name: str, value: Any) -> None:
    """Set an attribute on a model and, for a feature wrapper, on the model it wraps."""
    setattr(model, name, value)
    inner = getattr(model, "model", None)
    if _is_feature_wrapper(model) and isinstance(inner, nn.Module):
        setattr(inner, name, value)


def _folder_cfg(
    conf: PretrainedConfig, directory: Path, overrides: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The folder's preprocessing, fitted to the overrides; None when it records none."""
    from modelzoo.transforms import folder_pretrained_cfg, overridden_cfg, resolve_pretrained_cfg

    cfg: dict[str, Any] | None
    if conf.pretrained_cfg is not None:
        cfg = dict(conf.pretrained_cfg)
        if cfg.get("input_size"):
            try:
                cfg = resolve_pretrained_cfg(cfg)
            except ModelzooError as err:
                # The weights still load; transforms() raises this again when asked.
                _logger.warning(
                    "%s: its pretrained_cfg cannot build a pipeline: %s", conf.path, err
                )
    else:
        cfg = folder_pretrained_cfg(directory)  # a fine-tune's model_card.json
    if cfg is None:
        return None
    num_classes = overrides.get("num_classes")
    if num_classes is not None and num_classes != cfg.get("num_classes"):
        cfg["num_classes"] = num_classes
        cfg.pop("label_names", None)  # a new head: the card's classes are not its classes
    img_size, in_chans = overrides.get("img_size"), overrides.get("in_chans")
    if cfg.get("input_size") and (isinstance(img_size, int) or isinstance(in_chans, int)):
        try:
            cfg = overridden_cfg(
                cfg,
                img_size=img_size if isinstance(img_size, int) else None,
                in_chans=in_chans if isinstance(in_chans, int) else None,
            )
        except ModelzooError as err:
            _logger.warning("%s: preprocessing not adapted to the overrides: %s", directory, err)
    return cfg


# --- policies ---------------------------------------------------------------------------------

# A gymnasium id without a "module:" prefix (which would import that module): Name-vN or
# Namespace/Name-vN.
_ENV_ID = re.compile(r"([A-Za-z0-9_\-]+/)?[A-Za-z0-9_\-]+-v\d+")


def policy_from_pretrained(source: str | os.PathLike[str], *, device: str = "cpu") -> Any:
    """A policy saved with :func:`save_pretrained` (or pushed to the Hub), ready to play.

    Args:
        source: the folder, or ``hf-hub:org/repo[@revision]``.
        device: where the network runs.

    Returns:
        A :class:`~modelzoo.train.rl.play.LoadedPolicy`: the network, the environment id
        and arguments, the wrappers, the observation statistics and the evaluation
        settings of the run that trained it, so ``play`` and evaluation see what training saw.

    Raises:
        ConfigError: the folder holds no RL recipe (not a policy).
        WeightsError: the card's environment or statistics are missing or not acceptable
            (an environment id that imports a module, file arguments).
    """

    from modelzoo.config import recipe_from_dict
    from modelzoo.train.rl import is_rl_recipe
    from modelzoo.train.rl.play import LoadedPolicy, obs_rms_from_spec
    from modelzoo.train.rl.runner import parse_recipe

    label = str(source)
    if isinstance(source, str) and source.startswith(_HUB_PREFIX):
        from modelzoo.weights.hub import download_model

        snapshot = download_model(source)
        folder, label = snapshot.folder, snapshot.label
    else:
        folder = Path(source)
    conf = read_pretrained_config(folder)
    raw = conf.card.get("recipe")
    if not isinstance(raw, dict) or not is_policy_card(conf.card):
        raise ConfigError(
            f"{label} is not a policy: its {CONFIG_NAME} records no RL recipe (card.recipe); "
            "load the network with modelzoo.from_pretrained"
        )
    _check_policy_data(raw.get("data"), conf.path)
    recipe = recipe_from_dict(raw)
    if not is_rl_recipe(recipe):  # pragma: no cover - _is_policy checked the same
        raise ConfigError(f"{label} is not a policy")
    data, task, _ = parse_recipe(recipe)
    obs_rms = None
    if data.normalize_obs:
        stats = (conf.card.get("input_spec") or {}).get("obs_rms")
        if not isinstance(stats, dict):
            raise WeightsError(
                f"{label} was trained with data.normalize_obs but its card has no observation "
                "statistics (card.input_spec.obs_rms); it cannot play as it was trained"
            )
        obs_rms = obs_rms_from_spec(stats, str(conf.path))
    model = from_pretrained(folder)
    if label != str(source):
        _attach(model, "load_report", dataclasses.replace(model.load_report, source=label))
    return LoadedPolicy.from_recipe(
        model.to(device).eval(), data, task, source=label, obs_rms=obs_rms
    )


def _check_policy_data(data: Any, path: Path) -> None:
    """A card's environment must be a registered id, with no file or module arguments."""
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: card.recipe.data must be a JSON object")
    env_id = data.get("env_id")
    if not isinstance(env_id, str) or not _ENV_ID.fullmatch(env_id):
        raise WeightsError(
            f"{path}: card.recipe.data.env_id must be a registered gymnasium id such as "
            f"'CartPole-v1' or 'ALE/Pong-v5' (a 'module:Env' id would import a module); got "
            f"{env_id!r}"
        )
    _check_config_value(data.get("env_kwargs") or {}, path, "card.recipe.data.env_kwargs")


def _is_feature_wrapper(model: nn.Module) -> bool:
    """A ``features_only`` model: the zoo's FeatureListNet or a bridge's extractor."""
    return isinstance(getattr(model, "model", None), nn.Module) and callable(
        getattr(model, "channels", None)
    )


def _checked_config(payload: Any, path: Path) -> tuple[str, dict[str, Any], list[int] | None]:
    """The model name, builder arguments and feature indices of a config.json, checked.

    A config.json may come from anywhere: it may name a model and its builder
    arguments, and nothing else; none of it may make a path or a download.

    Raises:
        WeightsError: the config is not a mapping, names no registered model (or
            names a weight tag), or its arguments name files, URLs or weights.
    """
    if not isinstance(payload, dict):
        raise WeightsError(f"{path} must hold a JSON object, got {type(payload).__name__}")
    name = payload.get("model_name")
    if not isinstance(name, str) or not _known_model_name(name):
        raise WeightsError(
            f"{path}: model_name must be a registered model name such as 'resnet20' (or "
            f"'timm/<name>', 'torchvision/<name>') without a weight tag; got {name!r}. "
            "See `modelzoo list`."
        )
    kwargs = payload.get("model_kwargs", {})
    if not isinstance(kwargs, dict):
        raise WeightsError(f"{path}: model_kwargs must be a JSON object, got {kwargs!r}")
    _check_config_value(kwargs, path, "model_kwargs")
    if "features_only" in payload and not isinstance(payload["features_only"], bool):
        raise WeightsError(f"{path}: features_only must be true or false")
    out_indices = payload.get("out_indices")
    if out_indices is not None and (
        not isinstance(out_indices, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in out_indices)
    ):
        raise WeightsError(f"{path}: out_indices must be a list of integers, got {out_indices!r}")
    return name, kwargs, out_indices


def _known_model_name(name: str) -> bool:
    from modelzoo.registry import is_model, split_name

    if _EXTERNAL_NAME.fullmatch(name):
        return True  # the bridge checks that the library has it
    return split_name(name)[1] is None and is_model(name)


def _check_config_value(value: Any, path: Path, where: str) -> None:
    """Refuse arguments that could make from_pretrained open a file or fetch weights."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("__type__", "__tuple__") and len(value) == 1:
                _check_config_value(inner, path, f"{where}.{key}")
                continue
            if not isinstance(key, str) or key in _RESERVED_KWARGS or _PATH_LIKE_KWARG.search(key):
                raise WeightsError(
                    f"{path}: {where}.{key} is not accepted in a config.json: it could make "
                    f"the model load weights or read a file. Pass it yourself, e.g. "
                    f"from_pretrained(directory, {key}=...), if you mean it"
                )
            _check_config_value(inner, path, f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _check_config_value(inner, path, f"{where}[{i}]")
    elif isinstance(value, str) and where.endswith("__type__"):
        return  # checked by _import_layer_type when decoded
    elif isinstance(value, str):
        looks_like_path = (
            "\\" in value
            or "://" in value
            or value.startswith(("~", "/"))
            or ("/" in value and not _EXTERNAL_NAME.fullmatch(value))
            or "\x00" in value
        )
        if looks_like_path:
            raise WeightsError(
                f"{path}: {where}={value!r} looks like a path or URL, which a config.json may "
                "not hold (a builder argument names a model or a setting, never a file). Pass "
                "it yourself to from_pretrained(directory, ...) if you mean it"
            )
