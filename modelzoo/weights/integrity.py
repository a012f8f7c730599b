"""Hashes and size checks, and the records that make a second check of a file cheap.

A file is verified once by hashing it in full; the digest is then recorded
with the file's size, mtime and inode. Later checks compare only ``os.stat``
against the record and re-hash when anything differs, so a truncated or
rewritten file is caught without hashing hundreds of megabytes on every
load. (A bit flip that keeps size and mtime is not seen by the cheap check;
``modelzoo cache verify`` re-hashes everything.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from modelzoo.errors import IntegrityError
from modelzoo.utils.io import atomic_write_text

__all__ = ["sha256_file", "hash_matches", "describe_hash", "check_file", "file_digest"]

logger = logging.getLogger(__name__)
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(actual: str, expected: str | None) -> bool:
    """Whether a full digest matches the expected one, or the published prefix of it.

    An empty or None expectation matches anything: the caller decides whether
    an unverified file is acceptable.
    """
    if not expected:
        return True
    return actual.lower().startswith(expected.lower())


def describe_hash(expected: str | None) -> str:
    """How a card's hash reads in messages."""
    if not expected:
        return "sha256 unknown"
    if len(expected) < 64:
        return f"sha256 prefix {expected}"
    return f"sha256 {expected}"


def check_file(
    path: Path, actual_sha256: str, expected: str | None, size: int | None, source: str
) -> None:
    """Raise if a file's digest or size is not the expected one.

    Args:
        path: the file checked.
        actual_sha256: its full digest.
        expected: the full digest or a prefix; empty for none.
        size: the expected size in bytes; None or 0 for unknown.
        source: where the file came from (a URL or a folder), for the message.

    Raises:
        IntegrityError: naming both digests (or sizes) and the source.
    """
    actual_size = path.stat().st_size
    if size and actual_size != size:
        raise IntegrityError(
            f"{path.name} from {source} has {actual_size} bytes, expected {size} "
            f"(sha256 {actual_sha256}, expected {expected or 'unknown'}); the file is "
            "truncated or not the one the card describes"
        )
    if not hash_matches(actual_sha256, expected):
        raise IntegrityError(
            f"{path.name} from {source} has sha256 {actual_sha256}, expected "
            f"{'a digest starting with ' if len(expected or '') < 64 else ''}{expected}; "
            "the download is corrupt or the source serves another file"
        )


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def read_record(record: Path) -> dict[str, Any] | None:
    """A verification record, or None when it is missing or unreadable."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(record: Path, target: Path, sha256: str, **extra: Any) -> bool:
    """Record ``target``'s verified digest; False (and nothing raised) when it can't be written.

    A read-only cache still works: the file is then re-hashed on each load.
    """
    data = {"sha256": sha256, **_stat_key(target), **extra}
    try:
        atomic_write_text(record, json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError as err:
        logger.debug("cannot record verification of %s in %s: %s", target, record, err)
        return False
    return True


def file_digest(path: Path, record: Path | None, *, force: bool = False) -> tuple[str, bool]:
    """The full sha256 of ``path`` and whether it came from a still-valid record.

    Args:
        path: the file.
        record: where its verification record lives (None: always hash).
        force: hash even when the record is valid.
    """
    if record is not None and not force:
        data = read_record(record)
        if data and isinstance(data.get("sha256"), str):
            try:
                if all(data.get(k) == v for k, v in _stat_key(path).items()):
                    return data["sha256"], True
            except OSError:
                pass
    return sha256_file(path), False
