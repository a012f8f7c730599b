"""Standard datasets through torchvision: ``build_data("torchvision/CIFAR10")``.

Any class of ``torchvision.datasets`` is a dataset here, named ``torchvision/<Class>``
(``CIFAR10``, ``CIFAR100``, ``MNIST``, ``FashionMNIST``, ``SVHN``, ``ImageNet``,
``ImageFolder``, ``STL10``, ...). Its files live in ``MODELZOO_HOME/data/<Class>`` (the
MNIST family keeps torchvision's own ``<Class>/raw`` layout there), or in ``root=``;
classes that can download fetch their files there on first use, with torchvision's
progress bar, one process at a time. ``MODELZOO_OFFLINE=1`` (or ``download=false``)
never downloads: a missing file is an :class:`~modelzoo.errors.OfflineError` that names
each file torchvision expects and where (e.g. ``cifar-10-batches-py/data_batch_1`` ...).
ImageNet cannot be downloaded (its licence asks users to register): torchvision reads
the archives or their extracted layout from a local root.

Splits: the class's own train and test splits (``train=True/False``, or
``split="train"/"test"``), its validation split when it has one (``val``, ``valid``),
else a validation split carved from the training split, stratified and seeded
(``val_fraction``); a dataset without splits (``ImageFolder``, ``EuroSAT``) is carved
into train, validation and test (``test_fraction``). ``split_args`` names the
constructor arguments of each split for classes whose splits are named otherwise.

Preprocessing comes from the recipe or from a model's card:

* the recipe: ``img_size`` and ``in_chans`` (default: the images' own, or 224 for
  datasets of photos of varied sizes, which are resized and center-cropped),
  ``normalize`` (``dataset``: per-channel mean and std of the training split, the
  default for datasets held in memory; ``imagenet``: the ImageNet statistics, the
  default for folders of photos; ``none``; or ``mean``/``std``), and ``augment``
  (``pad_crop_flip``: pad ``pad`` pixels of the mean colour, crop back at random, flip
  half the images, as He et al. 2016 on CIFAR; ``pad_crop`` without the flip, for
  digits; ``flip``; ``random_resized_crop``: the ImageNet augmentation);
* a card: ``transforms="resnet50.tv2_in1k"`` (any name :func:`modelzoo.transforms`
  takes) prepares images exactly as those weights expect, and trains with the standard
  augmentation at their input size. In a recipe, ``data.transforms: card`` means the
  recipe's own pretrained model (:func:`card_source`).

Each split gives ``(image, label)``: a float32 (C, H, W) tensor and an int64 class index
(targets of other kinds, e.g. detection boxes, are passed on as torchvision gives them).
``info`` holds ``num_classes``, ``classes`` (the class names), ``in_chans``,
``img_size``, ``in_features``, ``dataset`` (the name) and ``dataset_kwargs`` (the
options), the ``splits`` (their sizes and where they come from), the ``root``, and
``preprocessing`` (the evaluation pipeline as a card's ``input_spec``, which
``modelzoo predict`` reads back for a run trained on it).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import pickle
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.data.digits import split_indices
from modelzoo.data.registry import DataBundle, register_dataset_family
from modelzoo.data.torchvision_files import data_error
from modelzoo.data.torchvision_preprocessing import card_pipelines, card_source, recipe_pipelines
from modelzoo.errors import ConfigError
from modelzoo.utils.io import FileLock, UnsafeNameError, path_within, safe_file_name

__all__ = [
    "FAMILY",
    "AUGMENTS",
    "NORMALIZATIONS",
    "TorchvisionSplit",
    "torchvision_dataset",
    "dataset_names",
    "dataset_class",
    "default_root",
    "card_source",
]

_logger = logging.getLogger(__name__)

FAMILY = "torchvision"
AUGMENTS = ("none", "flip", "pad_crop", "pad_crop_flip", "random_resized_crop")
NORMALIZATIONS = ("dataset", "imagenet", "none")

# Constructor arguments the bridge sets itself; functions a recipe cannot give.
_HANDLED = ("root", "train", "split", "download", "transform", "target_transform", "transforms")
_FUNCTIONS = ("loader", "is_valid_file")
_TRAIN_SPLITS = ("train", "trainval")
_VAL_SPLITS = ("val", "valid", "validation")
_TEST_SPLITS = ("test",)
_SPLITS = ("train", "val", "test")
_TRUE = ("1", "true", "yes", "on")
_CLASS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# What torchvision raises when files are missing, damaged or cannot be fetched.
_DATA_ERRORS = (
    AssertionError,  # MNIST's reader asserts on a file that is not IDX
    RuntimeError,
    OSError,
    EOFError,
    KeyError,
    pickle.UnpicklingError,
    tarfile.TarError,
    zipfile.BadZipFile,
)


def _offline() -> bool:
    return os.environ.get("MODELZOO_OFFLINE", "").strip().lower() in _TRUE


# --- which classes ----------------------------------------------------------------------------


def _module() -> Any:
    import torchvision.datasets

    return torchvision.datasets


@functools.cache
def _public_classes() -> dict[str, type]:
    """The public ``VisionDataset`` subclasses of ``torchvision.datasets``, by name."""
    tvd = _module()
    found = {}
    for name in getattr(tvd, "__all__", ()):
        obj = vars(tvd).get(name)  # a dict lookup: no attribute access on a name from outside
        if (
            isinstance(obj, type)
            and issubclass(obj, tvd.VisionDataset)
            and obj is not tvd.VisionDataset
        ):
            found[name] = obj
    return found


def dataset_names() -> list[str]:
    """The classes of ``torchvision.datasets`` that a recipe can build (``CIFAR10``, ...).

    Left out: classes that need a Python function to be built (``DatasetFolder``'s
    ``loader``), which a recipe cannot give.
    """
    return sorted(n for n, cls in _public_classes().items() if not _needed_functions(cls))


def dataset_class(name: str) -> type:
    """The ``torchvision.datasets`` class named ``name``, checked to be a ``VisionDataset``.

    Raises:
        ConfigError: no such class (naming close matches), or a name that is not a plain
            class name.
    """
    classes = _public_classes()
    if isinstance(name, str) and _CLASS_NAME.match(name) and name in classes:
        cls = classes[name]
        needed = _needed_functions(cls)
        if needed:
            raise ConfigError(
                f"torchvision/{name} needs {', '.join(needed)}, a Python function, which a "
                "recipe cannot give; for a folder of images per class use "
                "torchvision/ImageFolder (or image_folder), or build the dataset in Python "
                "and pass a DataBundle"
            )
        return cls
    text = name if isinstance(name, str) else repr(name)
    lower = {n.lower(): n for n in classes}
    close = [lower[text.lower()]] if text.lower() in lower else []
    close += [n for n in _close(text, list(classes)) if n not in close]
    hint = f" Did you mean: {', '.join('torchvision/' + n for n in close[:3])}?" if close else ""
    raise ConfigError(
        f"torchvision.datasets has no dataset class {text!r}.{hint} Name one of its classes "
        f"exactly, e.g. torchvision/CIFAR10, torchvision/MNIST, torchvision/ImageFolder "
        f"(the list: modelzoo.data.list_datasets())"
    )


def _close(name: str, options: list[str]) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, options, n=3, cutoff=0.6)


def _constructor_params(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments of ``cls(...)``, following ``**kwargs`` to the base classes."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        more = False
        for p in list(inspect.signature(init).parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:
                more = True
            elif p.kind is not p.VAR_POSITIONAL:
                params.setdefault(p.name, p)
        if not more or klass is _module().VisionDataset:
            break
    return params


def _needed_functions(cls: type) -> list[str]:
    params = _constructor_params(cls)
    return [n for n in _FUNCTIONS if n in params and params[n].default is params[n].empty]


def _uses_train_flag(params: Mapping[str, inspect.Parameter]) -> bool:
    return "train" in params


def _class_options(cls: type) -> dict[str, inspect.Parameter]:
    """The class's own keyword arguments that a recipe may set (``year``, ``target_type``)."""
    params = _constructor_params(cls)
    bridge = set(_BRIDGE_OPTIONS)
    out = {}
    for name, p in params.items():
        if name.startswith("_") or name in _FUNCTIONS or name in bridge:
            continue
        if name in _HANDLED and not (name == "split" and _uses_train_flag(params)):
            continue  # EMNIST's split names a subset (balanced, ...); train/test is `train`
        out[name] = p
    return out


