"""Files the zoo writes and names it reads from outside.

- :func:`atomic_write`: the one way a file is written. The bytes go to a
  process-unique temporary file in the same folder, are flushed and fsynced,
  the file is renamed over the target, and the folder is fsynced so that the
  rename itself survives a crash. A reader sees the old file or the new one,
  never half of either.
- :class:`FileLock`: the one inter-process lock (``fcntl.flock``, released by
  the kernel when its holder dies, so a crashed process never blocks the next).
- :func:`safe_file_name` and :func:`path_within`: a name that comes from
  outside (a URL, an index file, a manifest, a config, the command line) is
  reduced to a bare file name before it touches the filesystem, and every path
  built from one is checked to stay inside its root after resolution.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "fsync_dir",
    "move_into_place",
    "FileLock",
    "UnsafeNameError",
    "safe_file_name",
    "url_file_name",
    "path_within",
]

logger = logging.getLogger(__name__)

MAX_NAME_BYTES = 255  # the common file-system limit for one path component


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make renames and creations in ``folder`` durable (a no-op where folders can't be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def move_into_place(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Rename a finished file or folder (written and synced beside ``target``) onto ``target``
    in one step, durably: readers see the old entry or the new one, never a mix.

    Args:
        source: a file, or a folder, on the same file system as ``target``.
        target: the name it gets. An existing file is replaced; an existing folder must be
            empty.

    Returns:
        ``target``.
    """
    target = Path(target)
    os.replace(source, target)
    fsync_dir(target.parent)
    return target


def atomic_write(
    path: str | os.PathLike[str],
    writer: Callable[[IO[bytes]], Any] | bytes,
    *,
    mode: int = 0o644,
) -> Path:
    """Write a file so that ``path`` is never seen half-written.

    Args:
        path: the file to write; its folder is created.
        writer: the bytes, or a function that writes them to the binary file it is given
            (``lambda f: torch.save(obj, f)``).
        mode: the permission bits of the new file (temporary files start as 0600).

    Returns:
        ``path``.

    On any failure (an exception in ``writer``, a full disk, an interrupt) the
    temporary file is removed and the old file, if any, is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(writer, (bytes, bytearray, memoryview)):
                fh.write(writer)
            else:
                writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        return move_into_place(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, text.encode("utf-8"))


class FileLock:
    """An exclusive inter-process lock on ``path`` (created if missing), held in a ``with``.

    Uses ``fcntl.flock``; without fcntl (Windows) it falls back to ``msvcrt.locking``.
    ``path`` may be an existing folder: the folder itself is locked (POSIX), so that
    a folder of files replaced by :func:`atomic_write` (which gives each new file a
    new inode) can be guarded without leaving a lock file in it. Where folders
    cannot be locked (Windows), ``<folder>/.lock`` is used instead.

    Args:
        path: the lock file, or a folder.
        what: what is being locked, for the log line when a process has to wait.
    """

    def __init__(self, path: str | os.PathLike[str], *, what: str = "") -> None:
        self.path = Path(path)
        self.what = what or self.path.name
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; with ``blocking=False`` return False at once when another holds it."""
        fd = self._open()
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
                logger.info("waiting for another process that holds the lock on %s", self.what)
                waited = True
            time.sleep(0.05)

    def _open(self) -> int:
        if self.path.is_dir():
            if fcntl is not None:
                return os.open(self.path, os.O_RDONLY)  # flock works on a folder's descriptor
            return os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)  # pragma: no cover
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    def release(self) -> None:
        """Let the next process in (a no-op when not held)."""
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


class UnsafeNameError(ValueError):
    """A name from outside that cannot be used as a file name (see :func:`safe_file_name`)."""


_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_DECODE_ROUNDS = 8


def _fully_unquoted(text: str) -> str:
    """Percent-decode until nothing changes, so ``%252F`` cannot hide a ``/``."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            return text
        text = decoded
    raise UnsafeNameError(f"{text!r} is percent-encoded more than {_MAX_DECODE_ROUNDS} times")


def safe_file_name(text: str, *, decode: bool = False, max_bytes: int = MAX_NAME_BYTES) -> str:
    """Check that an untrusted name is a bare file name, and return it.

    Args:
        text: the name (from a URL, an index file, a manifest, a config, the command line).
        decode: percent-decode it first, repeatedly (``%252F`` is a ``/`` too), for names
            taken from URLs.
        max_bytes: the longest name accepted, in UTF-8 bytes (callers that add suffixes
            such as ``.lock`` pass less than the file-system limit of 255).

    Returns:
        The name, decoded when asked, NFC-normalized, unchanged otherwise.

    Raises:
        UnsafeNameError: the name is empty, ``.`` or ``..``, holds a path separator (``/``
            or ``\\``), starts with a drive letter, holds NUL or another control
            character, or is longer than ``max_bytes``. The message says which.
    """
    if not isinstance(text, str):
        raise UnsafeNameError(f"a file name must be a string; got {type(text).__name__}")
    name = _fully_unquoted(text) if decode else text
    name = unicodedata.normalize("NFC", name)
    shown = repr(text) if len(text) <= 80 else repr(text[:60]) + "..."
    if not name or not name.strip():
        raise UnsafeNameError(f"{shown} is an empty file name")
    if name in (".", ".."):
        raise UnsafeNameError(f"{shown} names a folder ({name!r}), not a file")
    if "/" in name or "\\" in name:
        raise UnsafeNameError(f"{shown} holds a path separator; only a bare file name is allowed")
    if _DRIVE.match(name):
        raise UnsafeNameError(f"{shown} starts with a drive letter")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cs")]
    if bad:  # NUL truncates names in C; other controls and lone surrogates break file systems
        raise UnsafeNameError(f"{shown} holds control characters ({bad[0]!r})")
    size = len(name.encode("utf-8"))
    if size > max_bytes:
        raise UnsafeNameError(f"{shown} is {size} bytes long; at most {max_bytes} are allowed")
    return name


def url_file_name(url: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """The file name a URL's path ends with, reduced to a safe bare name.

    The path is percent-decoded first (repeatedly), and only then split on ``/``
    and ``\\``: ``http://h/x/..%2F..%2Fw.bin`` names ``w.bin``, never ``../../w.bin``.
    The query and fragment are ignored.

    Raises:
        UnsafeNameError: the path ends in no usable name (``..``, a folder, NUL or other
            control characters, a drive letter, more than ``max_bytes``).
    """
    path = urllib.parse.urlsplit(url).path
    decoded = _fully_unquoted(path)
    last = re.split(r"[/\\]", decoded)[-1]
    return safe_file_name(last, max_bytes=max_bytes)


def path_within(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root / parts...``, checked to stay inside ``root`` once symlinks and ``..`` resolve.

    Raises:
        UnsafeNameError: the path would leave ``root``.
    """
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base):
        joined = "/".join(parts)
        raise UnsafeNameError(f"{joined!r} leads outside {base} (to {target})")
    return target
