"""`modelzoo download` and `modelzoo cache list|verify|clean` against a loopback server."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelzoo.cli import main
from modelzoo.weights import WeightFile, WeightSet, register_weights, unregister_weights


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


def test_download_then_cache_list_verify_clean(card, capsys, server):
    ws, data = card
    assert main(["download", "lenet5.cli_test", "--json"]) == 0
    (path,) = _json_out(capsys)["lenet5.cli_test"]
    assert open(path, "rb").read() == data

    assert main(["cache", "list", "--json"]) == 0
    (entry,) = _json_out(capsys)["files"]
    assert entry["path"] == path and entry["sha256"] == ws.files[0].sha256
    assert entry["source"] == ws.files[0].urls[0]

    assert main(["cache", "verify"]) == 0
    assert "1 files checked, 0 bad" in capsys.readouterr().out

    with open(path, "r+b") as fh:  # flip bytes in place: size and name stay
        fh.write(b"\0" * 16)
    assert main(["cache", "verify"]) == 1
    assert "BAD" in capsys.readouterr().out

    stale = path + ".4242.part"  # a partial left by a crashed download
    open(stale, "wb").write(b"x")
    assert main(["cache", "clean", "--dry-run"]) == 0
    assert stale in capsys.readouterr().out
    assert main(["cache", "clean"]) == 0
    out = capsys.readouterr().out
    assert stale in out and f"removed {path}\n" in out
    assert main(["cache", "list", "--json"]) == 0
    assert _json_out(capsys)["files"] == []

    assert main(["download", "lenet5"]) == 0  # the arch alone: its default (here only) set
    assert f"lenet5.cli_test: {path}" in capsys.readouterr().out
    assert main(["cache", "clean", "--all"]) == 0
    assert main(["cache", "list"]) == 0
    assert "(empty)" in capsys.readouterr().out


def test_download_unknown_tag_lists_the_known_ones(card, capsys):
    assert main(["download", "lenet5.nope"]) == 2
    assert "lenet5.cli_test" in capsys.readouterr().err