def _adds_own_folder(cls: type) -> bool:
    """torchvision's MNIST family keeps its files in ``<root>/<Class>/raw``."""
    return issubclass(cls, _module().MNIST)


def default_root(cls: type) -> Path:
    """The folder given to ``cls`` as its root: ``MODELZOO_HOME/data/<Class>``.

    (For the MNIST family ``MODELZOO_HOME/data``, in which torchvision itself makes
    ``<Class>/raw``.)
    """
    from modelzoo.weights.cache import cache_dir

    base = cache_dir() / "data"
    try:
        folder = path_within(base, safe_file_name(cls.__name__))
    except UnsafeNameError as err:  # pragma: no cover - class names are identifiers
        raise ConfigError(f"cannot keep {cls.__name__!r} under {base}: {err}") from None
    return folder.parent if _adds_own_folder(cls) else folder


def _data_folder(cls: type, root: Path) -> Path:
    """The folder that holds this class's files under ``root`` (what downloads lock)."""
    return root / cls.__name__ if _adds_own_folder(cls) else root


# --- building the splits ----------------------------------------------------------------------


class _NoSuchSplit(Exception):
    """The class refused a split name it does not have."""


def _construct(
    cls: type,
    args: Mapping[str, Any],
    *,
    root: Path | None,
    download: bool,
    probing: bool,
    why_not: str,
) -> Any:
    """``cls(root=..., **args)``, with torchvision's errors turned into ones that say what to do.

    Args:
        why_not: why nothing may be downloaded ("" when it may), for messages.
        probing: ``args`` name a split that may not exist: its refusal (a ValueError
            naming the value) raises :class:`_NoSuchSplit`.
    """
    name = cls.__name__
    params = _constructor_params(cls)
    kwargs = dict(args)
    if root is not None:
        kwargs["root"] = str(root)
    if "download" in params:
        kwargs["download"] = download
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    try:
        if download:
            folder = _data_folder(cls, root) if root is not None else None
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                _logger.info("torchvision/%s: fetching its files into %s", name, folder)
                with FileLock(folder, what=f"torchvision/{name} in {folder}"):
                    return cls(**kwargs)
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        if probing and any(repr(v) in str(err) or f"'{v}'" in str(err) for v in args.values()):
            raise _NoSuchSplit(str(err)) from None
        raise ConfigError(
            f"torchvision/{name}({shown}) failed: {err}. Check the data options (and "
            f"split_args) against the documentation of torchvision.datasets.{name}, and that "
            f"the files under {root} are whole"
        ) from None
    except ImportError as err:
        raise ConfigError(
            f"torchvision/{name} needs a package that is not installed: {err}"
        ) from None
    except _DATA_ERRORS as err:
        _logger.debug("torchvision/%s(%s) failed", name, shown, exc_info=True)
        raise data_error(cls, root, [args], download, why_not, err) from None


