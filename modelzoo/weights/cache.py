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

Names come from outside (a card, a URL), so none is used as it is: an entry's
name is a bare file name (:func:`entry_name`; for URLs, :func:`url_entry_name`
decodes before it splits), and every path built here (entry, ``.lock``,
``.meta.json``, ``.part``, verification records) is resolved and checked to
stay inside the cache root (:func:`inside_cache`). ``list``, ``verify`` and
``clean`` skip symlinks, and ``clean`` removes a link as a link, so nothing
outside the cache is ever read as a cache file or deleted. Shipped weights
(the repository's ``weights/`` folder) are listed and verified on request but
never removed.

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelzoo.errors import WeightsError
from modelzoo.utils.io import (
    MAX_NAME_BYTES,
    FileLock,
    UnsafeNameError,
    path_within,
    safe_file_name,
    url_file_name,
)
from modelzoo.weights.integrity import file_digest, hash_matches, read_record

__all__ = [
    "cache_dir",
    "CacheEntry",
    "cache_entries",
    "verify_cache",
    "clean_cache",
    "entry_name",
    "url_entry_name",
]

logger = logging.getLogger(__name__)

META_SUFFIX = ".meta.json"
LOCK_SUFFIX = ".lock"
PART_SUFFIX = ".part"
_RESERVED_SUFFIXES = (META_SUFFIX, LOCK_SUFFIX, PART_SUFFIX, ".tmp")
# An entry's sidecars append at most ".<pid>.part" (pid up to 2**22 on Linux, 10 digits to be
# safe) or ".meta.json"; leave them room under the file-system limit.
MAX_ENTRY_NAME_BYTES = MAX_NAME_BYTES - 24


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


def entry_name(name: str, *, source: str = "") -> str:
    """Check that ``name`` (a card's file name) can name a cache entry, and return it.

    Args:
        name: the name; it comes from outside (a card, a manifest, a URL).
        source: where it came from, for the message (a URL, a card).

    Raises:
        WeightsError: not a bare file name (a path separator, ``..``, a drive letter, NUL or
            another control character), a hidden name or one ending like the cache's own
            sidecar files (``.lock``, ``.meta.json``, ``.part``), or too long.
    """
    where = f" (from {source})" if source else ""
    try:
        safe = safe_file_name(name, max_bytes=MAX_ENTRY_NAME_BYTES)
    except UnsafeNameError as err:
        raise WeightsError(
            f"cannot store a weights file named {name!r}{where} in the cache: {err}. A file "
            "name must be a bare name such as 'model.safetensors'; fix the card, or download "
            "the file yourself and pass its local path"
        ) from None
    if safe.startswith(".") or safe.endswith(_RESERVED_SUFFIXES):
        raise WeightsError(
            f"cannot store a weights file named {name!r}{where} in the cache: names that start "
            f"with '.' or end in {', '.join(_RESERVED_SUFFIXES)} are the cache's own files. "
            "Rename the file on the card, or download it yourself and pass its local path"
        )
    return safe


def url_entry_name(url: str) -> str:
    """The cache entry name for a download from ``url``: its last path segment, made safe.

    The path is percent-decoded before it is split, so an encoded ``/`` or ``\\`` cannot
    smuggle a folder into the name; a URL whose path ends in a folder (``/``) is stored as
    ``download``.

    Raises:
        WeightsError: naming the URL, when its last segment cannot be a file name (``..``,
            NUL, control characters, a drive letter, too long).
    """
    try:
        name = url_file_name(url, max_bytes=MAX_ENTRY_NAME_BYTES)
    except UnsafeNameError as err:
        if "is an empty file name" not in str(err):
            raise WeightsError(
                f"cannot download {url}: the file name at the end of its path is not usable "
                f"({err}). Download the file yourself and pass its local path, or put it into "
                "a folder named by MODELZOO_WEIGHTS_DIR"
            ) from None
        name = "download"
    return entry_name(name, source=url)


def inside_cache(path: Path, *, what: str = "") -> Path:
    """``path`` resolved, checked to stay inside the cache root (symlinks followed).

    Raises:
        WeightsError: the path leads outside ``MODELZOO_HOME`` (a name that escaped the
            checks, or a symlink planted in the cache).
    """
    root = cache_dir()
    try:
        # An absolute part replaces the root in the join, so this checks ``path`` itself.
        return path_within(root, os.path.abspath(path))
    except UnsafeNameError as err:
        raise WeightsError(
            f"refusing to use {path}{' for ' + what if what else ''}: it leads outside the "
            f"weights cache {root} ({err}). Remove it, or run `modelzoo cache clean --all`"
        ) from None


def entry_path(name: str, sha256: str | None, urls: tuple[str, ...]) -> Path:
    """Where the cache keeps the file ``name`` with this hash from these URLs.

    Raises:
        WeightsError: ``name`` cannot be a cache entry (see :func:`entry_name`), or the
            path would lead outside the cache.
    """
    name = entry_name(name, source=urls[0] if urls else "")
    if sha256 and len(sha256) == 64:
        key = sha256.lower()
    elif urls:
        key = "url-" + hashlib.sha256(urls[0].encode()).hexdigest()[:24]
    else:
        key = "name-" + hashlib.sha256(name.encode()).hexdigest()[:24]
    return inside_cache(weights_root() / key / name, what=name)


def _sidecar(entry: Path, suffix: str) -> Path:
    return inside_cache(entry.with_name(entry.name + suffix), what=f"the {suffix} of {entry.name}")


def meta_path(entry: Path) -> Path:
    """The record of a cached file: its digest, size, mtime and source URL."""
    return _sidecar(entry, META_SUFFIX)


def lock_path(entry: Path) -> Path:
    """The lock a download of ``entry`` holds."""
    return _sidecar(entry, LOCK_SUFFIX)


def part_path(entry: Path, pid: int | str) -> Path:
    """A partial download of ``entry`` by process ``pid``."""
    return _sidecar(entry, f".{pid}{PART_SUFFIX}")


def record_path(path: Path) -> Path:
    """Where the verification record of ``path`` lives (its sidecar inside the cache)."""
    path = Path(path).resolve()
    if weights_root().resolve() in path.parents:
        return meta_path(path)
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:32]
    return inside_cache(cache_dir() / "verified" / f"{digest}.json")


