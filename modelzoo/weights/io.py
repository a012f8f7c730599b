"""Reading and writing weight files: safetensors, and pickles only as plain tensors.

``read_weights`` never runs code from a file: safetensors holds data only, and
a ``torch.save`` pickle is loaded with ``weights_only=True``, which refuses
any global beyond tensors and containers. Such a refusal becomes an
``UnsafeCheckpointError`` naming the global that was asked for.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelzoo.errors import UnsafeCheckpointError, WeightsError

__all__ = ["read_weights", "save_weights", "check_safetensors", "PICKLE_SUFFIXES"]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".tar")
_LFS_POINTER = b"version https://git-lfs"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


def _fix_hint(path: Path) -> str:
    return (
        f"delete {path} so it is downloaded again (or `modelzoo cache clean`), "
        "or replace it with a complete copy"
    )


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
        return _load_pickle(path)
    check_safetensors(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise WeightsError(f"{path} is not a readable safetensors file: {err}") from err


_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")


def _load_pickle(path: Path) -> Any:
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        message = str(err)
        if "weights only" not in message.lower() and "weights_only" not in message:
            raise WeightsError(f"{path} is not a readable torch.save file: {err}") from err
        match = _GLOBAL.search(message)
        offending = match.group(1) if match else "an object that is not a tensor or container"
        raise UnsafeCheckpointError(
            f"{path} needs {offending} to load, which weights_only=True refuses; it was not "
            "executed. A weights file should hold tensors only. If you trust the file, load "
            "it yourself and re-save the state dict with modelzoo.weights.save_weights."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise WeightsError(
            f"{path} is not a readable torch.save file (truncated or corrupt?): {err}; "
            f"{_fix_hint(path)}"
        ) from err


def save_weights(
    state_dict: Mapping[str, Any],
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a state dict as safetensors, atomically (temp file, fsync, rename).

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
    from safetensors.torch import save_file

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
