"""`modelzoo download` and `modelzoo cache list|verify|clean` against a loopback server."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelzoo.cli import main
from modelzoo.weights import (
    WeightFile,
    WeightSet,
    cache_entries,
    get_weight_set,
    register_weights,
    sha256_file,
    unregister_weights,
)


@pytest.fixture
def card(server, payload):
    data = payload()
    url = server.add("/w/lenet5.cli_test.safetensors", data)
    ws = WeightSet(
        arch="lenet5",
        tag="cli_test",
        files=(
            WeightFile(
                name="lenet5.cli_test.safetensors",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                urls=(url,),
            ),
        ),
        model_kwargs={},
        metrics={},
        license="mit",
        recipe=None,
        input_spec={},
    )
    register_weights(ws)
    yield ws, data
    unregister_weights("lenet5", "cli_test")


def _json_out(capsys):
    return json.loads(capsys.readouterr().out)


def _downloaded(files):
    return [f for f in files if not f["shipped"]]


def test_download_then_cache_list_verify_clean(card, capsys, server, isolated_weights_env):
    ws, data = card
    assert main(["download", "lenet5.cli_test", "--json"]) == 0
    (path,) = _json_out(capsys)["lenet5.cli_test"]
    assert open(path, "rb").read() == data

    assert main(["cache", "list", "--json"]) == 0
    (entry,) = _downloaded(_json_out(capsys)["files"])
    assert entry["path"] == path and entry["sha256"] == ws.files[0].sha256
    assert entry["source"] == ws.files[0].urls[0]

    shipped = len(cache_entries(include_shipped=True)) - 1
    assert main(["cache", "verify"]) == 0
    assert f"{shipped + 1} files checked, 0 bad" in capsys.readouterr().out

    with open(path, "r+b") as fh:  # flip bytes in place: size and name stay
        fh.write(b"\0" * 16)
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"BAD  {path}:" in out and "1 bad" in out

    stale = path + ".4242.part"  # a partial left by a crashed download
    open(stale, "wb").write(b"x")
    assert main(["cache", "clean", "--dry-run"]) == 0
    assert stale in capsys.readouterr().out
    assert main(["cache", "clean"]) == 0
    out = capsys.readouterr().out
    assert stale in out and f"removed {path}\n" in out
    assert main(["cache", "list", "--json"]) == 0
    assert _downloaded(_json_out(capsys)["files"]) == []

    assert main(["download", "lenet5"]) == 0  # the arch alone: its default (here only) set
    assert f"lenet5.cli_test: {path}" in capsys.readouterr().out
    assert main(["cache", "clean", "--all"]) == 0
    assert f"removed {isolated_weights_env / 'weights'}" in capsys.readouterr().out
    assert main(["cache", "list", "--json"]) == 0
    assert _downloaded(_json_out(capsys)["files"]) == []


def test_download_unknown_tag_lists_the_known_ones(card, capsys):
    assert main(["download", "lenet5.nope"]) == 2
    assert "lenet5.cli_test" in capsys.readouterr().err


def test_download_of_a_misspelt_name_suggests_close_ones(capsys, server):
    assert main(["download", "resnt20"]) == 2
    err = capsys.readouterr().err
    assert "no model or weight set named 'resnt20'" in err and "Did you mean: resnet20" in err
    assert main(["download", "resnet20.digts"]) == 2
    assert "Did you mean: resnet20.digits" in capsys.readouterr().err
    # A bad name among good ones fails before anything is downloaded.
    assert main(["download", "resnet20", "resnt20"]) == 2
    assert server.log == []


def test_cache_list_shows_shipped_weights_and_clean_never_removes_them(capsys):
    shipped = get_weight_set("resnet20", "digits").files[0]
    assert main(["cache", "list", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    (entry,) = [f for f in files if f["name"] == shipped.name]
    assert entry["shipped"] is True and entry["weight_set"] == "resnet20.digits"
    assert entry["sha256"] == shipped.sha256 and entry["size"] == shipped.size
    assert main(["cache", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(shipped.name))
    assert "shipped" in line
    before = {f["path"]: sha256_file(f["path"]) for f in files if f["shipped"]}
    assert main(["cache", "clean"]) == 0
    assert main(["cache", "clean", "--all"]) == 0
    assert "shipped" not in capsys.readouterr().out.replace("removed 0 items", "")
    assert {p: sha256_file(p) for p in before} == before
