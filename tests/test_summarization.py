"""Code summarization: benchmarks/summarization.md is what its stored summaries score, and
the summarization entry points (``modelzoo.summarize``) behave as documented.

scripts/summarization_results.py runs as a subprocess: ``--check`` re-scores every stored
test summary (ROUGE-L with rouge-score, BLEU and chrF with sacrebleu) and the name baseline,
and re-renders the file and the recipes' "Took here" lines. Only finished runs are
published; a recipe without one is listed as not run, with its command. The slow test
rebuilds the test split from this interpreter's standard library and requires the stored
references to be its own (skipped on another Python, whose standard library is another
corpus).
"""

from __future__ import annotations

import json
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from script_helpers import run_script

import modelzoo as mz
from modelzoo.data.tokenizers import SubwordTokenizer
from modelzoo.summarize import rouge_l, summarize
from modelzoo.translate import TextSpec, save_text_weights

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "summarization_results.py"
BENCH = ROOT / "benchmarks"
FILES = ("summarization.json", "summarization.md", "summarization_outputs.json.xz")
RUNS = {"transformer-code", "lstm-code"}


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return run_script(SCRIPT, *args, timeout=timeout)


def test_published_figures_are_what_the_stored_summaries_score() -> None:
    result = _run("--check")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "0 problems" in result.stdout


def test_published_runs_are_complete_the_split_is_by_package_and_the_rest_is_listed() -> None:
    data = json.loads((BENCH / "summarization.json").read_text())
    runs = data["runs"]
    assert set(runs) <= RUNS
    outputs = json.loads(lzma.decompress((BENCH / FILES[2]).read_bytes()))
    for name, run in runs.items():
        assert run["timing"]["steps"] > 0
        assert len(outputs["runs"][name]) == len(outputs["test"]) == run["test"]["functions"]
        chosen = (run["chosen"]["beam"], run["chosen"]["length_penalty"])
        val = {(v["beam"], v["length_penalty"]): v["rouge_l"] for v in run["val"]}
        assert val[chosen] == max(val.values())
    text = (BENCH / "summarization.md").read_text()
    if len(runs) == 2:  # both models on the same budget, when both were measured
        assert runs["transformer-code"]["timing"]["steps"] == runs["lstm-code"]["timing"]["steps"]
    else:
        assert "Transformer vs LSTM: **not measured yet**" in text
    not_run = text.split("## Not run yet", 1)[1].split("\n## ", 1)[0] if RUNS - set(runs) else ""
    for name in RUNS - set(runs):
        assert f"python scripts/summarization_results.py train {name}`" in not_run
    if "transformer-code" in runs:
        assert "### Best of the Transformer" in text and "### Worst of the Transformer" in text
    # The corpus facts: the Python version it came from, and a split by package.
    corpus = data["corpus"]
    assert corpus["python_version"].count(".") == 2
    assert f"standard library of Python {corpus['python_version']}" in text
    sizes = corpus["sizes"]
    assert sizes["test"] == len(outputs["test"]) == data["name_baseline"]["functions"] > 100
    assert min(sizes.values()) > 100 and corpus["groups"]["test"] == len(corpus["test_packages"])
    packages = {item["key"].split(":")[0].split(".")[0] for item in outputs["test"]}
    assert packages == set(corpus["test_packages"])


def test_check_catches_a_changed_figure_summary_or_text(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(BENCH / name, tmp_path / name)
    data = json.loads((BENCH / "summarization.json").read_text())
    data["name_baseline"]["rouge_l"] += 0.01
    for run in data["runs"].values():
        run["test"]["rouge_l"] += 0.01
    (tmp_path / FILES[0]).write_text(json.dumps(data))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "MISMATCH name baseline rouge_l" in result.stdout
    for name in data["runs"]:
        assert f"MISMATCH {name} rouge_l" in result.stdout

    # A changed reference summary re-scores otherwise; so does a run's output.
    shutil.copy(BENCH / FILES[0], tmp_path / FILES[0])
    outputs = json.loads(lzma.decompress((BENCH / FILES[2]).read_bytes()))
    outputs["test"][0]["reference"] = outputs["test"][0]["key"].split(":")[1] + " does it."
    for name in outputs["runs"]:
        outputs["runs"][name] = [item["reference"] for item in outputs["test"]]  # too good
    (tmp_path / FILES[2]).write_bytes(lzma.compress(json.dumps(outputs).encode()))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "MISMATCH name baseline rouge_l" in result.stdout
    for name in outputs["runs"]:
        assert f"MISMATCH {name} rouge_l" in result.stdout

    # Any edit of the text (a claim softened, a run's count changed) is caught.
    shutil.copy(BENCH / FILES[2], tmp_path / FILES[2])
    text = (BENCH / FILES[1]).read_text()
    edited = text.replace("split **by package**", "split by package").replace(
        "runs finished", "runs ran"
    )
    assert edited != text
    (tmp_path / FILES[1]).write_text(edited)
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "summarization.md is not what the figures render" in result.stdout


@pytest.mark.slow
def test_stored_references_are_this_pythons_standard_library() -> None:
    result = _run("--check", "--corpus", timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    if "SKIP" in result.stdout:
        pytest.skip(result.stdout.strip().splitlines()[0])


def test_summarize_decodes_code_with_the_model_s_tokenizer(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "home"))
    code = ["def add(a, b):\n    return a + b", "def close(self):\n    self._file.close()"]
    tok = SubwordTokenizer.train(code + ["Add two numbers.", "Close the file."], vocab_size=300)
    torch.manual_seed(0)
    model = mz.create(
        "transformer_seq2seq",
        vocab_size=tok.vocab_size,
        d_model=16,
        num_layers=1,
        num_heads=2,
        d_ff=32,
        max_len=12,
    )
    spec = TextSpec(tokenizer=tok, kind="summarization", target_languages=["en"], normalize=False)
    path = save_text_weights(model, spec, tmp_path / "code.safetensors")
    out = summarize(path, code, beam_size=1, max_len=5)
    # Inputs longer than the model reads are cut (as the training data cut them), not refused.
    for text, got in zip(code, out, strict=True):
        ids = tok.encode(text)[:11] + [tok.eos_id]
        expected = model.eval().generate(torch.tensor([ids]), 5)
        assert got == tok.decode(expected[0].tolist()).strip()
    assert rouge_l(["Add two numbers."], ["Adds two numbers"])[0] == pytest.approx(1.0)
