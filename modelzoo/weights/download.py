"""``fetch``: resolve a weights path, URL or card file to a verified local file.

Resolution order, first hit wins:

1. an explicit local path (checked against ``sha256``/``size`` when given);
2. ``MODELZOO_WEIGHTS_DIR``: folders (``os.pathsep``-separated) where people
   drop files, looked up by file name;
3. the cache (``MODELZOO_HOME``; see :mod:`modelzoo.weights.cache`);
4. the shipped ``weights/`` folder, for files that have a ``path``;
5. the network: each ``MODELZOO_MIRROR`` base URL (comma-separated) with the
   file name appended, then the file's own URLs.

``MODELZOO_OFFLINE=1`` forbids step 5 and raises ``OfflineError`` saying which
file is missing, its sha256 and where to put it.

``hf-hub:<org>/<repo>[@<revision>]/<file>`` ids go to :mod:`modelzoo.weights.hub`
instead: huggingface_hub's cache and settings (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``,
``HF_TOKEN``), with the file checked against its content address.

Trust: a file is checked against the card's full sha256, or against the
published prefix when only that exists (torchvision). A network file with no
hash at all is refused unless ``MODELZOO_ALLOW_UNVERIFIED=1``; once
downloaded, the digest received is recorded and the cached copy is checked
against it from then on.

Downloads hold a per-file lock (concurrent processes download once; the
others wait and then find the verified file), write to a process-unique
``.part`` file in the cache folder, hash while streaming, resume an earlier
partial with an HTTP Range request (starting over when the server ignores
it), retry dropped connections, and rename into place only once size and
hash are right (then fsync the folder, so the rename survives a crash). A
failed download never touches a file already cached.

Names from outside never make paths: a URL's file name is percent-decoded
before it is split, reduced to a bare name (:func:`modelzoo.weights.cache.url_entry_name`),
and every path the cache builds is checked to stay inside it; a URL whose name
cannot be made safe raises ``WeightsError`` naming it.
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelzoo.errors import IntegrityError, OfflineError, WeightsError
from modelzoo.utils.io import FileLock, UnsafeNameError, move_into_place, safe_file_name
from modelzoo.weights import cache
from modelzoo.weights.card import WeightFile
from modelzoo.weights.integrity import (
    check_file,
    describe_hash,
    file_digest,
    hash_matches,
    read_record,
    write_record,
)

__all__ = ["fetch", "fetch_weight_set"]

logger = logging.getLogger(__name__)

CHUNK = 1 << 16
TIMEOUT_S = 60.0
MAX_ATTEMPTS = 5  # per URL, counting the first
BACKOFF_S = 0.5  # doubled after each failed attempt, capped at 8 s
_TRUE = ("1", "true", "yes", "on")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _weights_dirs() -> list[Path]:
    value = os.environ.get("MODELZOO_WEIGHTS_DIR", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def _mirrors() -> list[str]:
    """The ``MODELZOO_MIRROR`` base URLs, each checked to be an http(s) or file URL."""
    value = os.environ.get("MODELZOO_MIRROR", "")
    bases = [m.strip().rstrip("/") for m in value.split(",") if m.strip()]
    for base in bases:
        parts = urllib.parse.urlsplit(base)
        if not _is_url(base) or parts.query or parts.fragment:
            raise WeightsError(
                f"MODELZOO_MIRROR holds {base!r}, which is not a base URL; give comma-separated "
                "http(s):// or file:// URLs without a query, e.g. "
                "MODELZOO_MIRROR=https://mirror.example.org/weights"
            )
    return bases


def _mirror_url(base: str, name: str) -> str:
    # ``name`` is a card's bare file name; quoting every reserved character (safe="") keeps
    # it one path segment under the base URL whatever it holds.
    return f"{base}/{urllib.parse.quote(name, safe='')}"


def _is_url(source: str) -> bool:
    return re.match(r"^(https?|file)://", source, re.IGNORECASE) is not None


def fetch(
    source: str | os.PathLike[str] | WeightFile,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
) -> Path:
    """Resolve a weights path, URL or card file to a verified local file.

    Args:
        source: a local path, an ``http(s)://`` or ``file://`` URL, a bare file
            name (looked up in ``MODELZOO_WEIGHTS_DIR``), a card's
            :class:`WeightFile`, or a file of a Hugging Face Hub repo,
            ``hf-hub:<org>/<repo>[@<revision>]/<file>`` (downloaded through
            ``huggingface_hub`` into its cache; see :mod:`modelzoo.weights.hub`).
        sha256: the expected digest, or its published prefix (8+ hex digits);
            overrides the card's.
        size: the expected size in bytes; overrides the card's.
        progress: show a progress bar while downloading (only on a terminal).

    Returns:
        The path of the verified file.

    Raises:
        IntegrityError: the file's sha256 or size is not the expected one.
        OfflineError: the file must be downloaded but ``MODELZOO_OFFLINE=1``.
        WeightsError: not found, not downloadable, or the cache is not writable.
    """
    if isinstance(source, WeightFile):
        return _resolve(
            source.name,
            (sha256 or source.sha256 or "").lower(),
            size or source.size or None,
            source.urls,
            source.path,
            progress,
        )
    text = os.fspath(source)
    if isinstance(text, str) and text.startswith("hf-hub:"):
        from modelzoo.weights.hub import fetch_file  # through huggingface_hub and its cache

        return fetch_file(text, sha256=sha256, size=size)
    expected = (sha256 or "").lower()
    if _is_url(text):
        if text.lower().startswith("file://"):
            local = urllib.request.url2pathname(urllib.parse.urlparse(text).path)
            return fetch(local, sha256=sha256, size=size, progress=progress)
        return _resolve(cache.url_entry_name(text), expected, size, (text,), None, progress)
    path = Path(text).expanduser()
    if path.is_file():
        if expected or size:
            _verify_external(path, expected, size, where=str(path.parent))
        return path.resolve()
    if path.is_dir():
        raise WeightsError(
            f"{path} is a folder; pass the weights file in it (e.g. {path}/model.safetensors)"
        )
    if len(path.parts) == 1:
        found = _from_weights_dirs(path.name, expected, size)
        if found is not None:
            return found
    raise WeightsError(
        f"no weights file at {path}"
        + (
            f" (looked in MODELZOO_WEIGHTS_DIR={os.environ['MODELZOO_WEIGHTS_DIR']} too)"
            if len(path.parts) == 1 and _weights_dirs()
            else ""
        )
    )


def fetch_weight_set(ws: object, *, progress: bool = True) -> list[Path]:
    """Fetch every file of a weight set (a :class:`WeightSet` or its ``arch.tag`` name)."""
    from modelzoo.weights.manifest import get_weight_set

    if isinstance(ws, str):
        arch, _, tag = ws.partition(".")
        ws = get_weight_set(arch, tag or None)
    return [fetch(f, progress=progress) for f in ws.files]  # type: ignore[attr-defined]


def _verify_external(path: Path, expected: str, size: int | None, *, where: str) -> str:
    """Check a file outside the cache, recording the result in the cache when possible."""
    record = cache.record_path(path)
    actual, from_record = file_digest(path, record)
    check_file(path, actual, expected, size, where)
    if not from_record:
        write_record(record, path, actual, path=str(path))
    return actual


def _from_weights_dirs(name: str, expected: str, size: int | None) -> Path | None:
    try:
        name = safe_file_name(name)  # looked up by bare name only: never a path out of the folder
    except UnsafeNameError:
        return None
    for folder in _weights_dirs():
        candidate = folder / name
        if candidate.is_file():
            try:
                _verify_external(candidate, expected, size, where=f"MODELZOO_WEIGHTS_DIR {folder}")
            except IntegrityError as err:
                raise IntegrityError(
                    f"{err}. Replace or remove {candidate} (it shadows the cache and downloads)."
                ) from None
            logger.debug("using %s from MODELZOO_WEIGHTS_DIR", candidate)
            return candidate.resolve()
    return None


def _cached_ok(entry: Path, expected: str, size: int | None) -> tuple[bool, str]:
    """Whether a cached file is intact and the one wanted; the reason when not."""
    meta = read_record(cache.meta_path(entry)) or {}
    try:
        actual, from_record = file_digest(entry, cache.meta_path(entry))
        actual_size = entry.stat().st_size
    except OSError as err:
        return False, f"cannot read it ({err})"
    recorded = meta.get("sha256", "")
    if recorded and actual != recorded:
        return False, f"sha256 {actual} differs from the {recorded} recorded at download"
    if size and actual_size != size:
        return False, f"{actual_size} bytes, expected {size}"
    if not hash_matches(actual, expected):
        return False, f"sha256 {actual}, expected {describe_hash(expected)}"
    if not from_record:
        write_record(
            cache.meta_path(entry),
            entry,
            actual,
            source=meta.get("source", ""),
            expected_sha256=expected or meta.get("expected_sha256", ""),
        )
    return True, ""


def _resolve(
    name: str,
    expected: str,
    size: int | None,
    urls: tuple[str, ...],
    shipped: str | None,
    progress: bool,
) -> Path:
    found = _from_weights_dirs(name, expected, size)
    if found is not None:
        return found

    entry = cache.entry_path(name, expected, urls)
    problem = ""
    if entry.is_file():
        ok, problem = _cached_ok(entry, expected, size)
        if ok:
            return entry
        logger.warning("cached %s is not usable (%s); fetching it again", entry, problem)

    if shipped:
        from modelzoo.weights.manifest import shipped_file

        path = shipped_file(shipped)
        if path.is_file():
            try:
                _verify_external(path, expected, size, where="the shipped weights/ folder")
            except IntegrityError as err:
                from modelzoo.weights.io import check_safetensors

                if path.suffix == ".safetensors":
                    check_safetensors(path)  # names a Git LFS pointer or truncation if that is it
                raise IntegrityError(
                    f"{err}. The shipped file is damaged: restore it with `git checkout "
                    f"{shipped}` or reinstall modelzoo."
                ) from None
            return path.resolve()

    candidates = [_mirror_url(m, name) for m in _mirrors()] + list(urls)
    where = _where_to_put(name, entry)
    if not candidates:
        raise WeightsError(
            f"{name} ({describe_hash(expected)}) is not in MODELZOO_WEIGHTS_DIR, the cache or "
            f"the shipped weights, and its card has no URL to download it from; {where}"
        )
    if _flag("MODELZOO_OFFLINE"):
        detail = f" (the cached copy is not usable: {problem})" if problem else ""
        raise OfflineError(
            f"{name} ({describe_hash(expected)}) must be downloaded from {candidates[-1]}{detail}, "
            f"but MODELZOO_OFFLINE=1 forbids the network; {where}, or unset MODELZOO_OFFLINE"
        )
    if not expected and not _flag("MODELZOO_ALLOW_UNVERIFIED"):
        raise WeightsError(
            f"{name} from {candidates[-1]} has no published sha256, so a download could not be "
            "verified. Set MODELZOO_ALLOW_UNVERIFIED=1 to download it anyway (its digest is then "
            f"recorded and checked on later loads), pass sha256=..., or {where}"
        )
    return _download(entry, name, candidates, expected, size, progress)


def _where_to_put(name: str, entry: Path) -> str:
    dirs = _weights_dirs()
    if dirs:
        return f"put the file at {dirs[0] / name} (MODELZOO_WEIGHTS_DIR) or at {entry}"
    return (
        f"put the file in a folder named by MODELZOO_WEIGHTS_DIR (as {name}) or at {entry} "
        "(the cache, MODELZOO_HOME)"
    )


class _TransferError(Exception):
    """A download from one URL failed for a reason other than integrity."""


def _download(
    entry: Path,
    name: str,
    urls: list[str],
    expected: str,
    size: int | None,
    progress: bool,
) -> Path:
    lock_path = cache.lock_path(entry)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path, what=f"the download of {name}")
        lock.acquire()
    except OSError as err:
        raise WeightsError(
            f"cannot download {name}: the weights cache {cache.cache_dir()} is not writable "
            f"({err.strerror or err}). Set MODELZOO_HOME to a writable folder, or put the file "
            "in a folder named by MODELZOO_WEIGHTS_DIR."
        ) from err
    try:
        if entry.is_file():  # another process may have fetched it while we waited
            ok, _ = _cached_ok(entry, expected, size)
            if ok:
                return entry
        failures: list[tuple[str, Exception]] = []
        for url in urls:
            try:
                actual = _download_from(url, entry, expected, size, progress)
            except (IntegrityError, _TransferError) as err:
                logger.info("downloading %s from %s failed: %s", name, url, err)
                failures.append((url, err))
                continue
            except OSError as err:  # writing, not the network: a full or read-only disk
                raise WeightsError(
                    f"cannot write {name} into the weights cache {entry.parent} "
                    f"({err.strerror or err}); free some space or set MODELZOO_HOME to "
                    "another folder"
                ) from err
            write_record(
                cache.meta_path(entry),
                entry,
                actual,
                source=url,
                expected_sha256=expected,
                fetched=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            if not expected:
                logger.warning(
                    "%s was downloaded unverified from %s (MODELZOO_ALLOW_UNVERIFIED); "
                    "recorded its sha256 %s for later loads",
                    name,
                    url,
                    actual,
                )
            return entry
    finally:
        lock.release()
    integrity = [err for _, err in failures if isinstance(err, IntegrityError)]
    if len(failures) == 1 and integrity:
        raise integrity[0]
    summary = "; ".join(f"{url}: {err}" for url, err in failures)
    error = IntegrityError if len(integrity) == len(failures) else WeightsError
    raise error(f"could not download {name} ({describe_hash(expected)}): {summary}")


def _adopt_partial(entry: Path) -> Path:
    """This process's .part file, taking over the largest partial a dead attempt left."""
    mine = cache.part_path(entry, os.getpid())
    # <name>.<pid>.part exactly: not the partial of another entry whose name starts with ours.
    own = re.compile(re.escape(entry.name) + r"\.\d+" + re.escape(cache.PART_SUFFIX))
    leftovers = [
        p
        for p in entry.parent.glob(f"{glob.escape(entry.name)}.*{cache.PART_SUFFIX}")
        if p != mine and own.fullmatch(p.name) and p.is_file() and not p.is_symlink()
    ]
    if leftovers and not mine.exists():
        best = max(leftovers, key=lambda p: p.stat().st_size)
        move_into_place(best, mine)
        leftovers.remove(best)
    for stale in leftovers:  # we hold the lock: nobody is writing these
        stale.unlink(missing_ok=True)
    return mine