def _split_plan(
    params: Mapping[str, inspect.Parameter], split_args: Mapping[str, Any] | None
) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """The constructor arguments to try for each split, in order (empty: none of its own),
    and whether they are guesses that the class may refuse (split names)."""
    if split_args is not None:
        return {s: [dict(split_args[s])] if s in split_args else [] for s in _SPLITS}, False
    if _uses_train_flag(params):
        return {"train": [{"train": True}], "val": [], "test": [{"train": False}]}, False
    if "split" in params:
        plan = {
            "train": [{"split": s} for s in _TRAIN_SPLITS],
            "val": [{"split": s} for s in _VAL_SPLITS],
            "test": [{"split": s} for s in _TEST_SPLITS],
        }
        return plan, True
    return {"train": [{}], "val": [], "test": []}, False


def _labels_of(dataset: Any) -> np.ndarray | None:
    """The class index of every sample, read without loading images (None when not kept)."""
    for attr in ("targets", "labels", "_labels"):
        values = getattr(dataset, attr, None)
        if values is None or isinstance(values, (str, bytes, Mapping)):
            continue
        try:
            array = np.asarray(values.numpy() if torch.is_tensor(values) else values)
        except (TypeError, ValueError):
            continue
        if array.ndim == 1 and len(array) == len(dataset) and array.dtype.kind in "iu":
            return array.astype(np.int64)
    return None


