"""A loopback stand-in for the Hugging Face Hub, speaking the endpoints ``huggingface_hub`` calls.

It keeps model repositories in memory (commits, branches, files, LFS objects) and answers
the requests the client library makes, so the zoo's Hub code is tested through the real
client without the network:

Reading (``HfApi.model_info``, ``snapshot_download``, ``hf_hub_download``):

- ``GET /api/models/{repo}[/revision/{rev}]``: the model info (``sha``, ``siblings``,
  ``gated``, ``private``, ``library_name`` and ``tags`` from the README's front matter);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the file listing (``oid``, ``size``, and
  ``lfs`` for LFS files);
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: a regular file is served with ``ETag`` (its
  git blob id), ``X-Repo-Commit`` and ``Content-Length``; an LFS file answers ``302`` to a
  second "CDN" server (another origin, as the Hub's storage is), with ``X-Linked-Etag`` (the
  sha256), ``X-Linked-Size`` and ``X-Repo-Commit``.

Errors carry ``X-Error-Code`` as the Hub's do: ``RepoNotFound`` (404; 401 for a private
repository without a token), ``RevisionNotFound``, ``EntryNotFound`` (with ``X-Repo-Commit``)
and ``GatedRepo`` (401 without a token, 403 with a token that was not granted access).

Writing (``HfApi.create_repo``, ``create_branch``, ``upload_folder`` / ``create_commit`` with
the LFS transfer; Xet is switched off by the tests, since the stand-in has no Xet storage):

- ``POST /api/repos/create``, ``POST /api/models/{repo}/branch/{branch}``;
- ``POST /api/validate-yaml``: the README's front matter is checked (``license`` among the
  Hub's identifiers, ``tags`` a list of strings, ``library_name`` a string);
- ``POST /api/models/{repo}/preupload/{rev}``: ``lfs`` for weights and binary files,
  ``regular`` for text; the ``oid`` of the file already there, so unchanged files are skipped;
- ``POST /{repo}.git/info/lfs/objects/batch``, ``PUT`` of the object (checked against its
  sha256 and size), ``POST`` of the verify action;
- ``POST /api/models/{repo}/commit/{rev}``: the NDJSON commit (``header``, ``file`` with
  base64 content, ``lfsFile`` naming an uploaded object).

Writes need ``Authorization: Bearer <token>`` with a token registered as a writer. Every
request is logged (method, path, status, whether it carried a token), so tests can check
what was and was not asked for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

__all__ = ["HubServer", "HubRepo", "git_blob_id", "start_hub"]

_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".onnx", ".msgpack")
_LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files of 10 MB and more with LFS
# Licence identifiers the Hub's metadata validation accepts (a subset of its list).
_HUB_LICENSES = frozenset(
    "apache-2.0 mit bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear cc0-1.0 cc-by-4.0 "
    "cc-by-sa-4.0 cc-by-nc-4.0 cc-by-nc-sa-4.0 cc-by-nd-4.0 gpl-2.0 gpl-3.0 lgpl-3.0 agpl-3.0 "
    "mpl-2.0 openrail unlicense llama2 llama3 gemma unknown other".split()
)
_COMMIT = re.compile(r"[0-9a-f]{40}")


def git_blob_id(data: bytes) -> str:
    """The git object id of a file's content (what the Hub's ETag is for a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


@dataclass
class _Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, bytes]  # path -> content (LFS content too; the pointer is derived)
    lfs: frozenset[str]  # the paths stored with LFS


@dataclass
class HubRepo:
    """A model repository: its commits and branches, and who may read it."""

    repo_id: str
    private: bool = False
    gated: bool = False
    granted: set[str] = field(default_factory=set)  # tokens with access to a gated repo
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit oid

    def resolve(self, revision: str) -> _Commit | None:
        """The commit a branch name or a full commit id names."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if _COMMIT.fullmatch(revision):
            return self.commits.get(revision)
        return None

    def commit(
        self,
        files: dict[str, bytes],
        *,
        branch: str = "main",
        message: str = "update",
        deleted: tuple[str, ...] = (),
        lfs: tuple[str, ...] | None = None,
    ) -> str:
        """Add a commit on ``branch`` that writes ``files`` over its parent's; its oid."""
        parent_oid = self.branches.get(branch)
        parent = self.commits[parent_oid] if parent_oid else None
        merged = dict(parent.files) if parent else {}
        merged.update(files)
        for path in deleted:
            merged.pop(path, None)
        stored_lfs = set(parent.lfs) if parent else set()
        for path, data in files.items():
            if (lfs is not None and path in lfs) or (lfs is None and _is_lfs(path, data)):
                stored_lfs.add(path)
            else:
                stored_lfs.discard(path)
        digest = hashlib.sha1()
        digest.update(f"{parent_oid}\n{message}\n{len(self.commits)}\n".encode())
        for path in sorted(merged):
            digest.update(f"{path}\0{git_blob_id(merged[path])}\n".encode())
        oid = digest.hexdigest()
        self.commits[oid] = _Commit(oid, parent_oid, message, merged, frozenset(stored_lfs))
        self.branches[branch] = oid
        return oid