def _real_folders(root: Path) -> list[Path]:
    """The folders directly under ``root`` that are folders of the cache, not links out of it."""
    if not root.is_dir() or root.is_symlink():
        return []
    folders = []
    for path in sorted(root.iterdir()):
        if path.is_symlink():
            logger.warning("ignoring %s: a symlink in the weights cache", path)
        elif path.is_dir():
            folders.append(path)
    return folders


def _real_files(folder: Path, pattern: str = "*") -> list[Path]:
    """Regular files (not symlinks) in ``folder`` matching ``pattern``."""
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.is_symlink())


@dataclass(frozen=True)
class CacheEntry:
    """One weights file on this machine, as ``modelzoo cache list`` shows it.

    Attributes:
        name: the file name.
        path: where it is.
        size: its size in bytes.
        sha256: the digest recorded when it was downloaded ("" if unrecorded); for a
            shipped file, the digest its card gives.
        expected_sha256: what the card asked for ("" if nothing).
        source: the URL it came from; for a shipped file, ``weights/<file>``.
        shipped: a file that comes with modelzoo (the repository's ``weights/`` folder),
            not a download: ``cache clean`` never removes it.
        weight_set: the ``arch.tag`` of a shipped file's card ("" for downloads).
    """

    name: str
    path: Path
    size: int
    sha256: str
    expected_sha256: str
    source: str
    shipped: bool = False
    weight_set: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (``modelzoo cache list --json``)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "expected_sha256": self.expected_sha256,
            "source": self.source,
            "shipped": self.shipped,
            "weight_set": self.weight_set,
        }


def _is_aux(name: str) -> bool:
    return name.endswith(_RESERVED_SUFFIXES) or name.startswith(".")


def _downloaded_entries() -> list[CacheEntry]:
    entries = []
    for folder in _real_folders(weights_root()):
        for path in _real_files(folder):
            if _is_aux(path.name):
                continue
            meta = read_record(meta_path(path)) or {}
            entries.append(
                CacheEntry(
                    name=path.name,
                    path=path,
                    size=path.stat().st_size,
                    sha256=str(meta.get("sha256", "")),
                    expected_sha256=str(meta.get("expected_sha256", "")),
                    source=str(meta.get("source", "")),
                )
            )
    return entries


