"""read_weights / save_weights: safe formats, clear errors on bad files."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import pickle
import struct

import pytest
import torch
from safetensors import safe_open

from modelzoo.errors import UnsafeCheckpointError, WeightsError
from modelzoo.weights import load_torch_file, read_weights, save_weights, sha256_file


class _Planted:
    """A pickle payload that creates a file when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


def test_unsafe_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "planted.txt"
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.ones(2), "payload": _Planted(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        read_weights(path)
    message = str(err.value)
    assert str(path) in message and "open" in message and "not executed" in message
    assert not marker.exists()
    # The payload is real: a plain unpickler would have created the file.
    pickle.loads(pickle.dumps(_Planted(str(tmp_path / "control.txt"))))
    assert (tmp_path / "control.txt").exists()


def test_pickled_checkpoints_load_as_saved(tmp_path):
    state = {"fc.weight": torch.randn(3, 2), "fc.bias": torch.randn(3)}
    path = tmp_path / "ckpt.ckpt"
    torch.save({"model": state, "step": 7, "epoch": 1}, path)
    loaded = read_weights(path)
    assert loaded["step"] == 7
    assert torch.equal(loaded["model"]["fc.weight"], state["fc.weight"])


def _safetensors_bytes(tmp_path) -> bytes:
    path = save_weights({"a": torch.arange(10.0), "b": torch.ones(2, 3)}, tmp_path / "ok.st")
    return path.read_bytes()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda b: b"", "empty"),
        (lambda b: b[:5], "fewer than the 8-byte"),
        (lambda b: b[:-8], "truncated"),
        (lambda b: struct.pack("<Q", 10**6) + b[8:], "header length"),
        (lambda b: b[:8] + b"#" + b[9:], "not valid JSON"),
        (lambda b: b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\n", "git lfs"),
    ],
    ids=["empty", "tiny", "truncated-data", "bad-length", "bad-json", "lfs-pointer"],
)
def test_corrupt_safetensors_raise_naming_file_and_problem(tmp_path, damage, expected):
    path = tmp_path / "model.safetensors"
    path.write_bytes(damage(_safetensors_bytes(tmp_path)))
    with pytest.raises(WeightsError) as err:
        read_weights(path)
    assert str(path) in str(err.value)
    assert expected.lower() in str(err.value).lower()


def test_truncated_pickle_raises_weights_error(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WeightsError, match="w.pth"):
        read_weights(path)


def test_save_weights_round_trip_with_tied_tensors_and_metadata(tmp_path):
    shared = torch.randn(4, 3)
    state = {"embed.weight": shared, "head.weight": shared, "head.half": shared[:2]}
    path = save_weights(state, tmp_path / "sub" / "m.safetensors", metadata={"epochs": 3})
    loaded = read_weights(path)
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value)
    with safe_open(str(path), "pt") as fh:
        assert json.loads(fh.metadata()["epochs"]) == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]  # no temp left


def test_save_weights_refuses_non_tensors_and_writes_nothing(tmp_path):
    with pytest.raises(WeightsError, match="step"):
        save_weights({"w": torch.ones(1), "step": 3}, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_sha256_file(tmp_path):
    path = tmp_path / "x.bin"
    data = bytes(range(256)) * 10_000
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------- load_torch_file


def _assert_no_unsafe_advice(err: BaseException) -> None:
    """Neither the message nor anything chained to it tells the user to load unsafely."""
    seen = err
    while seen is not None:
        assert "weights_only" not in str(seen), str(seen)
        assert "arbitrary code" not in str(seen), str(seen)
        seen = seen.__cause__ or seen.__context__


@pytest.mark.parametrize(
    "make",
    [
        lambda good: os.urandom(4096),
        lambda good: b"\x80\x02" + os.urandom(500),  # a pickle header, then noise
        lambda good: good[:200],  # a truncated zip
        lambda good: good[: len(good) - 30],  # the zip's central directory cut off
        lambda good: b"PK\x03\x04" + os.urandom(800),
    ],
    ids=["random", "pickle-then-noise", "truncated-zip", "zip-no-directory", "zip-noise"],
)
def test_corrupt_torch_files_are_called_corrupt_not_unsafe(tmp_path, make):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.randn(100)}, good)
    path = tmp_path / "bad.ckpt"
    path.write_bytes(make(good.read_bytes()))
    with pytest.raises(WeightsError) as err:
        load_torch_file(path)
    assert not isinstance(err.value, UnsafeCheckpointError)
    assert "corrupt or not a torch.save file" in str(err.value) and str(path) in str(err.value)
    _assert_no_unsafe_advice(err.value)
    with pytest.raises(WeightsError, match="corrupt or not a torch.save file"):
        read_weights(path)  # read_weights uses the same loader


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_pickle_asking_for_a_forbidden_global_is_unsafe(tmp_path, protocol):
    marker = tmp_path / "planted.txt"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"w": [1.0, 2.0], "p": _Planted(str(marker))}, fh, protocol=protocol)
    zipped = tmp_path / "evil_zip.pth"
    torch.save({"w": torch.ones(1), "p": _Planted(str(marker))}, zipped)
    for candidate in (path, zipped):
        with pytest.raises(UnsafeCheckpointError) as err:
            load_torch_file(candidate)
        message = str(err.value)
        assert "open" in message and "not executed" in message and str(candidate) in message
        _assert_no_unsafe_advice(err.value)
    assert not marker.exists()


def test_load_torch_file_loads_plain_checkpoints_and_uses_the_callers_fix(tmp_path):
    state = {"model": {"w": torch.arange(3.0)}, "step": 4, "rng": {"numpy": [1, 2]}}
    path = tmp_path / "last.ckpt"
    torch.save(state, path)
    loaded = load_torch_file(path)
    assert loaded["step"] == 4 and torch.equal(loaded["model"]["w"], state["model"]["w"])
    legacy = tmp_path / "legacy.pt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    assert load_torch_file(legacy)["step"] == 4
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(WeightsError, match="resume from step-100.ckpt"):
        load_torch_file(path, fix="resume from step-100.ckpt")
    with pytest.raises(WeightsError, match="no such file"):
        load_torch_file(tmp_path / "absent.ckpt")