def _class_names(dataset: Any, labels: np.ndarray | None) -> list[str] | None:
    names = getattr(dataset, "classes", None)
    if isinstance(names, Sequence) and not isinstance(names, (str, bytes)) and names:
        # ImageNet lists the synonyms of each class; its first is the common name.
        out = [str(n[0]) if isinstance(n, (tuple, list)) and n else str(n) for n in names]
        if labels is None or not len(labels) or labels.max() < len(out):
            return out
    count = getattr(dataset, "num_classes", None)
    if isinstance(count, int) and count > 0:
        return [str(i) for i in range(count)]
    if labels is not None and len(labels):
        return [str(i) for i in range(int(labels.max()) + 1)]
    return None


def _is_label(target: Any) -> bool:
    if isinstance(target, (bool, np.bool_)):
        return False
    if isinstance(target, (int, np.integer)):
        return True
    return torch.is_tensor(target) and target.ndim == 0 and not target.is_floating_point()


class TorchvisionSplit(Dataset):
    """One split of a torchvision dataset: some of its samples, with this split's pipeline.

    Items are ``(transform(image), label)``; a class index becomes an int64 tensor.

    Args:
        dataset: the torchvision dataset (built without a transform).
        indices: the samples of this split (None: all of them).
        transform: turns an image (PIL or tensor) into the model's input.
        labels: every sample's class index in ``dataset``, when known.
    """

    def __init__(
        self,
        dataset: Dataset,
        indices: np.ndarray | None,
        transform: Callable[[Any], Any] | None,
        labels: np.ndarray | None = None,
    ) -> None:
        self.dataset = dataset
        self.indices = indices
        self.transform = transform
        self._labels = labels

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        position = int(self.indices[index]) if self.indices is not None else index
        image, target = self.dataset[position]
        if self.transform is not None:
            image = self.transform(image)
        if _is_label(target):
            target = torch.tensor(int(target), dtype=torch.long)
        return image, target

    @property
    def targets(self) -> np.ndarray | None:
        """The class index of each sample of this split (None when the dataset keeps none)."""
        if self._labels is None:
            return None
        return self._labels if self.indices is None else self._labels[self.indices]


# --- the factory ------------------------------------------------------------------------------


def _check_number(name: str, value: Any, low: float, high: float | None, integer: bool) -> None:
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and value >= low and (high is None or value < high)
    if not ok:
        expected = f"an integer >= {low:g}" if integer else f"a number in [{low:g}, {high:g})"
        raise ConfigError(f"data.{name}={value!r} is out of range: expected {expected}")


