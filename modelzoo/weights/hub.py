"""The Hugging Face Hub, through ``huggingface_hub``: ``hf-hub:`` ids, downloads, and push.

::

    import modelzoo as mz
    from modelzoo.weights import fetch
    from modelzoo.weights.hub import push_to_hub

    model = mz.create("hf-hub:org/repo")                   # a repo the zoo or timm wrote
    model = mz.create("hf-hub:org/repo@v1")                # a branch, tag or commit
    model = mz.create("resnet50", pretrained="hf-hub:org/repo")   # its weights, your arguments
    path = fetch("hf-hub:org/repo@main/model.safetensors")        # one file
    push_to_hub(model, "org/repo")                         # or a run directory, or a folder

Ids are ``hf-hub:<org>/<repo>[@<revision>][/<path in the repo>]``, in the order of
``hf://`` URIs; a revision holding ``/`` is percent-encoded (``@refs%2Fpr%2F1``). They come
from outside, so every part is checked before anything is asked for: the repo id with
huggingface_hub's own validator, the revision against the characters git allows, and each
segment of a path with :func:`~modelzoo.utils.io.safe_file_name`.

Downloads go through huggingface_hub: its cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``)
with its locks, resumed partial files and ``refs/`` that pin a branch to a commit; its
credentials (``HF_TOKEN``, or ``huggingface-cli login``). The environment is read when a
function is called, not when the library was imported:

- ``HF_ENDPOINT``: the Hub (or a mirror) to talk to;
- ``HF_HUB_OFFLINE=1`` (or ``MODELZOO_OFFLINE=1``): no network; what the cache holds for
  the revision is used, anything else raises :class:`~modelzoo.errors.OfflineError`.

A repo's weights load through the zoo's one loader (``modelzoo.transfer.load_pretrained``):
``model.safetensors`` (or a sharded ``model.safetensors.index.json``) is preferred, and only
when a repo has none is ``pytorch_model.bin`` downloaded and read with
``weights_only=True``, so a pickle that asks to run code is refused without running.
Every file is first checked against the content address the Hub gave it when it was
downloaded (the sha256 of an LFS file, the git blob id of a small one; the names of the
cache's blobs), with the result recorded like every verified file of the zoo.

Only the files a model needs are downloaded: ``config.json`` and the weights, which is
what ``create("hf-hub:...")`` reads through :func:`~modelzoo.weights.pretrained.from_pretrained`:
the zoo's layout (``save_pretrained``/``push_to_hub``) or timm's (``architecture``,
``pretrained_cfg``: loaded into the native architecture when the zoo has it, else through
the ``timm/`` bridge).

``push_to_hub`` commits the files :func:`~modelzoo.weights.pretrained.save_pretrained`
writes (the same bytes, from memory) with ``HfApi.create_repo`` and ``HfApi.create_commit``
(weights through LFS or Xet, as the Hub chooses).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from modelzoo.errors import ConfigError, IntegrityError, OfflineError, WeightsError
from modelzoo.utils.io import UnsafeNameError, safe_file_name
from modelzoo.weights.layout import CONFIG_NAME

__all__ = [
    "HUB_PREFIX",
    "HubRef",
    "HubSettings",
    "HubSnapshot",
    "HubModel",
    "PushResult",
    "is_hub_id",
    "parse_hub_id",
    "check_repo_id",
    "hub_settings",
    "download_model",
    "fetch_file",
    "create_from_hub",
    "describe_hub_model",
    "push_to_hub",
]

_logger = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"
# The weights a model repo may hold, in the order the zoo's loader prefers them (as for a
# local folder: safetensors first; a pickle only when there is nothing else).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "model.pth",
    "model.pt",
)
SHARD_INDEX = "model.safetensors.index.json"
_REVISION = re.compile(r"[A-Za-z0-9._\-/]{1,255}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
_TRUE = ("1", "true", "yes", "on")
_LOGIN = (
    "log in with `huggingface-cli login` (or `hf auth login`), or set HF_TOKEN to an access "
    "token (https://huggingface.co/settings/tokens)"
)


# --- ids ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubRef:
    """A checked ``hf-hub:`` id: the repository, and optionally a revision and a file in it."""

    repo_id: str
    revision: str | None = None
    filename: str | None = None

    def __str__(self) -> str:
        text = f"{HUB_PREFIX}{self.repo_id}"
        if self.revision:
            text += "@" + urllib.parse.quote(self.revision, safe="")
        if self.filename:
            text += f"/{self.filename}"
        return text


def is_hub_id(value: object) -> bool:
    """Whether ``value`` is a string that names the Hub (``hf-hub:...``)."""
    return isinstance(value, str) and value.startswith(HUB_PREFIX)


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is an ``org/repo`` id the Hub accepts.

    Raises:
        ConfigError: not ``<org>/<repo>``, or characters the Hub does not allow.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ConfigError(
            f"a Hub repository is named <org>/<repo> (e.g. 'timm/resnet50.a1_in1k'); got "
            f"{repo_id!r}"
        )
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"{repo_id!r} is not a Hub repository id: {err}") from None
    return repo_id


def parse_hub_id(text: str, *, file: bool | None = False) -> HubRef:
    """Check and split ``hf-hub:<org>/<repo>[@<revision>][/<path>]``.

    Args:
        text: the id.
        file: False: no path may follow (a model); True: a path must follow (one file);
            None: either.

    Raises:
        ConfigError: not of that form, or a part that could not name a Hub repository,
            revision or file (the message says which and why). Nothing was downloaded.
    """
    if not is_hub_id(text):
        raise ConfigError(f"a Hub id starts with {HUB_PREFIX!r}; got {text!r}")
    body = text[len(HUB_PREFIX) :]
    match = re.fullmatch(r"([^/@]+)/([^/@]+)(?:@([^/]*))?(?:/(.*))?", body, re.DOTALL)
    form = f"{HUB_PREFIX}<org>/<repo>[@<revision>]" + ("/<file>" if file else "")
    if not match:
        raise ConfigError(
            f"{text!r} is not a Hub id of the form {form} (a revision holding '/' is "
            "percent-encoded: @refs%2Fpr%2F1)"
        )
    org, repo, revision, path = match.groups()
    repo_id = check_repo_id(f"{org}/{repo}")
    if revision is not None:
        revision = urllib.parse.unquote(revision)
        if (
            not _REVISION.fullmatch(revision)
            or ".." in revision
            or revision.startswith("/")
            or revision.endswith(("/", ".lock"))
        ):
            raise ConfigError(
                f"{text!r}: {revision!r} is not a revision (a branch, tag or commit id of "
                "letters, digits, '.', '_', '-' and '/')"
            )
    if path is not None:
        path = _checked_path(path, text)
    if file is True and path is None:
        raise ConfigError(f"{text!r} names no file; expected {form}")
    if file is False and path is not None:
        raise ConfigError(
            f"{text!r} names a file ({path!r}); a model is loaded from its repository, "
            f"{HUB_PREFIX}{repo_id}" + (f"@{revision}" if revision else "")
        )
    return HubRef(repo_id, revision or None, path)


def _checked_path(path: str, text: str) -> str:
    parts = path.split("/")
    try:
        return "/".join(safe_file_name(part) for part in parts)
    except UnsafeNameError as err:
        raise ConfigError(
            f"{text!r}: {path!r} is not a file in a repository ({err}); give its path inside "
            "the repository, e.g. model.safetensors or weights/model.safetensors"
        ) from None


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is, where its cache is, and whether the network may be used."""

    endpoint: str
    cache_dir: Path
    offline: bool
    offline_by: str  # the variable that switched the network off, for messages


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def hub_settings() -> HubSettings:
    """The Hub settings from the environment, read now (see the module docstring).

    Raises:
        ConfigError: ``HF_ENDPOINT`` is not an http(s) URL.
    """
    from huggingface_hub import constants

    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).strip().rstrip("/")
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigError(
            f"HF_ENDPOINT={endpoint!r} is not the base URL of a Hub; e.g. "
            "HF_ENDPOINT=https://huggingface.co"
        )
    if os.environ.get("HF_HUB_CACHE"):
        cache = os.environ["HF_HUB_CACHE"]
    elif os.environ.get("HUGGINGFACE_HUB_CACHE"):
        cache = os.environ["HUGGINGFACE_HUB_CACHE"]
    elif os.environ.get("HF_HOME"):
        cache = os.path.join(os.environ["HF_HOME"], "hub")
    else:
        cache = constants.HF_HUB_CACHE
    offline_by = ""
    if _flag("HF_HUB_OFFLINE"):
        offline_by = "HF_HUB_OFFLINE=1"
    elif _flag("MODELZOO_OFFLINE"):
        offline_by = "MODELZOO_OFFLINE=1"
    elif "HF_HUB_OFFLINE" not in os.environ and constants.is_offline_mode():
        offline_by = "HF_HUB_OFFLINE=1"  # set when huggingface_hub was imported
    path = Path(os.path.expandvars(cache)).expanduser()
    return HubSettings(endpoint, path, bool(offline_by), offline_by)