def _shipped_entries() -> list[CacheEntry]:
    from modelzoo.weights.manifest import all_weight_sets, shipped_file

    entries = []
    for ws in all_weight_sets():
        for wf in ws.files:
            if not wf.path:
                continue
            try:
                path = shipped_file(wf.path)
            except WeightsError as err:
                logger.warning("%s: %s", ws.name, err)
                continue
            if not path.is_file():
                continue
            entries.append(
                CacheEntry(
                    name=wf.name,
                    path=path,
                    size=path.stat().st_size,
                    sha256=wf.sha256,
                    expected_sha256=wf.sha256,
                    source=wf.path,
                    shipped=True,
                    weight_set=ws.name,
                )
            )
    return entries


def cache_entries(*, include_shipped: bool = False) -> list[CacheEntry]:
    """Every complete file in the cache, sorted by name.

    Args:
        include_shipped: add the weight files that come with modelzoo (marked
            ``shipped``), which are used without being copied into the cache.
    """
    entries = _downloaded_entries() + (_shipped_entries() if include_shipped else [])
    return sorted(entries, key=lambda e: (e.shipped, e.name, str(e.path)))


def entry_problem(entry: CacheEntry, *, force: bool) -> str | None:
    """Why a file is bad (None when it is good); ``force`` re-hashes it."""
    record = record_path(entry.path) if entry.shipped else meta_path(entry.path)
    actual, _ = file_digest(entry.path, record, force=force)
    if entry.shipped:
        if entry.size and entry.path.stat().st_size != entry.size:
            return f"{entry.path.stat().st_size} bytes, its card says {entry.size}"
        if not hash_matches(actual, entry.expected_sha256):
            return (
                f"sha256 {actual} does not match its card's {entry.expected_sha256}; restore "
                f"it with `git checkout {entry.source}` or reinstall modelzoo"
            )
        return None
    if entry.sha256 and actual != entry.sha256:
        return f"sha256 {actual} differs from the {entry.sha256} recorded at download"
    if not hash_matches(actual, entry.expected_sha256):
        return f"sha256 {actual} does not match the card's {entry.expected_sha256}"
    return None


def verify_cache(*, include_shipped: bool = False) -> list[tuple[CacheEntry, str | None]]:
    """Re-hash every cached file (and shipped ones, when asked): (entry, problem or None)."""
    entries = cache_entries(include_shipped=include_shipped)
    return [(entry, entry_problem(entry, force=True)) for entry in entries]


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

    Only paths inside the cache root are ever removed: a symlink found in the
    cache is removed as a link, never followed, and shipped weights (which
    live outside the cache) are never touched.
    """
    removed: list[tuple[Path, int]] = []
    root = cache_dir()

    def drop(path: Path) -> None:
        # Check the folder it sits in, not the path itself: a symlink is removed as a link.
        inside_cache(path.parent, what="cleaning")
        if path.is_symlink() or path.is_file():
            size = 0 if path.is_symlink() else path.stat().st_size
        else:
            size = _tree_size(path)
        removed.append((path, size))
        if dry_run:
            return
        if path.is_symlink() or not path.is_dir():
            path.unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)

    if everything:
        for sub in ("weights", "verified"):
            if (root / sub).exists() or (root / sub).is_symlink():
                drop(root / sub)
        return removed
    folders = _real_folders(weights_root())
    for folder in folders:
        for part in _real_files(folder, "*" + PART_SUFFIX):
            name = part.name.rsplit(".", 2)[0]  # <name>.<pid>.part
            with _unlocked(folder / (name + LOCK_SUFFIX)) as free:
                if free:  # else a download is writing it
                    drop(part)
    for entry in _downloaded_entries():
        problem = entry_problem(entry, force=False)
        if problem:
            logger.info("removing %s: %s", entry.path, problem)
            drop(entry.path)
            if meta_path(entry.path).exists():
                drop(meta_path(entry.path))
    for folder in folders:
        for meta in _real_files(folder, "*" + META_SUFFIX):
            if not (folder / meta.name[: -len(META_SUFFIX)]).exists():
                drop(meta)
        if not dry_run and not any(folder.iterdir()):
            folder.rmdir()
    verified = root / "verified"
    if verified.is_dir() and not verified.is_symlink():
        for record in _real_files(verified, "*.json"):
            data = read_record(record) or {}
            target = data.get("path")
            if not isinstance(target, str) or not target or not Path(target).is_file():
                drop(record)
    return removed


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
