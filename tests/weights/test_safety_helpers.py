"""The helpers every weights file goes through: safe names, one atomic write, one lock."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import modelzoo
import modelzoo.weights
from modelzoo.errors import WeightsError
from modelzoo.utils.io import (
    FileLock,
    UnsafeNameError,
    atomic_write,
    path_within,
    safe_file_name,
    url_file_name,
)
from modelzoo.weights import get_weight_set

WEIGHTS_PACKAGE = Path(modelzoo.weights.__file__).parent


@pytest.mark.parametrize(
    ("text", "decode", "expected"),
    [
        ("model.safetensors", False, "model.safetensors"),
        ("a%2Fb.bin", False, "a%2Fb.bin"),  # literal: no decoding asked for
        ("w%20x.bin", True, "w x.bin"),
        ("..", False, None),
        (".", False, None),
        ("", False, None),
        ("  ", False, None),
        ("a/b", False, None),
        ("a\\b", False, None),
        ("a%2Fb.bin", True, None),
        ("a%252Fb.bin", True, None),
        ("%2e%2e", True, None),
        ("C:x.bin", False, None),
        ("a\0b", False, None),
        ("a%00b", True, None),
        ("a\nb", False, None),
        ("\ud800.bin", False, None),
        ("é" * 127 + ".b", False, None),  # 256 bytes in UTF-8
    ],
)
def test_safe_file_name(text, decode, expected):
    if expected is None:
        with pytest.raises(UnsafeNameError):
            safe_file_name(text, decode=decode)
    else:
        assert safe_file_name(text, decode=decode) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/a/model.safetensors?download=1#x", "model.safetensors"),
        ("http://h/x/..%2F..%2Fw.bin", "w.bin"),
        ("http://h/x/%252F..%252Fw.bin", "w.bin"),
        ("http://h/x/C:%5Cw.bin", "w.bin"),
        ("http://h/x/..", None),
        ("http://h/x/w%00.bin", None),
        ("http://h/", None),
    ],
)
def test_url_file_name_decodes_before_it_splits(url, expected):
    if expected is None:
        with pytest.raises(UnsafeNameError):
            url_file_name(url)
    else:
        assert url_file_name(url) == expected


def test_path_within_follows_symlinks(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    assert path_within(root, "a.bin") == (root / "a.bin").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(UnsafeNameError):
            path_within(root, bad)
    os.symlink(tmp_path, root / "link")
    with pytest.raises(UnsafeNameError):
        path_within(root, "link", "x")


def test_file_lock_on_a_folder_excludes_a_second_holder(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    with FileLock(folder):
        other = FileLock(folder)
        assert not other.acquire(blocking=False)  # flock: separate opens conflict
    assert other.acquire(blocking=False)
    other.release()
    assert sorted(folder.iterdir()) == []  # no lock file left in the folder


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = atomic_write(tmp_path / "f.bin", b"old")

    def fail(fh):
        fh.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [path]


def _calls(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                names.append(f"{func.value.id}.{func.attr}")
            elif isinstance(func, ast.Name):
                names.append(func.id)
    return names


def test_weights_package_writes_only_through_the_one_helper():
    """No hand-written temp-then-rename and no second lock in modelzoo/weights.

    The one exception is the download's resumable ``.part`` file, streamed (and synced)
    and then moved into place with ``utils.io.move_into_place``, as is the rename of a dead
    process's partial to this process's name.
    """
    found: dict[str, list[str]] = {}
    for path in sorted(WEIGHTS_PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        calls = _calls(tree)
        imports = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        risky = [
            c
            for c in calls
            if c in ("os.replace", "os.rename", "tempfile.mkstemp", "tempfile.mkdtemp", "os.fsync")
        ]
        risky += sorted(imports & {"tempfile", "fcntl", "msvcrt"})
        if risky:
            found[path.name] = risky
    assert found == {"download.py": ["os.fsync"]}
    source = (WEIGHTS_PACKAGE / "download.py").read_text()
    assert "move_into_place(part, entry)" in source and "move_into_place(best, mine)" in source
    assert not hasattr(modelzoo.weights.cache, "FileLock") or (
        modelzoo.weights.cache.FileLock is FileLock
    )


def test_describe_gives_a_readable_card():
    shipped = get_weight_set("resnet20", "digits")
    text = shipped.describe()
    (wf,) = shipped.files
    assert text.splitlines()[0].startswith("resnet20.digits")
    assert f"sha256 {wf.sha256}" in text and len(wf.sha256) == 64
    assert f"{wf.size:,} bytes" in text
    assert f"license: {shipped.license}" in text
    for dataset, values in shipped.metrics.items():
        assert dataset in text and all(k in text for k in values)
    assert "{" not in text.splitlines()[0] and "WeightSet(" not in text

    tv = get_weight_set("resnet18", "tv_in1k").describe()
    assert "size not published" in tv
    assert "sha256 prefix f37072fd (torchvision publishes 8 hex digits" in tv
    assert "imagenet-1k: top1 69.76, top5 89.08" in tv
    timm = get_weight_set("vit_tiny_patch16_224").describe()
    assert "sha256 not published" in timm and "MODELZOO_ALLOW_UNVERIFIED" in timm


def test_missing_pretrained_files_say_file_not_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError) as err:
        modelzoo.create("resnet20", pretrained="missing.safetensors")
    message = str(err.value)
    assert "file not found" in message and "not a weight tag" not in message
    assert str(tmp_path / "missing.safetensors") in message
    assert "MODELZOO_WEIGHTS_DIR (not set)" in message
    with pytest.raises(WeightsError) as err:
        modelzoo.create("resnet20", pretrained="./nope/x.pt")
    message = str(err.value)
    assert "file not found" in message and f"folder {tmp_path / 'nope'} does not exist" in message
    with pytest.raises(WeightsError) as err:  # a bare word: the tag-oriented message
        modelzoo.create("resnet20", pretrained="imagenet")
    assert "not a weight tag" in str(err.value) and "'digits'" in str(err.value)