def _check_options(
    val_fraction: float,
    test_fraction: float,
    seed: int,
    img_size: int | None,
    in_chans: int | None,
    augment: Any,
    pad: int,
    normalize: str | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    transforms: str | None,
    split_args: Mapping[str, Any] | None,
    download: bool,
) -> str | None:
    """ConfigError for options that would build a wrong or empty dataset; the augment style."""
    _check_number("val_fraction", val_fraction, 0, 1, False)
    _check_number("test_fraction", test_fraction, 0, 1, False)
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} "
            "leaves no training images: keep their sum below 1"
        )
    _check_number("seed", seed, 0, None, True)
    _check_number("pad", pad, 0, None, True)
    if img_size is not None:
        _check_number("img_size", img_size, 1, None, True)
    if in_chans not in (None, 1, 3):
        raise ConfigError(f"data.in_chans must be 1 (grey) or 3 (RGB); got {in_chans!r}")
    if not isinstance(download, bool):
        raise ConfigError(f"data.download must be true or false; got {download!r}")
    if transforms is not None:
        if not isinstance(transforms, str) or not transforms:
            raise ConfigError(
                f"data.transforms must name a weight set (e.g. resnet50.tv2_in1k) or be "
                f"'card'; got {transforms!r}"
            )
        if normalize is not None or mean is not None or std is not None:
            raise ConfigError(
                "data.transforms takes mean and std from the card: leave out data.normalize, "
                "data.mean and data.std (or leave out data.transforms)"
            )
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise ConfigError(
            f"data.normalize must be one of {', '.join(NORMALIZATIONS)}; got {normalize!r}"
        )
    if (mean is None) != (std is None):
        raise ConfigError("data.mean and data.std go together: give both, one number per channel")
    if mean is not None:
        if normalize is not None:
            raise ConfigError("give data.mean/data.std or data.normalize, not both")
        for key, values in (("mean", mean), ("std", std)):
            if (
                isinstance(values, (str, bytes))
                or not isinstance(values, Sequence)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            ):
                raise ConfigError(f"data.{key} must be a list of numbers; got {values!r}")
        if any(s <= 0 for s in std):  # type: ignore[union-attr]
            raise ConfigError(f"data.std must be positive; got {std!r}")
    if split_args is not None:
        if not isinstance(split_args, Mapping) or "train" not in split_args:
            raise ConfigError(
                "data.split_args maps each split to its constructor arguments and needs "
                "train, e.g. {train: {image_set: train}, test: {image_set: val}}"
            )
        for split, args in split_args.items():
            if split not in _SPLITS or not isinstance(args, Mapping):
                raise ConfigError(
                    f"data.split_args.{split}: expected one of {', '.join(_SPLITS)} mapped to "
                    f"the class's arguments; got {args!r}"
                )
            bad = [k for k in args if k in ("root", "download", *_HANDLED[3:], *_FUNCTIONS)]
            bad += [k for k in args if not isinstance(k, str) or k.startswith("_")]
            if bad:
                raise ConfigError(
                    f"data.split_args.{split} sets {', '.join(map(str, bad))}, which the "
                    "bridge sets itself (use data.root, data.download)"
                )
    if transforms is not None:
        return None
    if augment is None or augment is False:
        return "none"
    if augment is True:
        return "auto"
    if augment not in AUGMENTS:
        raise ConfigError(
            f"data.augment must be true, false or one of {', '.join(AUGMENTS)}; got {augment!r}"
        )
    return augment