def _is_lfs(path: str, data: bytes) -> bool:
    return path.endswith(_LFS_SUFFIXES) or len(data) >= _LFS_THRESHOLD or b"\0" in data[:8000]


@dataclass
class HubServer:
    """The stand-in's state: repositories, LFS objects, tokens, and the request log."""

    endpoint: str = ""
    cdn: str = ""
    repos: dict[str, HubRepo] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    writers: set[str] = field(default_factory=set)  # tokens that may create repos and commit
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        private: bool = False,
        gated: bool = False,
        message: str = "initial commit",
    ) -> str:
        """Create a repository holding ``files`` on ``main``; the commit's oid."""
        with self.lock:
            repo = HubRepo(repo_id, private=private, gated=gated)
            self.repos[repo_id] = repo
            return repo.commit(files, message=message)

    def requests(self, method: str | None = None, contains: str = "") -> list[dict[str, Any]]:
        """The logged requests, optionally of one method and whose path holds ``contains``."""
        with self.lock:
            return [
                r
                for r in self.log
                if (method is None or r["method"] == method) and contains in r["path"]
            ]

    def unexpected(self) -> list[dict[str, Any]]:
        """Requests that matched no endpoint (the client asked for something the Hub lacks)."""
        return [r for r in self.requests() if r.get("unhandled")]


