"""Reading and writing weight files: safetensors, and pickles only as plain tensors.

``read_weights`` never runs code from a file: safetensors holds data only, and
a ``torch.save`` pickle is read by :func:`load_torch_file`, the one safe loader
of ``torch.save`` files in modelzoo. It loads with ``weights_only=True``, which
refuses any global beyond tensors and containers, and tells apart the two ways
that can fail:

- a file that is not a readable pickle at all (random bytes, a truncated zip):
  ``WeightsError`` saying it is corrupt or not a ``torch.save`` file;
- a well-formed pickle that asks for a forbidden global (a class, a function):
  ``UnsafeCheckpointError`` naming the global and saying it was not executed.

Neither message passes on torch's advice to turn the safe loader off.
"""

from __future__ import annotations

import io
import json
import os
import pickletools
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from modelzoo.errors import UnsafeCheckpointError, WeightsError
from modelzoo.utils.io import atomic_write

__all__ = [
    "read_weights",
    "load_torch_file",
    "save_weights",
    "check_safetensors",
    "PICKLE_SUFFIXES",
]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".tar")
_LFS_POINTER = b"version https://git-lfs"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


def _fix_hint(path: Path) -> str:
    from modelzoo.weights.cache import cache_dir

    try:
        in_cache = Path(path).resolve().is_relative_to(cache_dir().resolve())
    except OSError:
        in_cache = False
    if in_cache:
        return (
            f"delete {path} so it is downloaded again (or run `modelzoo cache clean`), "
            "or replace it with a complete copy"
        )
    return f"replace {path} with a complete copy (download or copy it again)"


