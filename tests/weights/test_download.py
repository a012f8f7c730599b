"""fetch(): cache, integrity, resume, locks, offline rules, mirrors, against a real HTTP server."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import stat

import pytest

from modelzoo.errors import IntegrityError, OfflineError, WeightsError
from modelzoo.weights import WeightFile, fetch, integrity


def _parts(home):
    return sorted(p.name for p in home.rglob("*.part"))


def test_good_download_is_cached_and_recorded(server, isolated_weights_env, payload):
    data = payload()
    url = server.add("/files/w.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    path = fetch(url, sha256=sha, size=len(data), progress=False)
    assert path.read_bytes() == data
    assert isolated_weights_env in path.parents
    # The second call is served by the cache: no new request.
    assert fetch(url, sha256=sha, progress=False) == path
    assert len(server.requests_for("/files/w.bin")) == 1
    assert _parts(isolated_weights_env) == []


def test_wrong_hash_raises_with_both_digests_and_leaves_nothing(
    server, isolated_weights_env, payload
):
    data = payload()
    url = server.add("/files/w.bin", data)
    wrong = "0" * 64
    with pytest.raises(IntegrityError) as err:
        fetch(url, sha256=wrong, progress=False)
    message = str(err.value)
    assert hashlib.sha256(data).hexdigest() in message and wrong in message and url in message
    assert [p for p in isolated_weights_env.rglob("w.bin")] == []
    assert _parts(isolated_weights_env) == []


def test_failed_download_never_touches_a_good_cached_copy(server, isolated_weights_env, payload):
    data = payload()
    url = server.add("/files/w.bin", data)
    prefix = hashlib.sha256(data).hexdigest()[:8]
    good = fetch(url, sha256=prefix, progress=False)
    before = (good.read_bytes(), good.stat().st_mtime_ns)
    # The same URL with another expected digest: the cached copy does not match, the
    # download does not verify either, and the cached copy must survive as it was.
    with pytest.raises(IntegrityError, match="deadbeef"):
        fetch(url, sha256="deadbeef", progress=False)
    assert (good.read_bytes(), good.stat().st_mtime_ns) == before
    assert len(server.requests_for("/files/w.bin")) == 2
    assert _parts(isolated_weights_env) == []


def test_dropped_connection_resumes_with_a_range_request(server, payload):
    data = payload()
    url = server.add("/files/w.bin", data, drop_first=True)
    path = fetch(url, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert path.read_bytes() == data
    first, second = server.requests_for("/files/w.bin")
    assert first["range"] is None and first["sent"] < len(data)
    assert second["status"] == 206
    assert second["range"] == f"bytes={first['sent']}-"


def test_server_that_ignores_range_restarts_from_zero(server, payload):
    data = payload()
    url = server.add("/files/w.bin", data, drop_first=True, ignore_range=True)
    path = fetch(url, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert path.read_bytes() == data  # no bytes written twice
    second = server.requests_for("/files/w.bin")[1]
    assert second["range"] is not None and second["status"] == 200


def test_partial_left_by_an_earlier_process_is_resumed(server, isolated_weights_env, payload):
    data = payload()
    url = server.add("/files/w.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    entry = isolated_weights_env / "weights" / sha / "w.bin"
    entry.parent.mkdir(parents=True)
    entry.with_name("w.bin.99999.part").write_bytes(data[:1000])  # a dead process's partial
    assert fetch(url, sha256=sha, progress=False).read_bytes() == data
    (request,) = server.requests_for("/files/w.bin")
    assert request["range"] == "bytes=1000-" and request["status"] == 206
    assert _parts(isolated_weights_env) == []


def test_stale_partial_of_another_file_is_discarded(server, isolated_weights_env, payload):
    data = payload()
    url = server.add("/files/w.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    entry = isolated_weights_env / "weights" / sha / "w.bin"
    entry.parent.mkdir(parents=True)
    entry.with_name("w.bin.99999.part").write_bytes(b"x" * 1000)  # not this file's bytes
    assert fetch(url, sha256=sha, progress=False).read_bytes() == data
    assert [r["status"] for r in server.requests_for("/files/w.bin")] == [206, 200]


def _fetch_in_child(url, sha, barrier, results):
    barrier.wait(timeout=30)
    try:
        results.put(str(fetch(url, sha256=sha, progress=False)))
    except Exception as err:  # reported to the parent, which fails the test
        results.put(f"error: {err!r}")


def test_concurrent_processes_download_once(server, payload):
    data = payload(1 << 20)
    # ~0.8 s per transfer: without the lock all four would be downloading at once.
    url = server.add("/files/big.bin", data, chunk_delay=0.05)
    sha = hashlib.sha256(data).hexdigest()
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_child, args=(url, sha, barrier, results)) for _ in "abcd"]
    for p in procs:
        p.start()
    paths = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert len(set(paths)) == 1, paths
    assert not paths[0].startswith("error"), paths[0]
    assert hashlib.sha256(open(paths[0], "rb").read()).hexdigest() == sha
    assert server.full_transfers("/files/big.bin") == 1
    assert len(server.requests_for("/files/big.bin")) == 1


def test_offline_without_a_cached_copy_says_what_to_put_where(
    server, isolated_weights_env, monkeypatch, tmp_path, payload
):
    data = payload()
    sha = hashlib.sha256(data).hexdigest()
    wf = WeightFile(name="net.safetensors", size=len(data), sha256=sha, urls=(server.base + "/n",))
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    with pytest.raises(OfflineError) as err:
        fetch(wf)
    message = str(err.value)
    assert "net.safetensors" in message and sha in message
    assert "MODELZOO_WEIGHTS_DIR" in message and str(isolated_weights_env) in message
    drop = tmp_path / "drop"
    monkeypatch.setenv("MODELZOO_WEIGHTS_DIR", str(drop))
    with pytest.raises(OfflineError, match=str(drop / "net.safetensors")):
        fetch(wf)
    assert server.log == []


def test_offline_with_a_cached_copy_works(server, monkeypatch, payload):
    data = payload()
    url = server.add("/files/w.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    path = fetch(url, sha256=sha, progress=False)
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    assert fetch(url, sha256=sha) == path
    assert len(server.log) == 1


def test_weights_dir_is_searched_by_name_before_cache_and_network(
    server, monkeypatch, tmp_path, payload
):
    data = payload()
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "net.safetensors").write_bytes(data)
    monkeypatch.setenv("MODELZOO_WEIGHTS_DIR", str(drop))
    sha = hashlib.sha256(data).hexdigest()
    wf = WeightFile(name="net.safetensors", size=len(data), sha256=sha, urls=(server.base + "/n",))
    assert fetch(wf) == (drop / "net.safetensors").resolve()
    assert fetch("net.safetensors") == (drop / "net.safetensors").resolve()
    assert server.log == []
    (drop / "net.safetensors").write_bytes(data[::-1])  # a wrong file shadows: say so
    with pytest.raises(IntegrityError, match="Replace or remove"):
        fetch(wf)


def test_mirrors_are_tried_first_with_the_file_name(server, monkeypatch, payload):
    data = payload()
    server.add("/mirror/net.safetensors", data)
    origin = server.add("/origin/net.safetensors", data)
    sha = hashlib.sha256(data).hexdigest()
    # The first mirror does not have it (404); the second does; the origin is never asked.
    monkeypatch.setenv("MODELZOO_MIRROR", f"{server.base}/empty, {server.base}/mirror/")
    wf = WeightFile(name="net.safetensors", size=len(data), sha256=sha, urls=(origin,))
    assert fetch(wf, progress=False).read_bytes() == data
    assert [r["path"] for r in server.log] == ["/empty/net.safetensors", "/mirror/net.safetensors"]


def test_unwritable_cache_raises_saying_how_to_fix(server, monkeypatch, tmp_path, payload):
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # nothing, not even root, can create a folder under a file
    monkeypatch.setenv("MODELZOO_HOME", str(blocker / "cache"))
    data = payload()
    url = server.add("/files/w.bin", data)
    with pytest.raises(WeightsError, match="MODELZOO_HOME") as err:
        fetch(url, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert str(blocker / "cache") in str(err.value)
    assert server.log == []


def test_read_only_cache_still_serves_its_files(server, isolated_weights_env, monkeypatch, payload):
    data = payload()
    url = server.add("/files/w.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    path = fetch(url, sha256=sha, progress=False)
    path.with_name(path.name + ".meta.json").unlink()  # the next load must re-verify
    tree = sorted(isolated_weights_env.rglob("*"), reverse=True) + [isolated_weights_env]
    for p in tree:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    if os.geteuid() == 0:  # chmod does not stop root; make writes fail as they would for users

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(integrity, "atomic_write_text", refuse)
    try:
        before = sorted(str(p) for p in isolated_weights_env.rglob("*"))
        assert fetch(url, sha256=sha, progress=False) == path
        assert sorted(str(p) for p in isolated_weights_env.rglob("*")) == before
        assert len(server.log) == 1
    finally:
        for p in tree:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_truncated_cached_file_is_detected_and_fetched_again(server, monkeypatch, caplog, payload):
    data = payload()
    url = server.add("/files/w.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    path = fetch(url, sha256=sha, progress=False)
    with open(path, "r+b") as fh:
        fh.truncate(1000)
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    with pytest.raises(OfflineError, match="not usable"):
        fetch(url, sha256=sha)
    monkeypatch.delenv("MODELZOO_OFFLINE")
    with caplog.at_level(logging.WARNING, logger="modelzoo.weights"):
        assert fetch(url, sha256=sha, progress=False) == path
    assert path.read_bytes() == data
    assert "not usable" in caplog.text
    assert server.full_transfers("/files/w.bin") == 2


def test_file_without_published_hash_needs_opt_in_then_is_pinned(server, monkeypatch, payload):
    data = payload()
    url = server.add("/hub/model.safetensors", data)
    with pytest.raises(WeightsError, match="MODELZOO_ALLOW_UNVERIFIED"):
        fetch(url, progress=False)
    assert server.log == []
    monkeypatch.setenv("MODELZOO_ALLOW_UNVERIFIED", "1")
    path = fetch(url, progress=False)
    assert path.read_bytes() == data
    # Same size, other bytes, new mtime: the digest recorded at download catches it.
    path.write_bytes(data[::-1])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert fetch(url, progress=False).read_bytes() == data
    assert server.full_transfers("/hub/model.safetensors") == 2


def test_local_paths_and_file_urls(tmp_path, payload):
    data = payload(1000)
    local = tmp_path / "w.bin"
    local.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    assert fetch(local, sha256=sha) == local.resolve()
    assert fetch(local.as_uri(), sha256=sha[:10]) == local.resolve()
    with pytest.raises(IntegrityError, match=sha):
        fetch(local, sha256="f" * 64)
    with pytest.raises(WeightsError, match="no weights file"):
        fetch(tmp_path / "missing.bin")
