"""The files of a ``torchvision.datasets`` class: which ones it reads, where, and the
error that says what to put where when they are missing or damaged.

:func:`expected_files` reads the installed torchvision's own records (file names and
md5s) for the CIFAR, MNIST and SVHN families; :func:`describe_layout` describes any
class's layout for messages (those records, ImageNet's archives, a class-per-folder
tree, or what the class's docstring says its ``root`` holds); :func:`data_error` turns
a failed read or download into an error naming the files missing or damaged and the
fix (used by :mod:`modelzoo.data.torchvision_datasets`).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelzoo.errors import ConfigError, ModelzooError, OfflineError

__all__ = ["expected_files", "describe_layout", "data_error"]


def expected_files(
    cls: type, root: Path, splits: Sequence[Mapping[str, Any]] = ()
) -> list[tuple[Path, str | None]] | None:
    """The files torchvision's ``cls`` reads under ``root``, with their md5 when it checks one.

    Read from the installed torchvision's own records for the CIFAR, MNIST and SVHN
    families; None for classes whose files are not listed that way (their docstring
    describes them, see :func:`describe_layout`).

    Args:
        cls: the dataset class.
        root: the folder given to it.
        splits: the constructor arguments of the splits that are read (SVHN reads one
            file per split).
    """
    import torchvision.datasets as tvd

    if issubclass(cls, tvd.CIFAR10):
        folder = root / cls.base_folder
        listed = [*cls.train_list, *cls.test_list]
        files = [(folder / name, md5) for name, md5 in listed]
        return files + [(folder / cls.meta["filename"], cls.meta["md5"])]
    if (
        issubclass(cls, tvd.MNIST)
        and not issubclass(cls, (tvd.EMNIST, tvd.QMNIST))
        and isinstance(cls.resources, list)
    ):
        raw = root / cls.__name__ / "raw"
        # torchvision reads the decompressed files (it extracts the .gz it downloads).
        return [(raw / os.path.splitext(name)[0], None) for name, _ in cls.resources]
    if issubclass(cls, tvd.SVHN):
        # The standard splits, and any other one asked for (extra).
        wanted = dict.fromkeys(["train", "test", *(s.get("split", "train") for s in splits)])
        return [
            (root / cls.split_list[s][1], cls.split_list[s][2])
            for s in wanted
            if s in cls.split_list
        ]
    return None


def _root_doc(cls: type) -> str:
    """What the class's docstring says its ``root`` must hold."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^\s*root \([^)]*\):(.*?)(?=^\s*\w+ \(|\Z|^\s*$)", doc, re.M | re.S)
    return " ".join(match.group(1).split()) if match else ""


def describe_layout(cls: type, root: Path, splits: Sequence[Mapping[str, Any]]) -> str:
    """Where torchvision's ``cls`` looks for its files, for messages."""
    import torchvision.datasets as tvd

    name = cls.__name__
    if issubclass(cls, tvd.ImageNet):
        from torchvision.datasets.imagenet import ARCHIVE_META, META_FILE

        archives = ", ".join(
            f"{root / ARCHIVE_META[k][0]}" for k in ("devkit", "train", "val") if k in ARCHIVE_META
        )
        return (
            f"the ImageNet 2012 archives from image-net.org (after registering): {archives} "
            f"(torchvision extracts them there on first use), or their extracted layout "
            f"{root / META_FILE}, {root}/train/<wnid>/*.JPEG and {root}/val/<wnid>/*.JPEG"
        )
    if cls in (tvd.ImageFolder, tvd.DatasetFolder):
        return f"one subfolder per class: {root}/<class>/<image> (e.g. {root}/cat/001.jpg)"
    files = expected_files(cls, root, splits)
    if files:
        return _listing([path for path, _ in files])
    described = _root_doc(cls)
    where = f"under {root}"
    return (
        f"{where}, as torchvision's {name} describes its root: {described}"
        if described
        else (f"{where}, the layout the documentation of torchvision.datasets.{name} describes")
    )


def _listing(paths: Sequence[Path]) -> str:
    """``root/a/{x, y}, root/b`` for messages: files listed once per folder."""
    folders: dict[Path, list[str]] = {}
    for path in paths:
        folders.setdefault(path.parent, []).append(path.name)
    return ", ".join(
        f"{folder}/{names[0]}" if len(names) == 1 else f"{folder}/{{{', '.join(names)}}}"
        for folder, names in folders.items()
    )


def _file_problems(files: list[tuple[Path, str | None]]) -> tuple[list[Path], list[str]]:
    """The files that are missing, and those whose md5 differs from torchvision's record."""
    missing, damaged = [], []
    for path, md5 in files:
        if not path.is_file():
            missing.append(path)
        elif md5 is not None:
            digest = hashlib.md5(usedforsecurity=False)
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != md5:
                damaged.append(f"{path} (md5 {digest.hexdigest()}, torchvision expects {md5})")
    return missing, damaged


def data_error(
    cls: type,
    root: Path | None,
    splits: Sequence[Mapping[str, Any]],
    downloaded: bool,
    why_not: str,
    err: BaseException,
) -> ModelzooError:
    """The error for data that could not be read (or fetched), saying what to put where."""
    name = cls.__name__
    where = root if root is not None else Path(".")
    layout = describe_layout(cls, where, splits)
    reason = f"{type(err).__name__}: {' '.join(str(err).split())}"
    if downloaded:
        return OfflineError(
            f"could not download torchvision/{name} into {where} ({reason}). Check the "
            f"network (or a proxy), or put its files there yourself: {layout}; then set "
            "MODELZOO_OFFLINE=1 to use them without trying the network"
        )
    problem = reason
    files = expected_files(cls, where, splits)
    if files:
        missing, damaged = _file_problems(files)
        if damaged and not missing:
            return ConfigError(
                f"torchvision/{name}: {'; '.join(damaged)}. The files are damaged or are "
                f"not torchvision's {name}: delete them to download them again, or replace "
                "them with the originals"
            )
        if not missing:
            return ConfigError(
                f"torchvision/{name} could not read its files in {where} ({reason}): they are "
                f"damaged or not torchvision's {name}. Delete them to download them again, or "
                f"replace them with the originals: {layout}"
            )
        # What is missing says it all; torchvision's own words would add only its advice to
        # pass download=True.
        problem = f"{_listing(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    fix = f"Put its files there as torchvision's {name} expects them: {layout}"
    if why_not == "MODELZOO_OFFLINE=1":
        return OfflineError(
            f"torchvision/{name} is not in {where} ({problem}), and MODELZOO_OFFLINE=1 "
            f"forbids downloading it. {fix}; or unset MODELZOO_OFFLINE to download it"
        )
    if why_not == "download=false":
        return OfflineError(
            f"torchvision/{name} is not in {where} ({problem}), and data.download=false "
            f"forbids downloading it. {fix}; or set data.download=true"
        )
    return ConfigError(
        f"torchvision/{name} reads a local copy (torchvision cannot download it), and none "
        f"was found in {where} ({problem}). {fix}; or point data.root at the folder that "
        "holds it"
    )
