"""benchmarks/translation.md: its figures are what the stored translations score.

scripts/translation_results.py runs as a subprocess. ``--check`` re-scores every published
test translation with sacrebleu against the corpus's references, recomputes the placeholder
preservation rates and the copy baseline, and re-renders the markdown and the recipes'
"Took here" lines; a changed figure or translation must make it fail. The slow test
translates the test split again with the shipped weight sets and requires the published
translations, word for word.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "translation_results.py"
BENCH = ROOT / "benchmarks"
FILES = ("translation.json", "translation.md", "translation_outputs.json.xz")
RUNS = {
    f"{family}-{pair}"
    for family in ("transformer", "lstm")
    for pair in ("en-de", "en-fr", "en-es", "multi")
}


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _published() -> dict:
    return json.loads((BENCH / "translation.json").read_text())


def test_published_figures_are_what_the_stored_translations_score() -> None:
    result = _run("--check")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "0 problems" in result.stdout


def test_every_pair_compares_both_models_on_the_same_budget() -> None:
    data = _published()
    assert set(data["runs"]) == RUNS
    grid = [tuple(g) for g in data["grid"]]
    for pair in ("en-de", "en-fr", "en-es", "multi"):
        t, lstm = data["runs"][f"transformer-{pair}"], data["runs"][f"lstm-{pair}"]
        assert t["timing"]["steps"] == lstm["timing"]["steps"] > 0
        assert t["languages"] == lstm["languages"]
        for run in (t, lstm):
            # The decoding setting is one of those tried on val, and the best of them there.
            chosen = (run["chosen"]["beam"], run["chosen"]["length_penalty"])
            assert chosen in grid
            val = {(v["beam"], v["length_penalty"]): v["bleu"] for v in run["val"]}
            assert val[chosen] == max(val.values())
            for lang in run["languages"]:
                sig = run["signatures"][lang]["bleu"]
                assert "nrefs:var" in sig and "version:" in sig
    multi = data["runs"]["transformer-multi"]["languages"]
    assert {"de", "fr", "es"} <= set(multi) and len(multi) >= 4


def test_check_catches_a_changed_figure_or_translation(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(BENCH / name, tmp_path / name)
    data = _published()
    data["runs"]["lstm-en-de"]["test"]["de"]["bleu"] += 0.5
    (tmp_path / "translation.json").write_text(json.dumps(data))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "MISMATCH lstm-en-de de bleu" in result.stdout
    assert "translation.md is not what the figures render" in result.stdout

    # A translation that loses its placeholder changes the published placeholder rate.
    shutil.copy(BENCH / "translation.json", tmp_path / "translation.json")
    outputs = json.loads(lzma.decompress((BENCH / FILES[2]).read_bytes()))
    from modelzoo.data.po_translations import reference_sets
    from modelzoo.metrics.translation import extract_placeholders

    sources, _ = reference_sets("en-de", "test")
    german = outputs["transformer-en-de"]["de"]
    kept = [
        i
        for i, s in enumerate(sources)
        if extract_placeholders(s)
        and sorted(extract_placeholders(s)) == sorted(extract_placeholders(german[i]))
    ]
    german[kept[0]] = "Gelöscht."
    (tmp_path / FILES[2]).write_bytes(lzma.compress(json.dumps(outputs).encode()))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "MISMATCH transformer-en-de de placeholder_rate" in result.stdout


@pytest.mark.slow
def test_shipped_weights_translate_the_test_split_as_published() -> None:
    result = _run("--check", "--decode", timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