def check_safetensors(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a safetensors file, after checking the file is complete.

    Raises:
        WeightsError: the file is empty, truncated, a Git LFS pointer, or its
            header is not valid; the message names the file and the problem.
    """
    path = Path(path)
    size = path.stat().st_size
    _check_not_lfs_pointer(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if size == 0:
            raise WeightsError(f"{path} is empty (0 bytes); {_fix_hint(path)}")
        if size < 8:
            raise WeightsError(
                f"{path} has {size} bytes, fewer than the 8-byte header length a safetensors "
                f"file starts with; {_fix_hint(path)}"
            )
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(size - 8, _MAX_HEADER):
            raise WeightsError(
                f"{path} is truncated or not a safetensors file: its header length field "
                f"says {header_len} bytes but only {size - 8} follow; {_fix_hint(path)}"
            )
        raw = fh.read(header_len)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise WeightsError(
            f"{path} has a safetensors header that is not valid JSON ({err}); the file is "
            f"corrupt or not safetensors; {_fix_hint(path)}"
        ) from err
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: a safetensors header must be a JSON object")
    data_len = size - 8 - header_len
    needed = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
        except (TypeError, KeyError, ValueError) as err:
            raise WeightsError(
                f"{path}: tensor {name!r} in the safetensors header has no valid data_offsets"
            ) from err
        needed = max(needed, int(end))
    if needed > data_len:
        raise WeightsError(
            f"{path} is truncated: its header needs {needed} bytes of tensor data, the file "
            f"holds {data_len}; {_fix_hint(path)}"
        )
    return header


def _check_not_lfs_pointer(path: Path) -> None:
    with open(path, "rb") as fh:
        if fh.read(len(_LFS_POINTER)) == _LFS_POINTER:
            raise WeightsError(
                f"{path} is a Git LFS pointer, not the weights: run `git lfs pull` in the "
                "repository (or download the file) to get the real file"
            )


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(9)
    if head.startswith(b"PK\x03\x04"):
        return "pickle"  # torch.save's zip format
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"  # legacy torch.save / plain pickle
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return "pickle"
    return "safetensors"


def read_weights(path: str | os.PathLike[str]) -> Any:
    """Load a weights file on the CPU without running code from it.

    Args:
        path: a safetensors file, or a ``torch.save`` file (``.pt``, ``.pth``,
            ``.bin``, ``.ckpt``); the format is told from the content.

    Returns:
        For safetensors, the state dict. For a pickle, the object as saved (a
        state dict, or a trainer checkpoint like ``{"model": ..., ...}``).

    Raises:
        UnsafeCheckpointError: the pickle needs a global other than tensors and
            containers; it was not executed.
        WeightsError: the file is missing, empty, truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes); {_fix_hint(path)}")
    _check_not_lfs_pointer(path)
    if _sniff(path) == "pickle":
        return load_torch_file(path)
    check_safetensors(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise WeightsError(f"{path} is not a readable safetensors file: {err}") from err


# torch names the refused global as "GLOBAL module.name" in its weights_only errors.
_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")
# Advice that must never reach a user: it says how to switch the safe loader off.
_UNSAFE_ADVICE = re.compile(r"weights_only|trust|safe_globals|arbitrary code", re.IGNORECASE)
# Globals a torch.save file of tensors and containers may name (torch's own allowlist
# holds these and more torch names); anything else in a pickle is code to run.
_HARMLESS_GLOBALS = re.compile(
    r"(torch\..+|collections\.(OrderedDict|Counter|defaultdict)|_codecs\.encode|"
    r"builtins\.(set|frozenset|bytearray|bytes|complex|slice|range|int|float|bool|str))"
)


def load_torch_file(
    path: str | os.PathLike[str],
    *,
    map_location: Any = "cpu",
    fix: str | None = None,
) -> Any:
    """Load a ``torch.save`` file without running code from it: the one safe loader.

    The file is read with ``torch.load(..., weights_only=True)``: tensors, numbers,
    strings and containers load; nothing in the file is executed. Use it for every
    ``torch.save`` file from outside (weights, trainer checkpoints).

    Args:
        path: the file (zip format of ``torch.save`` or the legacy format).
        map_location: where tensors go, as for ``torch.load`` (default: the CPU).
        fix: what the user should do about a corrupt file, appended to that message
            (e.g. ``"resume from an earlier checkpoint"``); default: replace the
            file, or let the weights cache download it again.

    Returns:
        The object as saved (a state dict, a checkpoint dict, ...).

    Raises:
        UnsafeCheckpointError: the file is a well-formed pickle that asks for a global
            outside tensors and containers; the message names the global and says that
            it was not executed.
        WeightsError: the file is missing, empty, a Git LFS pointer, unreadable, or
            corrupt or not a ``torch.save`` file (random bytes, a truncated zip).
    """
    import torch

    path = Path(path)
    fix = fix or _fix_hint(path)
    if not path.is_file():
        raise WeightsError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes); {fix}")
    _check_not_lfs_pointer(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types; each is classified below
        failure = err
    # Raised outside the except block on purpose: chaining would print torch's message,
    # which tells the user to re-run with weights_only=False.
    if isinstance(failure, PermissionError | IsADirectoryError):
        raise WeightsError(f"cannot read {path}: {failure.strerror or failure}")
    match = _GLOBAL.search(str(failure))
    offending = match.group(1) if match else _forbidden_global(path)
    if offending:
        raise UnsafeCheckpointError(
            f"{path} is a pickle that asks for {offending} to load, which is neither a tensor "
            "nor a container; modelzoo's safe loader refused it and it was not executed. A "
            "weights or checkpoint file should hold tensors only: ask whoever made it for a "
            "safetensors copy, or, if you made it yourself, save the state dict alone "
            "(modelzoo.weights.save_weights(model.state_dict(), path))."
        )
    raise WeightsError(f"{path} is corrupt or not a torch.save file ({_reason(failure)}); {fix}")


def _reason(err: BaseException) -> str:
    """What went wrong, in one sentence, without torch's advice to load unsafely."""
    text = str(err)
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", text, re.DOTALL)
    if detail:
        text = detail.group(1)
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    kept = [s for s in sentences if s and not _UNSAFE_ADVICE.search(s)]
    reason = kept[0] if kept else ""
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return reason or type(err).__name__


def _forbidden_global(path: Path) -> str | None:
    """The first global a pickle in ``path`` names that plain tensors never need.

    Reads the pickle opcodes with :mod:`pickletools` (nothing is executed), from at
    most ``_MAX_SCAN`` bytes held in memory, so that a length field of noise cannot
    make a read allocate more. Returns None when the file holds no well-formed
    pickle, or only harmless globals.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                infos = [i for i in archive.infolist() if i.filename.endswith("data.pkl")]
                if not infos or infos[0].file_size > _MAX_SCAN:
                    return None
                return _scan_pickles(io.BytesIO(archive.read(infos[0])), max_pickles=1)
        with open(path, "rb") as fh:
            # The legacy format is several pickles in a row (magic number, protocol, system
            # info, the object, storage keys) followed by raw tensor data.
            return _scan_pickles(io.BytesIO(fh.read(_MAX_SCAN)), max_pickles=5)
    except (OSError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError):
        return None


_MAX_SCAN = 64 << 20
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
               "BINSTRING", "STRING"}  # fmt: skip


def _scan_pickles(stream: IO[bytes], *, max_pickles: int) -> str | None:
    with warnings.catch_warnings():  # pickletools warns about odd escapes in corrupt strings
        warnings.simplefilter("ignore")
        return _scan_pickles_quietly(stream, max_pickles=max_pickles)


def _scan_pickles_quietly(stream: IO[bytes], *, max_pickles: int) -> str | None:
    for _ in range(max_pickles):
        strings: list[str | None] = []  # what was pushed, enough to name a STACK_GLOBAL
        memo: dict[int, str | None] = {}
        last: str | None = None  # the value the previous opcode pushed, when a string
        found: list[str] = []
        try:
            for op, arg, _pos in pickletools.genops(stream):
                name = op.name
                pushed: str | None = None
                if name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif name == "STACK_GLOBAL":
                    module, attr = (["?", "?"] + strings)[-2:]
                    found.append(f"{module}.{attr}")
                elif name in _STRING_OPS:
                    pushed = str(arg)
                    strings.append(pushed)
                elif name in ("BINGET", "LONG_BINGET", "GET"):
                    pushed = memo.get(int(arg))
                    strings.append(pushed)
                elif name == "MEMOIZE":
                    memo[len(memo)] = last
                    pushed = last  # memoizing leaves the value on the stack
                elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                    memo[int(arg)] = last
                    pushed = last
                last = pushed
        except (ValueError, EOFError, struct.error, MemoryError, OverflowError):
            # Not (or no longer) a well-formed pickle: corrupt, not unsafe. (A length field
            # of noise can ask for terabytes: MemoryError.)
            return None
        for full in found:
            if not _HARMLESS_GLOBALS.fullmatch(full):
                return full
    return None


def save_weights(
    state_dict: Mapping[str, Any],
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a state dict as safetensors, atomically (:func:`modelzoo.utils.io.atomic_write`).

    Tensors that share memory (tied weights such as an LM's embedding and
    output layer) are stored as separate copies, since safetensors has no
    aliases; loading both back into the tied model restores the tie.

    Args:
        state_dict: name -> tensor.
        path: the file to write; its folder is created.
        metadata: extra string facts stored in the header (non-strings are JSON-encoded).

    Returns:
        The path written.

    Raises:
        WeightsError: a value is not a tensor.
    """
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[str, int]] = set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(
                f"state_dict[{key!r}] is a {type(value).__name__}, not a tensor; safetensors "
                "stores tensors only (put other facts in metadata)"
            )
        tensor = value.detach().to("cpu")
        storage = (str(tensor.device), tensor.untyped_storage().data_ptr())
        if storage in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(storage)
        tensors[key] = tensor.contiguous()
    meta = {"format": "pt"}
    for key, value in (metadata or {}).items():
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return atomic_write(path, save(tensors, metadata=meta))
