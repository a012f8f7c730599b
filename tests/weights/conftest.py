"""Fixtures for the weights tests: an isolated cache and a real loopback HTTP server."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelzoo.weights import download


@pytest.fixture(autouse=True)
def isolated_weights_env(monkeypatch, tmp_path):
    """Every test gets its own MODELZOO_HOME and none of the user's weights settings."""
    home = tmp_path / "modelzoo_home"
    monkeypatch.setenv("MODELZOO_HOME", str(home))
    for var in (
        "MODELZOO_WEIGHTS_DIR",
        "MODELZOO_MIRROR",
        "MODELZOO_OFFLINE",
        "MODELZOO_ALLOW_UNVERIFIED",
    ):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)  # retries in tests need no patience
    return home


@dataclass
class Served:
    """A file the server serves, and how it misbehaves."""

    data: bytes
    ignore_range: bool = False  # answer 200 with the whole file to Range requests
    drop_first: bool = False  # send half of the first response, then drop the connection
    chunk_delay: float = 0.0  # seconds between 64 KiB chunks, to make transfers overlap
    requests: int = 0

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Server:
    """The loopback server's files and its request log."""

    base: str
    files: dict[str, Served] = field(default_factory=dict)
    log: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, data: bytes, **behaviour) -> str:
        self.files[path] = Served(data, **behaviour)
        return self.base + path

    def requests_for(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.log if r["path"] == path]

    def full_transfers(self, path: str) -> int:
        """Responses that sent the whole file from byte 0 to its end."""
        return sum(r["status"] == 200 and r["complete"] for r in self.requests_for(path))


class _Handler(BaseHTTPRequestHandler):
    server_state: Server

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        state = self.server.state  # type: ignore[attr-defined]
        served = state.files.get(self.path)
        record = {"path": self.path, "range": self.headers.get("Range"), "complete": False}
        with state.lock:
            state.log.append(record)
        if served is None:
            record["status"] = 404
            self.send_error(404)
            return
        first = served.requests == 0
        served.requests += 1
        data = served.data
        start = 0
        match = re.match(r"bytes=(\d+)-$", record["range"] or "")
        if match and not served.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                record["status"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            record["status"] = 206
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            record["status"] = 200
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if served.drop_first and first:
            body = body[: len(body) // 2]
        sent = 0
        for i in range(0, len(body), 1 << 16):
            self.wfile.write(body[i : i + (1 << 16)])
            sent += len(body[i : i + (1 << 16)])
            if served.chunk_delay:
                time.sleep(served.chunk_delay)
        self.wfile.flush()
        record["complete"] = start == 0 and sent == len(data)
        record["sent"] = sent


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1 that serves ``Served`` files and logs requests."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _payload(n: int = 300_000, seed: int = 0) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


@pytest.fixture
def payload():
    """``payload(n, seed)``: deterministic bytes that do not repeat, so offsets matter."""
    return _payload