class _Reply(Exception):
    """An HTTP answer raised from deep in a handler (errors, mostly)."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, code: str | None, message: str, **headers: str) -> _Reply:
    extra = dict(headers)
    if code:
        extra["X-Error-Code"] = code
    extra["X-Error-Message"] = message
    return _Reply(status, {"error": message}, extra)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubServer
    is_cdn: bool = False

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    # --- plumbing --------------------------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, then the empty line
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None

    def _send(self, status: int, body: Any, headers: dict[str, str], head: bool) -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **headers}
        else:
            data = body or b""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)
        self.wfile.flush()

    def _handle(self, method: str) -> None:
        state = self.state
        split = urllib.parse.urlsplit(self.path)
        record: dict[str, Any] = {
            "method": method,
            "path": split.path,
            "query": split.query,
            "token": self._token(),
            "cdn": self.is_cdn,
        }
        with state.lock:
            state.log.append(record)
        body = self._body() if method in ("POST", "PUT") else b""
        try:
            route = _cdn_route if self.is_cdn else _route
            status, payload, headers = route(self, method, split, body)
        except _Reply as reply:
            status, payload, headers = reply.status, reply.body, reply.headers
        record["status"] = status
        if status == 404 and "X-Error-Code" not in headers:
            record["unhandled"] = True
        self._send(status, payload, headers, head=method == "HEAD")

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")


Answer = tuple[int, Any, dict[str, str]]


def _segments(path: str) -> list[str]:
    return [urllib.parse.unquote(s) for s in path.strip("/").split("/")]


def _route(h: _Handler, method: str, split: urllib.parse.SplitResult, body: bytes) -> Answer:
    parts = _segments(split.path)
    query = dict(urllib.parse.parse_qsl(split.query))
    if parts[:2] == ["api", "agent-harnesses"] and method == "GET":
        return 200, {"standardEnvVars": [], "harnesses": {}}, {}  # the client's user-agent registry
    if parts[:2] == ["api", "validate-yaml"] and method == "POST":
        return _validate_yaml(json.loads(body))
    if parts[:3] == ["api", "repos", "create"] and method == "POST":
        return _create_repo(h, json.loads(body))
    if len(parts) >= 4 and parts[:2] == ["api", "models"]:
        repo_id, rest = f"{parts[2]}/{parts[3]}", parts[4:]
        if not rest and method == "GET":
            return _model_info(h, repo_id, "main", query)
        if rest[:1] == ["revision"] and len(rest) >= 2 and method == "GET":
            return _model_info(h, repo_id, "/".join(rest[1:]), query)
        if rest[:1] == ["tree"] and len(rest) >= 2 and method == "GET":
            return _tree(h, repo_id, rest[1], "/".join(rest[2:]))
        if rest[:1] == ["preupload"] and len(rest) == 2 and method == "POST":
            return _preupload(h, repo_id, rest[1], json.loads(body))
        if rest[:1] == ["commit"] and len(rest) == 2 and method == "POST":
            return _commit(h, repo_id, rest[1], body)
        if rest[:1] == ["branch"] and len(rest) == 2 and method == "POST":
            return _create_branch(h, repo_id, rest[1], json.loads(body or b"{}"))
    if (
        len(parts) >= 2
        and parts[1].endswith(".git")
        and parts[2:]
        == [
            "info",
            "lfs",
            "objects",
            "batch",
        ]
    ):
        return _lfs_batch(h, f"{parts[0]}/{parts[1][: -len('.git')]}", json.loads(body))
    if parts[:1] == ["lfs-upload"] and len(parts) == 2 and method == "PUT":
        return _lfs_put(h, parts[1], body)
    if parts[:1] == ["lfs-verify"] and len(parts) == 2 and method == "POST":
        return _lfs_verify(h, parts[1], json.loads(body))
    if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
        return _resolve(h, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), method)
    return 404, {"error": f"no endpoint {method} {split.path}"}, {}


# --- reading ---------------------------------------------------------------------------------


def _readable_repo(h: _Handler, repo_id: str) -> HubRepo:
    repo = h.state.repos.get(repo_id)
    if repo is None:
        raise _error(404, "RepoNotFound", "Repository not found")
    if repo.private and h._token() not in h.state.writers:
        raise _error(401, "RepoNotFound", "Invalid username or password.")
    return repo


def _commit_of(repo: HubRepo, revision: str) -> _Commit:
    commit = repo.resolve(revision)
    if commit is None:
        raise _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    return commit


def _front_matter(commit: _Commit) -> dict[str, Any]:
    readme = commit.files.get("README.md", b"").decode("utf-8", "replace")
    match = re.match(r"^---\n(.*?)\n---\n", readme, re.DOTALL)
    if not match:
        return {}
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else {}


def _model_info(h: _Handler, repo_id: str, revision: str, query: dict[str, str]) -> Answer:
    repo = _readable_repo(h, repo_id)
    commit = _commit_of(repo, revision)
    card = _front_matter(commit)
    siblings = []
    for path in sorted(commit.files):
        entry: dict[str, Any] = {"rfilename": path}
        if query.get("blobs") in ("True", "true", "1"):
            blob = _tree_entry(commit, path)
            entry["size"], entry["blobId"] = blob["size"], blob["oid"]
            if "lfs" in blob:
                entry["lfs"] = {
                    "sha256": blob["lfs"]["oid"],
                    "size": blob["lfs"]["size"],
                    "pointerSize": blob["lfs"]["pointerSize"],
                }
        siblings.append(entry)
    info = {
        "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
        "id": repo_id,
        "modelId": repo_id,
        "author": repo_id.split("/")[0],
        "sha": commit.oid,
        "lastModified": "2024-01-01T00:00:00.000Z",
        "private": repo.private,
        "gated": "manual" if repo.gated else False,
        "disabled": False,
        "tags": list(card.get("tags") or []),
        "library_name": card.get("library_name"),
        "pipeline_tag": card.get("pipeline_tag"),
        "cardData": card or None,
        "siblings": siblings,
    }
    return 200, info, {}


def _tree_entry(commit: _Commit, path: str) -> dict[str, Any]:
    data = commit.files[path]
    if path in commit.lfs:
        pointer = _lfs_pointer(hashlib.sha256(data).hexdigest(), len(data))
        return {
            "type": "file",
            "path": path,
            "oid": git_blob_id(pointer),
            "size": len(data),
            "lfs": {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": len(pointer),
            },
        }
    return {"type": "file", "path": path, "oid": git_blob_id(data), "size": len(data)}


def _tree(h: _Handler, repo_id: str, revision: str, prefix: str) -> Answer:
    repo = _readable_repo(h, repo_id)
    commit = _commit_of(repo, revision)
    paths = [
        p for p in sorted(commit.files) if not prefix or p.startswith(prefix.rstrip("/") + "/")
    ]
    return 200, [_tree_entry(commit, p) for p in paths], {}


def _resolve(h: _Handler, repo_id: str, revision: str, path: str, method: str) -> Answer:
    repo = _readable_repo(h, repo_id)
    commit = _commit_of(repo, revision)
    if repo.gated and h._token() not in repo.granted:
        status = 403 if h._token() else 401
        raise _error(
            status,
            "GatedRepo",
            f"Access to model {repo_id} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.",
        )
    if path not in commit.files:
        raise _error(
            404, "EntryNotFound", f"{path} does not exist", **{"X-Repo-Commit": commit.oid}
        )
    data = commit.files[path]
    base = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
    if path in commit.lfs:
        sha = hashlib.sha256(data).hexdigest()
        h.state.lfs_objects.setdefault(sha, data)
        pointer = _lfs_pointer(sha, len(data))
        headers = {
            **base,
            "Location": f"{h.state.cdn}/lfs/{sha}",
            "ETag": f'"{git_blob_id(pointer)}"',
            "X-Linked-Etag": f'"{sha}"',
            "X-Linked-Size": str(len(data)),
        }
        return 302, b"", headers
    headers = {**base, "ETag": f'"{git_blob_id(data)}"', "Content-Length": str(len(data))}
    return 200, data, headers


def _cdn_route(h: _Handler, method: str, split: urllib.parse.SplitResult, body: bytes) -> Answer:
    parts = _segments(split.path)
    if parts[:1] != ["lfs"] or len(parts) != 2 or method not in ("GET", "HEAD"):
        return 404, {"error": "not found"}, {}
    data = h.state.lfs_objects.get(parts[1])
    if data is None:
        return 404, {"error": "no such object"}, {}
    start = 0
    match = re.match(r"bytes=(\d+)-$", h.headers.get("Range") or "")
    headers = {"ETag": f'"{parts[1]}"', "Accept-Ranges": "bytes"}
    if match and int(match.group(1)) < len(data):
        start = int(match.group(1))
        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return 206, data[start:], {**headers, "Content-Length": str(len(data) - start)}
    return 200, data, {**headers, "Content-Length": str(len(data))}


# --- writing ---------------------------------------------------------------------------------


def _writer(h: _Handler) -> None:
    token = h._token()
    if token is None:
        raise _error(401, None, "You must be logged in to write to the Hub.")
    if token not in h.state.writers:
        raise _error(401, None, "Invalid credentials in Authorization header")


def _writable_repo(h: _Handler, repo_id: str) -> HubRepo:
    _writer(h)
    repo = h.state.repos.get(repo_id)
    if repo is None:
        raise _error(404, "RepoNotFound", "Repository not found")
    return repo


def _validate_yaml(payload: dict[str, Any]) -> Answer:
    content = payload.get("content", "")
    match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
    errors: list[dict[str, str]] = []
    if not match:
        return 200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}, {}
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as err:
        return 400, {"errors": [{"message": f"invalid YAML: {err}"}]}, {}
    if not isinstance(data, dict):
        errors.append({"message": "metadata must be a YAML mapping"})
        data = {}
    license_ = data.get("license")
    if license_ is not None and license_ not in _HUB_LICENSES:
        errors.append({"message": f'"license" must be a Hub licence identifier, got {license_!r}'})
    if license_ == "other" and not data.get("license_name"):
        errors.append({"message": '"license_name" is required when "license" is "other"'})
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append({"message": '"tags" must be a list of strings'})
    if "library_name" in data and not isinstance(data["library_name"], str):
        errors.append({"message": '"library_name" must be a string'})
    if errors:
        return 400, {"errors": errors}, {"X-Error-Message": "Invalid metadata"}
    return 200, {"errors": [], "warnings": []}, {}


def _create_repo(h: _Handler, payload: dict[str, Any]) -> Answer:
    _writer(h)
    repo_id = f"{payload.get('organization')}/{payload['name']}"
    if payload.get("type", "model") != "model":
        raise _error(400, None, "the stand-in Hub holds model repositories only")
    with h.state.lock:
        if repo_id in h.state.repos:  # the Hub names the existing repo's url in the 409
            url = f"{h.state.endpoint}/{repo_id}"
            raise _Reply(409, {"error": "You already created this model repo", "url": url})
        repo = HubRepo(repo_id, private=payload.get("visibility") == "private")
        repo.commit({".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
        h.state.repos[repo_id] = repo
    return 200, {"url": f"{h.state.endpoint}/{repo_id}", "name": repo_id}, {}


def _create_branch(h: _Handler, repo_id: str, branch: str, payload: dict[str, Any]) -> Answer:
    repo = _writable_repo(h, repo_id)
    if branch in repo.branches:
        raise _error(409, None, f"Reference already exists: refs/heads/{branch}")
    start = _commit_of(repo, payload.get("startingPoint") or "main")
    repo.branches[branch] = start.oid
    return 200, {}, {}


def _preupload(h: _Handler, repo_id: str, revision: str, payload: dict[str, Any]) -> Answer:
    repo = _writable_repo(h, repo_id)
    commit = repo.resolve(revision)
    answers = []
    for item in payload["files"]:
        sample = base64.b64decode(item["sample"])
        lfs = (
            item["path"].endswith(_LFS_SUFFIXES)
            or item["size"] >= _LFS_THRESHOLD
            or (b"\0" in sample)
        )
        oid = None
        if commit is not None and item["path"] in commit.files:
            existing = commit.files[item["path"]]
            if item["path"] in commit.lfs:
                oid = hashlib.sha256(existing).hexdigest()
            else:
                oid = git_blob_id(existing)
        answers.append(
            {
                "path": item["path"],
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
                "oid": oid,
            }
        )
    return 200, {"files": answers, "commitOid": commit.oid if commit else None}, {}


def _lfs_batch(h: _Handler, repo_id: str, payload: dict[str, Any]) -> Answer:
    _writable_repo(h, repo_id)
    if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", []):
        raise _error(400, None, "the stand-in Hub takes basic LFS uploads only")
    objects = []
    for obj in payload["objects"]:
        entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
        if obj["oid"] not in h.state.lfs_objects:  # already stored: nothing to upload
            entry["actions"] = {
                "upload": {"href": f"{h.state.endpoint}/lfs-upload/{obj['oid']}", "header": {}},
                "verify": {"href": f"{h.state.endpoint}/lfs-verify/{obj['oid']}", "header": {}},
            }
        objects.append(entry)
    return 200, {"transfer": "basic", "objects": objects}, {}


def _lfs_put(h: _Handler, oid: str, body: bytes) -> Answer:
    if hashlib.sha256(body).hexdigest() != oid:
        raise _error(400, None, "the uploaded content does not match its sha256")
    with h.state.lock:
        h.state.lfs_objects[oid] = body
    return 200, b"", {}


def _lfs_verify(h: _Handler, oid: str, payload: dict[str, Any]) -> Answer:
    data = h.state.lfs_objects.get(oid)
    if data is None or len(data) != payload.get("size"):
        raise _error(422, None, f"object {oid} was not uploaded whole")
    return 200, {}, {}


def _commit(h: _Handler, repo_id: str, revision: str, body: bytes) -> Answer:
    repo = _writable_repo(h, repo_id)
    if revision not in repo.branches:
        raise _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    header = lines[0]
    if header.get("key") != "header":
        raise _error(400, None, "a commit starts with its header")
    parent = header["value"].get("parentCommit")
    if parent and parent != repo.branches[revision]:
        raise _error(412, None, "the branch moved since parentCommit")
    files: dict[str, bytes] = {}
    lfs: set[str] = set()
    deleted: list[str] = []
    for line in lines[1:]:
        value = line["value"]
        if line["key"] == "file":
            files[value["path"]] = base64.b64decode(value["content"])
        elif line["key"] == "lfsFile":
            data = h.state.lfs_objects.get(value["oid"])
            if data is None:
                raise _error(422, None, f"LFS object {value['oid']} was never uploaded")
            files[value["path"]] = data
            lfs.add(value["path"])
        elif line["key"] in ("deletedFile", "deletedFolder"):
            deleted.append(value["path"])
        else:
            raise _error(400, None, f"unknown commit operation {line['key']!r}")
    with h.state.lock:
        oid = repo.commit(
            files,
            branch=revision,
            message=header["value"]["summary"],
            deleted=tuple(deleted),
            lfs=tuple(lfs),
        )
    url = f"{h.state.endpoint}/{repo_id}/commit/{oid}"
    return 200, {"commitUrl": url, "commitOid": oid, "pullRequestUrl": None}, {}


# --- starting --------------------------------------------------------------------------------


def start_hub() -> tuple[HubServer, Any]:
    """Start the Hub and its "CDN" on two loopback ports; returns the state and a stop function."""
    state = HubServer()
    servers = []
    for is_cdn in (False, True):
        handler = type("Handler", (_Handler,), {"state": state, "is_cdn": is_cdn})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((httpd, thread))
    state.endpoint = f"http://127.0.0.1:{servers[0][0].server_address[1]}"
    state.cdn = f"http://127.0.0.1:{servers[1][0].server_address[1]}"

    def stop() -> None:
        for httpd, thread in servers:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

    return state, stop