def _hash_prefix(path: Path) -> Any:
    digest = hashlib.sha256()
    if path.exists():
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) from ``bytes 100-199/200`` or ``bytes */200``."""
    match = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _progress_bar(name: str, total: int | None, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        disable=not (enabled and sys.stderr.isatty()),
        leave=False,
    )


def _download_from(url: str, entry: Path, expected: str, size: int | None, progress: bool) -> str:
    """Download ``url`` into ``entry`` (resuming a partial); return the full sha256."""
    part = _adopt_partial(entry)
    resumed_old = part.exists() and part.stat().st_size > 0
    attempt = 0
    actual: str | None = None

    def retry(reason: str) -> None:
        nonlocal attempt
        attempt += 1
        if attempt >= MAX_ATTEMPTS:
            raise _TransferError(f"gave up after {attempt} attempts: {reason}")
        delay = min(BACKOFF_S * 2 ** (attempt - 1), 8.0)
        logger.info("%s: %s; retrying in %.1f s", url, reason, delay)
        time.sleep(delay)

    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "modelzoo", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S
            )
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset:
                _, total = _content_range(err.headers.get("Content-Range"))
                if total == offset:
                    break  # the partial is the whole file already
                part.unlink(missing_ok=True)  # bigger than the file: start over
                retry("the partial download does not fit the file; starting over")
                continue
            if err.code in (408, 425, 429) or err.code >= 500:
                retry(f"HTTP {err.code} {err.reason}")
                continue
            raise _TransferError(f"HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, (socket.gaierror, ConnectionRefusedError)):
                # No such host, or nothing listening: waiting will not help; try the next URL.
                raise _TransferError(f"cannot connect ({reason})") from None
            retry(f"cannot connect ({reason})")
            continue

        with response:
            if offset and response.status == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    part.unlink(missing_ok=True)
                    retry(f"asked for bytes from {offset}, got from {start}")
                    continue
                digest = _hash_prefix(part)
                mode = "ab"
            else:
                if offset:
                    logger.info("%s ignored the Range request; downloading from the start", url)
                offset = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                digest = hashlib.sha256()
                mode = "wb"
            if size and total is not None and total != size:
                part.unlink(missing_ok=True)
                raise IntegrityError(
                    f"{entry.name} at {url} has {total} bytes, expected {size}; the source "
                    "serves another file"
                )
            received = offset
            dropped = None
            with open(part, mode) as fh, _progress_bar(entry.name, total, offset, progress) as bar:
                try:
                    while chunk := response.read(CHUNK):
                        fh.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as err:
                    dropped = f"connection dropped at byte {received} ({type(err).__name__})"
                fh.flush()
                os.fsync(fh.fileno())
            if dropped is None and total is not None and received < total:
                dropped = f"connection closed at byte {received} of {total}"
            if dropped:
                retry(dropped)  # the next attempt resumes from the partial
                continue
        actual = digest.hexdigest()
        break

    if actual is None:  # the 416 path: the partial was complete
        actual = _hash_prefix(part).hexdigest()
    try:
        check_file(part, actual, expected, size, url)
    except IntegrityError:
        part.unlink(missing_ok=True)
        if resumed_old:
            # The partial may have come from another version of the file: once from zero.
            logger.info("%s: the resumed download does not verify; downloading it whole", url)
            return _download_from(url, entry, expected, size, progress)
        raise
    move_into_place(part, entry)  # the rename itself survives a crash, as atomic_write's does
    return actual
