"""The weights cache: where downloads live, how they are locked, listed, verified, cleaned.

Layout (``MODELZOO_HOME``, default ``$XDG_CACHE_HOME/modelzoo`` or
``~/.cache/modelzoo``)::

    weights/<key>/<name>              a verified file
    weights/<key>/<name>.meta.json    its digest, size, mtime, source URL
    weights/<key>/<name>.lock         taken while the file is downloaded
    weights/<key>/<name>.<pid>.part   a partial download, resumed by the next attempt
    verified/<id>.json                verification records of files outside the cache
                                      (MODELZOO_WEIGHTS_DIR, shipped weights)

``<key>`` is the file's full sha256 when the card knows it (the same content
from two URLs is stored once), else ``url-`` and a hash of its first URL
(e.g. two Hugging Face repos' ``model.safetensors``).

A read-only cache is used as it is: files already in it load (they are then
re-hashed on each load, since no record can be written). Downloading into it
raises a ``WeightsError`` saying to point ``MODELZOO_HOME`` at a writable
folder; modelzoo does not silently fall back to a temporary folder, because a
cache that forgets every download is worse than a clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelzoo.weights.integrity import file_digest, hash_matches, read_record

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "cache_dir",
    "CacheEntry",
    "cache_entries",
    "verify_cache",
    "clean_cache",
    "FileLock",
]

logger = logging.getLogger(__name__)

META_SUFFIX = ".meta.json"
LOCK_SUFFIX = ".lock"
PART_SUFFIX = ".part"


def cache_dir() -> Path:
    """The cache root: ``MODELZOO_HOME``, else ``$XDG_CACHE_HOME/modelzoo``, else ~/.cache."""
    home = os.environ.get("MODELZOO_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "modelzoo"


def weights_root() -> Path:
    return cache_dir() / "weights"


def entry_path(name: str, sha256: str | None, urls: tuple[str, ...]) -> Path:
    """Where the cache keeps the file ``name`` with this hash from these URLs."""
    if sha256 and len(sha256) == 64:
        key = sha256.lower()
    elif urls:
        key = "url-" + hashlib.sha256(urls[0].encode()).hexdigest()[:24]
    else:
        key = "name-" + hashlib.sha256(name.encode()).hexdigest()[:24]
    return weights_root() / key / name


def meta_path(entry: Path) -> Path:
    return entry.with_name(entry.name + META_SUFFIX)


def record_path(path: Path) -> Path:
    """Where the verification record of ``path`` lives (its sidecar inside the cache)."""
    path = Path(os.path.abspath(path))
    root = Path(os.path.abspath(weights_root()))
    if root in path.parents:
        return meta_path(path)
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:32]
    return cache_dir() / "verified" / f"{digest}.json"


class FileLock:
    """An exclusive inter-process lock on ``path`` (created if missing), held in a ``with``.

    Uses ``fcntl.flock``, which the kernel releases when the holder dies, so a
    crashed download never blocks the next one. Without fcntl (Windows) it
    falls back to ``msvcrt.locking``.
    """

    def __init__(self, path: Path, *, what: str = "") -> None:
        self.path = path
        self.what = what or path.name
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        waited = False
        start = time.monotonic()
        while True:
            if _try_lock(fd):
                self._fd = fd
                if waited:
                    logger.info(
                        "got the lock on %s after %.1f s", self.what, time.monotonic() - start
                    )
                return True
            if not blocking:
                os.close(fd)
                return False
            if not waited and time.monotonic() - start > 1.0:
                logger.info("waiting for another process to finish downloading %s", self.what)
                waited = True
            time.sleep(0.05)

    def release(self) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    import msvcrt  # pragma: no cover - Windows only

    try:  # pragma: no cover
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:  # pragma: no cover
        return False


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows only
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


@dataclass(frozen=True)
class CacheEntry:
    """One cached file, as ``modelzoo cache list`` shows it."""

    name: str
    path: Path
    size: int
    sha256: str  # the digest recorded when it was downloaded ("" if unrecorded)
    expected_sha256: str  # what the card asked for ("" if nothing)
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "expected_sha256": self.expected_sha256,
            "source": self.source,
        }


def _is_aux(name: str) -> bool:
    return name.endswith((META_SUFFIX, LOCK_SUFFIX, PART_SUFFIX)) or name.startswith(".")


def cache_entries() -> list[CacheEntry]:
    """Every complete file in the cache, sorted by name."""
    entries = []
    root = weights_root()
    if not root.is_dir():
        return []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            if _is_aux(path.name) or not path.is_file():
                continue
            meta = read_record(meta_path(path)) or {}
            entries.append(
                CacheEntry(
                    name=path.name,
                    path=path,
                    size=path.stat().st_size,
                    sha256=meta.get("sha256", ""),
                    expected_sha256=meta.get("expected_sha256", ""),
                    source=meta.get("source", ""),
                )
            )
    return sorted(entries, key=lambda e: (e.name, str(e.path)))


def entry_problem(entry: CacheEntry, *, force: bool) -> str | None:
    """Why a cached file is bad (None when it is good); ``force`` re-hashes it."""
    actual, _ = file_digest(entry.path, meta_path(entry.path), force=force)
    if entry.sha256 and actual != entry.sha256:
        return f"sha256 {actual} differs from the {entry.sha256} recorded at download"
    if not hash_matches(actual, entry.expected_sha256):
        return f"sha256 {actual} does not match the card's {entry.expected_sha256}"
    return None


def verify_cache() -> list[tuple[CacheEntry, str | None]]:
    """Re-hash every cached file: (entry, problem or None) for each."""
    return [(entry, entry_problem(entry, force=True)) for entry in cache_entries()]


@contextlib.contextmanager
def _unlocked(lock: Path) -> Iterator[bool]:
    """Whether nobody holds ``lock`` (and hold it meanwhile)."""
    holder = FileLock(lock)
    try:
        got = holder.acquire(blocking=False)
    except OSError:
        got = False
    try:
        yield got
    finally:
        if got:
            holder.release()


def clean_cache(*, everything: bool = False, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove what the cache does not need; returns the (path, bytes) removed.

    Args:
        everything: empty the cache (every file, record and lock).
        dry_run: report what would go without removing it.

    By default it removes partial downloads nobody is writing, cached files
    that fail the check against their record (re-hashing only those whose
    size or mtime changed), and verification records of files that are gone.
    Lock files stay (deleting a lock another process is about to take would
    let two processes download at once); ``everything`` removes them too.
    """
    removed: list[tuple[Path, int]] = []

    def drop(path: Path) -> None:
        size = path.stat().st_size if path.is_file() else _tree_size(path)
        removed.append((path, size))
        if not dry_run:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    root = cache_dir()
    if everything:
        for sub in ("weights", "verified"):
            if (root / sub).exists():
                drop(root / sub)
        return removed
    for folder in sorted(p for p in weights_root().glob("*") if p.is_dir()):
        for part in sorted(folder.glob("*" + PART_SUFFIX)):
            name = part.name.rsplit(".", 2)[0]  # <name>.<pid>.part
            with _unlocked(folder / (name + LOCK_SUFFIX)) as free:
                if free:  # else a download is writing it
                    drop(part)
    for entry in cache_entries():
        problem = entry_problem(entry, force=False)
        if problem:
            logger.info("removing %s: %s", entry.path, problem)
            drop(entry.path)
            if meta_path(entry.path).exists():
                drop(meta_path(entry.path))
    for folder in sorted(p for p in weights_root().glob("*") if p.is_dir()):
        for meta in folder.glob("*" + META_SUFFIX):
            if not (folder / meta.name[: -len(META_SUFFIX)]).exists():
                drop(meta)
        if not dry_run and not any(folder.iterdir()):
            folder.rmdir()
    for record in sorted((root / "verified").glob("*.json")):
        data = read_record(record) or {}
        target = Path(data.get("path", ""))
        if not data.get("path") or not target.is_file():
            drop(record)
    return removed


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