def torchvision_dataset(
    name: str,
    *,
    root: str | None = None,
    download: bool = True,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    img_size: int | None = None,
    in_chans: int | None = None,
    augment: bool | str | None = None,
    pad: int = 4,
    normalize: str | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    transforms: str | None = None,
    split_args: dict[str, dict[str, Any]] | None = None,
    **dataset_args: Any,
) -> DataBundle:
    """A ``torchvision.datasets`` class as train, validation and test splits.

    ``build_data("torchvision/<Class>", ...)`` calls this; see the module docstring.

    Args:
        name: the class, e.g. ``"CIFAR10"``.
        root: the folder given to torchvision (default ``MODELZOO_HOME/data/<Class>``).
        download: fetch missing files (classes that can); ``MODELZOO_OFFLINE=1`` never does.
        val_fraction: share of the training split held out for validation, per class,
            when the dataset has no validation split of its own.
        test_fraction: share held out for testing, for datasets without any splits.
        seed: the seed of the held-out splits and of the statistics' sample.
        img_size: side length of the images given to the model (default: their own;
            224 for photos of varied sizes).
        in_chans: 1 (grey) or 3 (RGB) (default: the images' own).
        augment: the training augmentation: ``false`` (none), one of :data:`AUGMENTS`, or
            ``true`` (``pad_crop_flip`` for images up to 64 pixels, else
            ``random_resized_crop``); with ``transforms``, true or false (default: as the
            card's weights were trained).
        pad: pixels of padding for the ``pad_crop`` styles.
        normalize: ``dataset``, ``imagenet`` or ``none`` (default: ``dataset`` for datasets
            held in memory, ``imagenet`` otherwise).
        mean: per-channel mean to subtract (values in [0, 1]), with ``std``.
        std: per-channel std to divide by.
        transforms: the weight set whose pipeline prepares the images (``card``: the
            recipe's model).
        split_args: constructor arguments per split, ``{"train": {...}, "val": {...},
            "test": {...}}``, for classes whose splits are named otherwise.
        dataset_args: the class's own arguments (e.g. ``year`` for VOC).
    """
    given = {
        key: value
        for key, value in (
            ("root", root),
            ("download", download),
            ("val_fraction", val_fraction),
            ("test_fraction", test_fraction),
            ("seed", seed),
            ("img_size", img_size),
            ("in_chans", in_chans),
            ("augment", augment),
            ("pad", pad),
            ("normalize", normalize),
            ("mean", mean),
            ("std", std),
            ("transforms", transforms),
            ("split_args", split_args),
        )
        if value != _DEFAULTS[key]
    }
    given.update(dataset_args)
    cls = dataset_class(name)
    options = _class_options(cls)
    unknown = [k for k in dataset_args if k not in options]
    if unknown:
        raise ConfigError(
            f"torchvision/{name} takes no option {', '.join(unknown)}; its own options: "
            f"{', '.join(options) or 'none'}"
        )
    style = _check_options(
        val_fraction,
        test_fraction,
        seed,
        img_size,
        in_chans,
        augment,
        pad,
        normalize,
        mean,
        std,
        transforms,
        split_args,
        download,
    )
    params = _constructor_params(cls)
    if "root" in params:
        base = Path(root).expanduser() if root is not None else default_root(cls)
    elif root is not None:
        raise ConfigError(f"torchvision/{name} keeps no files, so it takes no data.root")
    else:
        base = None
    built = _build_splits(cls, params, base, download, split_args, dataset_args)
    train_set, train_args = built["train"]
    if "test" in built and test_fraction:
        raise ConfigError(
            f"torchvision/{name} has a test split of its own; data.test_fraction only carves "
            "one from datasets without it: leave it out"
        )
    labels = _labels_of(train_set)
    train_indices, val_indices, test_indices = _carve(
        name,
        train_set,
        labels,
        0.0 if "val" in built else val_fraction,
        0.0 if "test" in built else test_fraction,
        seed,
    )
    if transforms is not None:
        prep = card_pipelines(transforms, img_size, in_chans, augment)
    else:
        probe = TorchvisionSplit(train_set, train_indices, None, labels)
        prep = recipe_pipelines(probe, img_size, in_chans, style, pad, normalize, mean, std, seed)

    splits: dict[str, TorchvisionSplit | None] = {
        "train": TorchvisionSplit(train_set, train_indices, prep.train, labels)
    }
    sources: dict[str, dict[str, Any]] = {
        "train": {"args": train_args, "size": len(splits["train"])}
    }
    for split, indices, fraction in (
        ("val", val_indices, val_fraction),
        ("test", test_indices, test_fraction),
    ):
        splits[split] = None
        if split in built:
            dataset, args = built[split]
            splits[split] = TorchvisionSplit(dataset, None, prep.evaluate, _labels_of(dataset))
            sources[split] = {"args": args, "size": len(dataset)}
        elif indices is not None and len(indices):
            splits[split] = TorchvisionSplit(train_set, indices, prep.evaluate, labels)
            sources[split] = {"args": train_args, "size": len(indices), "carved": fraction}

    size = prep.spec["img_size"]
    size = size if isinstance(size, int) else size[0]
    chans = prep.spec["in_chans"]
    info: dict[str, Any] = {
        "in_chans": chans,
        "img_size": size,
        "in_features": chans * size * size,
        "dataset": f"{FAMILY}/{name}",
        "dataset_kwargs": given,
        "splits": sources,
        "root": str(base) if base is not None else None,
        "preprocessing": prep.spec,
        "normalize": prep.normalize,
        "augment": prep.augment,
    }
    if transforms is not None:
        info["transforms"] = transforms
    if labels is not None or _is_label(train_set[0][1]):
        info["task"] = "classification"
        names = _class_names(train_set, labels)
        if names is not None:
            info["num_classes"] = len(names)
            info["classes"] = names
        else:
            _logger.warning("torchvision/%s states no classes: set model.num_classes", name)
    _logger.info(
        "torchvision/%s: %s", name, ", ".join(f"{s} {v['size']}" for s, v in sources.items())
    )
    return DataBundle(splits["train"], splits["val"], splits["test"], info)


