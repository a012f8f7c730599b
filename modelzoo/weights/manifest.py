"""Where weight cards come from, and the index of them by architecture.

Two sources, read once on first use:

* the published cards in :mod:`modelzoo.weights.published` (published ImageNet weights);
* ``weights/manifest.json``: the weights this project trained and ships, in
  the repository's top-level ``weights/`` folder. A wheel installs that folder
  as the ``modelzoo._shipped`` package; a source checkout or editable install
  reads it in place.

Code may add more with :func:`register_weights`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib.util
import json
import logging
import os
import shutil
import threading
from pathlib import Path

from modelzoo.errors import ConfigError, UnknownWeightsError, WeightsError
from modelzoo.utils.io import (
    FileLock,
    UnsafeNameError,
    atomic_write,
    atomic_write_text,
    path_within,
    safe_file_name,
)
from modelzoo.weights.card import WeightFile, WeightSet
from modelzoo.weights.integrity import sha256_file

__all__ = [
    "weight_sets",
    "all_weight_sets",
    "is_tag",
    "get_weight_set",
    "register_weights",
    "unregister_weights",
    "shipped_dir",
    "load_manifest",
    "add_shipped_weight_set",
    "UnknownWeightsError",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SHIPPED_PACKAGE = "modelzoo._shipped"

_lock = threading.RLock()
_EXTERNAL_PREFIXES = ("timm/", "torchvision/")


_sets: dict[str, dict[str, WeightSet]] | None = None  # arch -> tag -> card, in order added


def shipped_dir() -> Path:
    """The folder of shipped weight files and their manifest.

    The installed ``modelzoo._shipped`` package when there is one (a wheel),
    else the repository's ``weights/`` folder (a checkout, an editable install).
    """
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(SHIPPED_PACKAGE)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                if (Path(location) / MANIFEST).is_file():
                    return Path(location)
    return Path(__file__).resolve().parents[2] / "weights"


def load_manifest(root: Path | None = None) -> list[WeightSet]:
    """The weight sets listed in ``<root>/manifest.json`` (default: the shipped one).

    Raises:
        WeightsError: the manifest is not valid JSON or a card in it is malformed.
    """
    path = (root or shipped_dir()) / MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise WeightsError(
            f"{path} is not valid JSON ({err}); restore it with `git checkout {path.name}`"
        ) from err
    items = data.get("weight_sets", []) if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise WeightsError(
            f"{path} must be a JSON object whose 'weight_sets' is a list of cards; restore it "
            f"with `git checkout {path.name}`"
        )
    sets = []
    for item in items:
        try:
            sets.append(WeightSet.from_dict(item))
        except (TypeError, ValueError) as err:  # a value of the wrong type in a hand edit
            raise WeightsError(f"{path}: a card is malformed ({err})") from err
    return sets


def _index() -> dict[str, dict[str, WeightSet]]:
    global _sets
    with _lock:
        if _sets is None:
            from modelzoo.weights.published import published_weight_sets

            sets: dict[str, dict[str, WeightSet]] = {}
            for ws in [*published_weight_sets(), *load_manifest()]:
                _add(sets, ws)
            _sets = sets
        return _sets


def _add(sets: dict[str, dict[str, WeightSet]], ws: WeightSet, *, replace: bool = False) -> None:
    if not ws.files:
        raise WeightsError(f"weight set {ws.name} lists no files; a card needs at least one")
    tags = sets.setdefault(ws.arch, {})
    if ws.tag in tags and not replace:
        raise ConfigError(
            f"a weight set named {ws.name!r} is registered already; choose another tag"
        )
    tags[ws.tag] = ws


def weight_sets(arch: str) -> list[WeightSet]:
    """The weight sets of an architecture, the default one first."""
    sets = list(_index().get(arch, {}).values())
    return sorted(sets, key=lambda ws: not ws.default)


def all_weight_sets() -> list[WeightSet]:
    """Every known weight set, by architecture then default-first."""
    return [ws for arch in sorted(_index()) for ws in weight_sets(arch)]


def is_tag(arch: str, tag: str) -> bool:
    """Whether ``arch.tag`` names a known weight set."""
    return tag in _index().get(arch, {})


def get_weight_set(arch: str, tag: str | None = None) -> WeightSet:
    """The weight set ``arch.tag``; with ``tag`` None the default one.

    The default is the set marked ``default``, else the first one listed.

    Raises:
        WeightsError: the architecture has no such set (the message lists those
            it has, or says how to get weights when it has none).
    """
    sets = weight_sets(arch)
    if not sets:
        if arch.startswith(_EXTERNAL_PREFIXES):
            raise WeightsError(
                f"{arch}: the weights of timm/torchvision models are the libraries' own tags, "
                f"not modelzoo weight sets: load them with create('{arch}.<tag>') or "
                f"create('{arch}', pretrained=True) (fetched and verified like any weights), "
                "or pass a local file or URL as pretrained=..."
            )
        if not _is_model(arch):
            raise _unknown_weights(arch, tag)
        raise WeightsError(
            f"{arch} has no pretrained weight sets; build it with pretrained=False, pass a "
            "weights file or URL as pretrained=..., or train some with `modelzoo train`"
        )
    if tag is None:
        return sets[0]
    for ws in sets:
        if ws.tag == tag:
            return ws
    close = difflib.get_close_matches(tag, [ws.tag for ws in sets], n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(f'{arch}.{t}' for t in close)}?" if close else ""
    raise WeightsError(
        f"{arch} has no weight set {tag!r}.{hint} Available: "
        + ", ".join(f"{arch}.{ws.tag}" for ws in sets)
    )


def _is_model(arch: str) -> bool:
    from modelzoo.registry import is_model

    try:
        return is_model(arch)
    except Exception:  # noqa: BLE001 - a broken plugin must not hide the weights message
        logger.debug("cannot ask the registry about %r", arch, exc_info=True)
        return True


def close_names(name: str, *, n: int = 5) -> list[str]:
    """Registered models and weight-set names (``arch.tag``) spelled like ``name``."""
    from modelzoo.registry import list_models

    candidates = set(list_models()) | {ws.name for ws in all_weight_sets()}
    matches = difflib.get_close_matches(name, sorted(candidates), n=n, cutoff=0.6)
    if "." not in name:  # "resnt20" should suggest the architecture before its tags
        matches.sort(key=lambda m: "." in m)
    return matches


def _unknown_weights(arch: str, tag: str | None) -> UnknownWeightsError:
    name = f"{arch}.{tag}" if tag else arch
    close = close_names(name) or close_names(arch)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownWeightsError(
        f"no model or weight set named {name!r}.{hint} `modelzoo list --pretrained` lists "
        "every weight set (modelzoo.list_models(pretrained=True))."
    )


def register_weights(ws: WeightSet) -> None:
    """Add a weight set to the index.

    Raises:
        ConfigError: ``arch.tag`` is registered already.
        WeightsError: the card lists no files.
    """
    with _lock:
        _add(_index(), ws)


def unregister_weights(arch: str, tag: str) -> None:
    """Remove a weight set from the index (tests and interactive use); unknown names are ignored."""
    with _lock:
        _index().get(arch, {}).pop(tag, None)


def write_manifest(sets: list[WeightSet], root: Path) -> Path:
    """Write ``<root>/manifest.json`` atomically, sorted by name so diffs stay small."""
    items = [ws.to_dict() for ws in sorted(sets, key=lambda ws: (ws.arch, ws.tag))]
    text = json.dumps({"format": MANIFEST_FORMAT, "weight_sets": items}, indent=2, sort_keys=True)
    path = root / MANIFEST
    atomic_write_text(path, text + "\n")
    return path


def add_shipped_weight_set(
    ws: WeightSet, file_path: str | os.PathLike[str], *, root: Path | None = None
) -> WeightSet:
    """Ship a trained weight set: copy its file into ``weights/`` and list it in the manifest.

    The file is stored as ``<arch>.<tag>.safetensors`` (unique across cards, so it
    can also be dropped into ``MODELZOO_WEIGHTS_DIR`` or served from a mirror), its
    size and full sha256 are computed, and the card replaces any card of the
    same name in the manifest. When ``root`` is the shipped folder (the default),
    the running process sees the new card at once.

    Args:
        ws: the card; its ``files`` are replaced by the one file shipped.
        file_path: a safetensors file (see :func:`modelzoo.weights.save_weights`).
        root: the weights folder (default: the repository's ``weights/``).

    Returns:
        The card as written to the manifest.

    Raises:
        WeightsError: the file is missing or not a valid safetensors file.
    """
    from modelzoo.weights.io import check_safetensors

    src = Path(file_path)
    if not src.is_file():
        raise WeightsError(f"cannot ship {ws.name}: no file at {src}")
    check_safetensors(src)  # shipped weights are never pickles
    root = Path(root) if root is not None else shipped_dir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        dest = path_within(root, safe_file_name(f"{ws.arch}.{ws.tag}.safetensors"))
    except UnsafeNameError as err:
        raise WeightsError(f"cannot ship {ws.name}: {err}") from None
    # Lock the folder itself: the manifest is replaced (a new inode) on every update.
    with FileLock(root, what=f"the manifest in {root}"):
        if src.resolve() != dest.resolve():
            with open(src, "rb") as fh:
                atomic_write(dest, lambda out: shutil.copyfileobj(fh, out, 1 << 20))
        urls = ws.files[0].urls if ws.files else ()
        shipped = WeightFile(
            name=dest.name,
            size=dest.stat().st_size,
            sha256=sha256_file(dest),
            urls=urls,
            path=f"weights/{dest.name}",
        )
        new = dataclasses.replace(ws, files=(shipped,), source_format="safetensors")
        sets = [s for s in load_manifest(root) if s.name != new.name]
        write_manifest([*sets, new], root)
    if root.resolve() == shipped_dir().resolve():
        with _lock:
            _add(_index(), new, replace=True)
    logger.info("shipped %s as %s (sha256 %s)", new.name, dest, shipped.sha256)
    return new


def shipped_file(relative: str) -> Path:
    """The path of a shipped file from its card's ``path`` (``weights/<file>``).

    Raises:
        WeightsError: the path is not ``weights/<bare file name>``, or leads outside the
            shipped folder (``..``, an absolute path, a symlink out of it).
    """
    text = relative if isinstance(relative, str) else ""
    prefix, sep, name = text.partition("/")
    if not sep or prefix != "weights":
        name = ""
    try:
        return path_within(shipped_dir(), safe_file_name(name))
    except UnsafeNameError as err:
        raise WeightsError(
            f"a shipped file's path must be 'weights/<file name>' inside the shipped folder, "
            f"got {relative!r} ({err})"
        ) from None
