"""benchmarks/translation.md: its figures are what the stored translations score.

scripts/translation_results.py runs as a subprocess. ``--check`` re-scores every published
test translation with sacrebleu against the corpus's references, recomputes the placeholder
preservation rates and the copy baseline, and re-renders the markdown and the recipes'
"Took here" lines; a changed figure, translation or line of text must make it fail. Only
finished runs are published: every other recipe of the protocol is listed as not run, and
the Transformer-vs-LSTM comparison is made only where both ran. The slow test translates
the test split again with the shipped weight sets and requires the published translations,
word for word.
"""

from __future__ import annotations

import json
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest
from script_helpers import run_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "translation_results.py"
BENCH = ROOT / "benchmarks"
FILES = ("translation.json", "translation.md", "translation_outputs.json.xz")
PAIRS = ("en-de", "en-fr", "en-es", "multi")
RUNS = {f"{family}-{pair}" for family in ("transformer", "lstm") for pair in PAIRS}


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return run_script(SCRIPT, *args, timeout=timeout)


def _published() -> dict:
    return json.loads((BENCH / "translation.json").read_text())


def _copy_published(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(BENCH / name, tmp_path / name)


def test_published_figures_are_what_the_stored_translations_score() -> None:
    result = _run("--check")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "0 problems" in result.stdout


def test_published_runs_are_complete_and_every_other_recipe_is_listed_as_not_run() -> None:
    data = _published()
    measured = set(data["runs"])
    assert measured, "no measured run is published"
    assert measured <= RUNS
    grid = [tuple(g) for g in data["grid"]]
    outputs = json.loads(lzma.decompress((BENCH / FILES[2]).read_bytes()))
    for name, run in data["runs"].items():
        assert run["timing"]["steps"] > 0 and run["timing"]["cpu_s"] > 0
        assert set(run["test"]) == set(run["languages"]) == set(outputs[name])
        # The decoding setting is one of those tried on val, and the best of them there.
        chosen = (run["chosen"]["beam"], run["chosen"]["length_penalty"])
        assert chosen in grid
        val = {(v["beam"], v["length_penalty"]): v["bleu"] for v in run["val"]}
        assert set(val) == set(grid)
        assert val[chosen] == max(val.values())
        for lang in run["languages"]:
            sig = run["signatures"][lang]["bleu"]
            assert "nrefs:var" in sig and "version:" in sig
            assert len(outputs[name][lang]) == run["test"][lang]["sentences"]
    # Both models on the same budget, wherever both were measured; a comparison otherwise is
    # stated as not measured.
    text = (BENCH / "translation.md").read_text()
    for pair in PAIRS:
        t, lstm = data["runs"].get(f"transformer-{pair}"), data["runs"].get(f"lstm-{pair}")
        if t and lstm:
            assert t["timing"]["steps"] == lstm["timing"]["steps"] > 0
            assert t["languages"] == lstm["languages"]
        else:
            assert "Transformer vs LSTM **not measured yet**" in text
    if "transformer-multi" in data["runs"]:
        multi = data["runs"]["transformer-multi"]["languages"]
        assert {"de", "fr", "es"} <= set(multi) and len(multi) >= 4
    # Every unmeasured recipe is named, with its command, under "Not run yet".
    not_run = text.split("## Not run yet", 1)[1].split("\n## ", 1)[0] if RUNS - measured else ""
    for name in RUNS - measured:
        assert f"python scripts/translation_results.py train {name}`" in not_run
    for name in measured:
        assert f"train {name}`" not in not_run


def test_check_catches_a_changed_figure_translation_or_text(tmp_path: Path) -> None:
    _copy_published(tmp_path)
    data = _published()
    name = next(iter(data["runs"]))
    lang = data["runs"][name]["languages"][0]
    data["runs"][name]["test"][lang]["bleu"] += 0.5
    (tmp_path / "translation.json").write_text(json.dumps(data))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"MISMATCH {name} {lang} bleu" in result.stdout
    assert "translation.md is not what the figures render" in result.stdout

    # A translation that loses its placeholder changes the published placeholder rate.
    shutil.copy(BENCH / "translation.json", tmp_path / "translation.json")
    outputs = json.loads(lzma.decompress((BENCH / FILES[2]).read_bytes()))
    from modelzoo.data.po_translations import reference_sets
    from modelzoo.metrics.translation import extract_placeholders

    name = next(n for n, r in _published()["runs"].items() if "de" in r["languages"])
    sources, _ = reference_sets("en-de", "test")
    german = outputs[name]["de"]
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
    assert f"MISMATCH {name} de placeholder_rate" in result.stdout


def test_check_catches_an_edited_text_or_an_incomplete_run(tmp_path: Path) -> None:
    _copy_published(tmp_path)
    # Dropping a line of the text (a verdict, a recipe from "Not run yet") is caught.
    text = (BENCH / "translation.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("- "))
    (tmp_path / "translation.md").write_text(text.replace(line + "\n", ""))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "translation.md is not what the figures render" in result.stdout

    # A run without its test scores (a run stopped midway, say) is not publishable.
    shutil.copy(BENCH / "translation.md", tmp_path / "translation.md")
    data = _published()
    name = next(iter(data["runs"]))
    del data["runs"][name]["test"]
    (tmp_path / "translation.json").write_text(json.dumps(data))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"MISMATCH {name}: incomplete, lacks test" in result.stdout


@pytest.mark.slow
def test_shipped_weights_translate_the_test_split_as_published() -> None:
    result = _run("--check", "--decode", timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