def _build_splits(
    cls: type,
    params: Mapping[str, inspect.Parameter],
    base: Path | None,
    download: bool,
    split_args: Mapping[str, Any] | None,
    dataset_args: Mapping[str, Any],
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The class's own splits, each with the arguments that built it (``train`` always)."""
    name = cls.__name__
    if "download" not in params:
        why_not = "cannot download"
    elif _offline():
        why_not = "MODELZOO_OFFLINE=1"
    else:
        why_not = "" if download else "download=false"
    plan, probing = _split_plan(params, split_args)
    built: dict[str, tuple[Any, dict[str, Any]]] = {}
    for split in _SPLITS:
        if split == "val" and built["train"][1].get("split") == "trainval":
            continue  # the validation images are in the training split already
        for args in plan[split]:
            args = {**args, **dataset_args}
            try:
                dataset = _construct(
                    cls, args, root=base, download=not why_not, probing=probing, why_not=why_not
                )
            except _NoSuchSplit as err:
                _logger.debug("torchvision/%s has no split %s: %s", name, args, err)
                continue
            built[split] = (dataset, args)
            break
        if split == "train" and "train" not in built:
            tried = ", ".join(repr(c.get("split")) for c in plan["train"])
            raise ConfigError(
                f"torchvision/{name} has none of the training splits {tried}. Name its splits "
                "with data.split_args, e.g. {train: {split: ...}, test: {split: ...}}"
            )
    if len(built["train"][0]) == 0:
        raise ConfigError(f"torchvision/{name}: its training split {built['train'][1]} is empty")
    return built


def _carve(
    name: str,
    dataset: Any,
    labels: np.ndarray | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Train, validation and test indices held out of ``dataset`` (None: nothing held out).

    Stratified by class when the labels are known, so every class keeps its share.
    """
    if not val_fraction and not test_fraction:
        return None, None, None
    pool = len(dataset)
    if labels is not None:
        test, val, train = split_indices(labels, [test_fraction, val_fraction], seed)
    else:
        order = np.random.default_rng(seed).permutation(pool)
        n_test, n_val = round(test_fraction * pool), round(val_fraction * pool)
        test = np.sort(order[:n_test])
        val = np.sort(order[n_test : n_test + n_val])
        train = np.sort(order[n_test + n_val :])
    if len(train) == 0:
        raise ConfigError(
            f"torchvision/{name}: no training images are left after holding out "
            f"val_fraction={val_fraction} and test_fraction={test_fraction} of {pool}"
        )
    return train, val, test


_DEFAULTS = {
    n: p.default
    for n, p in inspect.signature(torchvision_dataset).parameters.items()
    if p.kind is p.KEYWORD_ONLY
}
_BRIDGE_OPTIONS = tuple(_DEFAULTS)


@functools.cache
def _factory(member: str) -> Callable[..., DataBundle]:
    """The factory of ``torchvision/<member>``: the bridge's options and the class's own."""
    cls = dataset_class(member)

    def factory(**kwargs: Any) -> DataBundle:
        return torchvision_dataset(member, **kwargs)

    bridge = [
        p
        for p in inspect.signature(torchvision_dataset).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    ]
    own = [p.replace(kind=p.KEYWORD_ONLY) for p in _class_options(cls).values()]
    factory.__signature__ = inspect.Signature([*bridge, *own])  # type: ignore[attr-defined]
    factory.__name__ = f"torchvision_{member}"
    factory.__doc__ = f"torchvision.datasets.{member} through :func:`torchvision_dataset`."
    return factory


def _iter_names() -> Iterator[str]:
    yield from dataset_names()


register_dataset_family(FAMILY, _factory, _iter_names)