# --- errors -----------------------------------------------------------------------------------


def _hub_error(err: BaseException, ref: HubRef, settings: HubSettings, what: str) -> Exception:
    """A modelzoo error for a huggingface_hub failure, saying what to do about it."""
    from huggingface_hub import errors as hf

    where = f"{ref.repo_id} on {settings.endpoint}"
    if isinstance(err, hf.GatedRepoError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status == 403:  # logged in, but this account was not granted access
            return WeightsError(
                f"{ref.repo_id} is a gated repository and the token in use has no access to "
                f"it: accept its conditions at {settings.endpoint}/{ref.repo_id} with that "
                f"account (access may need the authors' approval), or {_LOGIN} of an account "
                "that has access"
            )
        return WeightsError(
            f"{ref.repo_id} is a gated repository: its files need an account that accepted "
            f"its conditions. Accept them at {settings.endpoint}/{ref.repo_id}, then {_LOGIN}. "
            f"({_first_line(err)})"
        )
    if isinstance(err, hf.RevisionNotFoundError):
        return WeightsError(
            f"{ref.repo_id} has no revision {ref.revision!r} on {settings.endpoint}; give a "
            f"branch, tag or commit of the repository ({HUB_PREFIX}{ref.repo_id}@<revision>), "
            "or none for main"
        )
    if isinstance(err, hf.RepositoryNotFoundError):
        return WeightsError(
            f"no repository {where} (or it is private and you are not logged in): check the "
            f"name, or, if it is private, {_LOGIN}"
        )
    if isinstance(err, (hf.RemoteEntryNotFoundError, hf.EntryNotFoundError)) and not isinstance(
        err, hf.LocalEntryNotFoundError
    ):
        return WeightsError(f"{ref.repo_id} has no file {what} ({_first_line(err)})")
    if isinstance(err, hf.HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status == 401:
            return WeightsError(f"{where} refused the request: not logged in; {_LOGIN}")
        if status == 403:
            return WeightsError(
                f"{where}: your token may not do this (HTTP 403; a read-only token cannot "
                f"push, and a gated repo needs its conditions accepted); {_LOGIN} with a token "
                "that has access"
            )
        return WeightsError(f"{where}: {what} failed: {_first_line(err)}")
    if isinstance(err, hf.LocalEntryNotFoundError):
        if settings.offline:
            return OfflineError(
                f"{what} of {ref} is not in the Hugging Face cache {settings.cache_dir}, and "
                f"{settings.offline_by} forbids downloading it; load it once with the network "
                f"on (or unset {settings.offline_by.split('=')[0]})"
            )
        return WeightsError(
            f"cannot reach {settings.endpoint} for {ref}, and the cache "
            f"{settings.cache_dir} does not hold it: check the connection (or HF_ENDPOINT). "
            f"({_first_line(err)})"
        )
    if isinstance(err, _transport_errors()):
        return WeightsError(
            f"cannot reach {settings.endpoint} ({_first_line(err)}) for {what} of {ref}: check "
            "the connection (or HF_ENDPOINT)"
        )
    if isinstance(err, OSError):
        return WeightsError(
            f"cannot write {what} of {ref} into the Hugging Face cache {settings.cache_dir} "
            f"({err.strerror or err}); set HF_HUB_CACHE (or HF_HOME) to a writable folder"
        )
    return WeightsError(f"{what} of {ref} failed: {_first_line(err)}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's connection errors: httpx2 (huggingface_hub 2), httpx (1), requests."""
    import importlib

    found: list[type[BaseException]] = []
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests.exceptions", "ConnectionError"),
        ("requests.exceptions", "Timeout"),
    ):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors as hf

    return (hf.HfHubHTTPError, hf.EntryNotFoundError, OSError, *_transport_errors())


# --- downloading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSnapshot:
    """A model's files from a repo at one commit, in huggingface_hub's cache.

    Attributes:
        ref: the id asked for.
        commit: the commit the files come from.
        folder: the cache's snapshot folder of that commit (what ``from_pretrained`` reads).
        files: the files fetched and verified (``config.json``, the weights).
    """

    ref: HubRef
    commit: str
    folder: Path
    files: tuple[str, ...]

    @property
    def label(self) -> str:
        """The id pinned to the commit: ``hf-hub:org/repo@<commit>`` (loads the same files)."""
        return str(HubRef(self.ref.repo_id, self.commit))


def _api(settings: HubSettings, token: str | None = None) -> Any:
    from huggingface_hub import HfApi

    from modelzoo import __version__

    return HfApi(
        endpoint=settings.endpoint,
        token=token,
        library_name="modelzoo",
        library_version=__version__,
    )


def _model_files(names: set[str], ref: HubRef) -> list[str]:
    """``config.json`` (when there) and the one weights file the loader would pick."""
    chosen = [CONFIG_NAME] if CONFIG_NAME in names else []
    for candidate in WEIGHT_FILES:
        if candidate in names:
            return [*chosen, candidate]
    shown = ", ".join(sorted(names)[:20]) or "nothing"
    raise WeightsError(
        f"{ref} holds no weights the zoo reads ({', '.join(WEIGHT_FILES)}); it has: {shown}"
    )


def download_model(hub_id: str | HubRef) -> HubSnapshot:
    """Download (or find in the cache) the files a model needs from a Hub repo, verified.

    Online, the repo's file list is read (``HfApi.model_info``) and only ``config.json``
    and the preferred weights are fetched (``snapshot_download``, which records the branch's
    commit in the cache); offline, or when the Hub cannot be reached, the cached snapshot of
    the revision is used.

    Raises:
        ConfigError: a malformed id.
        WeightsError: no such repo, revision or weights; a gated or private repo without
            access (the message says how to log in); the network unreachable.
        OfflineError: offline and the cache does not hold the files.
        IntegrityError: a cached file differs from its content address.
    """
    from huggingface_hub import snapshot_download

    ref = hub_id if isinstance(hub_id, HubRef) else parse_hub_id(hub_id)
    settings = hub_settings()
    common = {
        "repo_id": ref.repo_id,
        "revision": ref.revision,
        "cache_dir": settings.cache_dir,
        "endpoint": settings.endpoint,
    }
    try:
        if settings.offline:
            folder, wanted = _cached_snapshot(ref, common)
        else:
            try:
                info = _api(settings).model_info(ref.repo_id, revision=ref.revision)
            except _unreachable() as err:
                # As huggingface_hub does: without the Hub, what the cache holds still loads.
                _logger.warning(
                    "cannot reach %s (%s); loading %s from the cache",
                    settings.endpoint,
                    _first_line(err),
                    ref,
                )
                try:
                    folder, wanted = _cached_snapshot(ref, common)
                except _hub_errors() as cache_err:
                    raise WeightsError(
                        f"cannot reach {settings.endpoint} for {ref} ({_first_line(err)}), and "
                        f"the Hugging Face cache {settings.cache_dir} does not hold it: check the "
                        "connection (or HF_ENDPOINT)"
                    ) from cache_err
            else:
                wanted = _model_files({s.rfilename for s in info.siblings or ()}, ref)
                if wanted[-1] == SHARD_INDEX:
                    wanted += _shard_names(_download_index(ref, info.sha, settings), ref)
                folder = Path(snapshot_download(**common, allow_patterns=wanted))
    except WeightsError:
        raise
    except _hub_errors() as err:
        raise _hub_error(err, ref, settings, "the model files") from None
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        raise WeightsError(
            f"{ref}: {', '.join(missing)} did not arrive in {folder} (the repository may have "
            "changed while downloading); load it again"
        )
    for name in wanted:
        _verify(folder / name, ref)
    _logger.info("%s: %s at commit %s", ref, ", ".join(wanted), folder.name)
    return HubSnapshot(ref, folder.name, folder, tuple(wanted))


def _unreachable() -> tuple[type[BaseException], ...]:
    """Errors that mean the Hub could not be reached (as opposed to a refusal)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    return (OfflineModeIsEnabled, *_transport_errors())


def _cached_snapshot(ref: HubRef, common: dict[str, Any]) -> tuple[Path, list[str]]:
    """The cached snapshot of the revision, and the model files it holds."""
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(**common, local_files_only=True, allow_patterns=[]))
    wanted = _model_files({p.name for p in folder.iterdir()}, ref)
    if wanted[-1] == SHARD_INDEX:
        wanted += _shard_names(folder / SHARD_INDEX, ref)
    return folder, wanted


def _download_index(ref: HubRef, commit: str | None, settings: HubSettings) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(
        hf_hub_download(
            ref.repo_id,
            SHARD_INDEX,
            revision=commit or ref.revision,
            cache_dir=settings.cache_dir,
            endpoint=settings.endpoint,
        )
    )


def _shard_names(index: Path, ref: HubRef) -> list[str]:
    """The shards a ``model.safetensors.index.json`` lists, each a bare file name."""
    import json

    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise WeightsError(f"{ref}: {SHARD_INDEX} is not a valid shard index ({err})") from None
    try:
        return [safe_file_name(str(shard)) for shard in shards]
    except UnsafeNameError as err:
        raise WeightsError(
            f"{ref}: {SHARD_INDEX} lists a shard that is not a file next to it ({err}); the "
            "index is corrupt or hostile, nothing else was downloaded"
        ) from None


def fetch_file(
    hub_id: str | HubRef,
    *,
    sha256: str | None = None,
    size: int | None = None,
) -> Path:
    """One file of a Hub repo, downloaded through huggingface_hub (or from its cache), verified.

    Args:
        hub_id: ``hf-hub:<org>/<repo>[@<revision>]/<path>``.
        sha256: the expected digest (or a published prefix of 8+ hex digits), checked too.
        size: the expected size in bytes, checked too.

    Returns:
        The file's path in the cache's snapshot folder.

    Raises:
        ConfigError: a malformed id. WeightsError, OfflineError, IntegrityError: as
        :func:`download_model`.
    """
    from huggingface_hub import hf_hub_download

    ref = hub_id if isinstance(hub_id, HubRef) else parse_hub_id(hub_id, file=True)
    if ref.filename is None:
        raise ConfigError(f"{ref} names no file")
    settings = hub_settings()
    try:
        path = Path(
            hf_hub_download(
                ref.repo_id,
                ref.filename,
                revision=ref.revision,
                cache_dir=settings.cache_dir,
                endpoint=settings.endpoint,
                local_files_only=settings.offline,
            )
        )
    except _hub_errors() as err:
        raise _hub_error(err, ref, settings, repr(ref.filename)) from None
    _verify(path, ref)
    if sha256 or size:
        from modelzoo.weights.download import fetch

        fetch(path, sha256=sha256, size=size)
    return path


def _verify(path: Path, ref: HubRef) -> None:
    """Check a cached file against the content address its blob is named by.

    huggingface_hub names each blob by the ETag the Hub sent: the sha256 of an LFS file,
    the git blob id of a small one. A file that does not hash to its name was damaged in
    the cache or in transit.
    """
    blob = path.resolve()
    name = blob.name
    if _SHA256.fullmatch(name):
        from modelzoo.weights.download import fetch

        try:
            fetch(path, sha256=name)  # recorded, so the next load does not hash it again
        except IntegrityError as err:
            raise IntegrityError(
                f"{ref}: the cached {path.name} does not match the sha256 the Hub gave it "
                f"({err}); delete {blob} (or run `huggingface-cli delete-cache`) and load again"
            ) from None
    elif _GIT_SHA1.fullmatch(name):
        data = blob.read_bytes()
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() != name:
            raise IntegrityError(
                f"{ref}: the cached {path.name} does not match the git blob id the Hub gave "
                f"it ({name}); delete {blob} (or run `huggingface-cli delete-cache`) and load "
                "again"
            )
    else:  # a cache without symlinks (Windows) keeps no content address to check against
        _logger.debug("%s: no content address to check %s against", ref, path)


# --- models -----------------------------------------------------------------------------------


def create_from_hub(
    name: str,
    *,
    pretrained: Any = False,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    strict: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """What ``modelzoo.create`` does with a Hub id (as the name or as ``pretrained``).

    Args:
        name: ``hf-hub:org/repo[@rev]`` (the repo's ``config.json`` says the architecture),
            or an architecture when ``pretrained`` is the Hub id.
        pretrained: with a Hub name, False or True (the repo's weights either way); else the
            Hub id whose weights are loaded into ``name``: a repo (its preferred weights),
            or one file of it, ``hf-hub:org/repo[@rev]/<file>``.
        features_only, out_indices, strict, **kwargs: as for ``create``. With a Hub name,
            ``kwargs`` override the repo's builder arguments (the head is re-initialized
            for another ``num_classes``, the first convolution adapted for ``in_chans``);
            with an architecture, the repo's arguments for that architecture are the defaults.

    Returns:
        The model, with ``load_report`` (its ``source`` the id pinned to the commit) and,
        when the repo records its preprocessing, ``pretrained_cfg``.
    """
    from modelzoo.weights.pretrained import from_pretrained, read_pretrained_config

    options: dict[str, Any] = dict(kwargs)
    if features_only:
        options.update(features_only=True, out_indices=out_indices)
    elif out_indices is not None:
        raise ConfigError("out_indices only applies with features_only=True")
    if is_hub_id(name):
        if pretrained not in (False, True, None, name):
            raise ConfigError(
                f"{name!r} loads that repo's weights; pretrained={pretrained!r} would name "
                "others. Pass one of them"
            )
        return from_pretrained(name, strict=True if strict else None, **options)

    import modelzoo
    from modelzoo.registry import split_name

    if split_name(name)[1] is not None:
        raise ConfigError(
            f"{name!r} names a weight set and pretrained={pretrained!r} a Hub repo; pass one "
            "of them"
        )
    ref = parse_hub_id(pretrained, file=None)
    if ref.filename is not None:  # one weights file of a repo: no config.json to consult
        path = fetch_file(ref)
        model = modelzoo.create(name, pretrained=str(path), strict=strict, **options)
        _relabel(model, features_only, str(ref), None)
        return model
    snapshot = download_model(ref)
    conf = read_pretrained_config(snapshot.folder) if CONFIG_NAME in snapshot.files else None
    if conf is not None and conf.name == name:
        # The repo's builder arguments for this architecture, under the caller's.
        options = {**conf.kwargs, **options}
    model = modelzoo.create(name, pretrained=str(snapshot.folder), strict=strict, **options)
    _relabel(model, features_only, snapshot.label, conf.resolved_cfg(kwargs) if conf else None)
    return model


def _relabel(model: nn.Module, features: bool, label: str, cfg: dict[str, Any] | None) -> None:
    """Name the Hub id as the weights' source, and attach the repo's preprocessing."""
    import dataclasses

    inner = getattr(model, "model", None) if features else None
    for target in (model, inner):
        if not isinstance(target, nn.Module):
            continue
        report = getattr(target, "load_report", None)
        if report is not None:
            target.load_report = dataclasses.replace(report, source=label)
        if cfg is not None:
            target.pretrained_cfg = cfg


@dataclass(frozen=True)
class HubModel:
    """What a Hub repo holds, read from its ``config.json`` without building the model.

    Attributes:
        arch: what ``create`` builds (a registered name, or ``timm/<arch>``).
        hub_id: the id pinned to the commit the files came from.
        model_kwargs: the builder arguments recorded.
        facts: the card's facts for a fine-tune's card: ``name`` (``hub_id``),
            ``license``, ``metrics``, ``description``, ``source`` when recorded.
        recipe: the recipe that trained the weights, when recorded.
        input_spec: the card's input spec, when recorded.
    """

    arch: str
    hub_id: str
    model_kwargs: dict[str, Any]
    facts: dict[str, Any]
    recipe: dict[str, Any] | None = None
    input_spec: dict[str, Any] | None = None


def describe_hub_model(hub_id: str) -> HubModel:
    """Download a repo's model files (see :func:`download_model`) and say what they hold.

    Raises:
        WeightsError: as :func:`download_model`; or the repo has no ``config.json`` naming
            its architecture (then pass one: ``create('<arch>', pretrained='hf-hub:...')``).
    """
    from modelzoo.weights.pretrained import read_pretrained_config

    snapshot = download_model(hub_id)
    if CONFIG_NAME not in snapshot.files:
        raise WeightsError(
            f"{snapshot.ref} has no {CONFIG_NAME} naming its architecture; load its weights into "
            f"one you name: create('<arch>', pretrained='{snapshot.ref}')"
        )
    conf = read_pretrained_config(snapshot.folder)
    card = conf.card
    facts: dict[str, Any] = {"name": snapshot.label}
    for key in ("license", "metrics", "description", "source"):
        if card.get(key):
            facts[key] = card[key]
    if "license" not in facts and isinstance(conf.pretrained_cfg, dict):
        if isinstance(conf.pretrained_cfg.get("license"), str):
            facts["license"] = conf.pretrained_cfg["license"]
    recipe = card.get("recipe") if isinstance(card.get("recipe"), dict) else None
    spec = card.get("input_spec") if isinstance(card.get("input_spec"), dict) else None
    return HubModel(conf.name, snapshot.label, dict(conf.kwargs), facts, recipe, spec)


# --- pushing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    """What ``push_to_hub`` uploaded.

    Attributes:
        repo_id: the repository.
        revision: the branch committed to.
        commit: the new commit's id (``create("hf-hub:<repo_id>@<commit>")`` loads exactly it).
        url: the commit's page.
        files: the files in the commit.
    """

    repo_id: str
    revision: str
    commit: str
    url: str
    files: tuple[str, ...]

    @property
    def hub_id(self) -> str:
        """``hf-hub:<repo_id>@<commit>``."""
        return str(HubRef(self.repo_id, self.commit))

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "url": self.url,
            "files": list(self.files),
            "hub_id": self.hub_id,
        }


def push_to_hub(
    model_or_dir: nn.Module | str | os.PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    license: str | None = None,  # noqa: A002 - the Hub's and the card's word
    card: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> PushResult:
    """Upload a model, a run directory or a model folder to a Hub repo, with its model card.

    The files committed are what :func:`~modelzoo.weights.pretrained.save_pretrained` writes
    for the same arguments (``config.json``, ``model.safetensors``, ``README.md``), so
    ``save_pretrained(x, folder, repo_id=repo_id)`` gives the same bytes locally.

    Args:
        model_or_dir: a model made by ``modelzoo.create``; a run directory (its evaluated
            weights, recipe and test metrics; an RL run's policy with its environment and
            observation statistics); or a ``save_pretrained``/``modelzoo finetune`` folder.
        repo_id: ``<org>/<repo>``; created (``private`` as asked) when it does not exist.
        revision: the branch to commit to (created from main when missing); default main.
        private: visibility of a repo this call creates (default: the Hub's).
        commit_message: default ``"Upload <model> with modelzoo"``.
        license: the weights' licence (an SPDX id such as ``"bsd-3-clause"``), for the card.
        card: further card facts (see ``save_pretrained``).
        token: a Hub token with write access; default ``HF_TOKEN`` or the stored login.

    Returns:
        A :class:`PushResult` naming the commit.

    Raises:
        ConfigError: a malformed repo id or revision, or nothing to push at the path.
        OfflineError: ``HF_HUB_OFFLINE=1``/``MODELZOO_OFFLINE=1``.
        WeightsError: not logged in or no write access (the message says how to log in),
            or the Hub refused the upload.
    """
    from huggingface_hub import CommitOperationAdd

    from modelzoo.weights.pretrained import pretrained_files

    check_repo_id(repo_id)
    ref = HubRef(repo_id, revision)
    if revision is not None:
        parse_hub_id(str(ref))  # the same revision rules as for reading
    settings = hub_settings()
    if settings.offline:
        raise OfflineError(
            f"pushing to {repo_id} needs the network, but {settings.offline_by} forbids it; "
            f"unset {settings.offline_by.split('=')[0]}"
        )
    facts = dict(card or {})
    if license is not None:
        facts["license"] = license
    # The bytes save_pretrained would write, committed from memory: the same files, and no
    # staging folder to clean up.
    files = pretrained_files(model_or_dir, card=facts, repo_id=repo_id)
    name = re.search(rb'"model_name": "([^"]+)"', files[CONFIG_NAME])
    model_name = name.group(1).decode() if name else "model"
    api = _api(settings, token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        operations = [
            CommitOperationAdd(path_in_repo=n, path_or_fileobj=b) for n, b in files.items()
        ]
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload {model_name} with modelzoo",
            revision=revision,
        )
    except _hub_errors() as err:
        raise _hub_error(err, ref, settings, "the upload") from None
    commit = str(getattr(info, "oid", "") or "")
    url = str(getattr(info, "commit_url", "") or "")
    _logger.info("pushed %s to %s (%s)", ", ".join(files), repo_id, url)
    return PushResult(repo_id, revision or "main", commit, url, tuple(sorted(files)))
