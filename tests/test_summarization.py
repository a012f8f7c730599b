"""Code summarization: benchmarks/summarization.md is what its stored summaries score, and
the summarization entry points (``modelzoo.summarize``) behave as documented.

scripts/summarization_results.py runs as a subprocess: ``--check`` re-scores every stored
test summary (ROUGE-L with rouge-score, BLEU and chrF with sacrebleu) and the name baseline,
and re-renders the file and the recipes' "Took here" lines. The slow test rebuilds the test
split from this interpreter's standard library and requires the stored references to be its
own (skipped on another Python, whose standard library is another corpus).
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
import torch

import modelzoo as mz
from modelzoo.data.tokenizers import SubwordTokenizer
from modelzoo.summarize import rouge_l, summarize
from modelzoo.translate import TextSpec, save_text_weights

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "summarization_results.py"
BENCH = ROOT / "benchmarks"
FILES = ("summarization.json", "summarization.md", "summarization_outputs.json.xz")


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_published_figures_are_what_the_stored_summaries_score() -> None:
    result = _run("--check")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "0 problems" in result.stdout


def test_both_models_on_the_same_budget_and_split_by_package() -> None:
    data = json.loads((BENCH / "summarization.json").read_text())
    t, lstm = data["runs"]["transformer-code"], data["runs"]["lstm-code"]
    assert t["timing"]["steps"] == lstm["timing"]["steps"] > 0
    for run in (t, lstm):
        chosen = (run["chosen"]["beam"], run["chosen"]["length_penalty"])
        val = {(v["beam"], v["length_penalty"]): v["rouge_l"] for v in run["val"]}
        assert val[chosen] == max(val.values())
    corpus = data["corpus"]
    assert corpus["python_version"].count(".") == 2
    outputs = json.loads(lzma.decompress((BENCH / FILES[2]).read_bytes()))
    packages = {item["key"].split(":")[0].split(".")[0] for item in outputs["test"]}
    assert packages == set(corpus["test_packages"])
    text = (BENCH / "summarization.md").read_text()
    assert "### Best of the Transformer" in text and "### Worst of the Transformer" in text


def test_check_catches_a_changed_figure_or_summary(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(BENCH / name, tmp_path / name)
    data = json.loads((BENCH / "summarization.json").read_text())
    data["runs"]["transformer-code"]["test"]["rouge_l"] += 0.01
    (tmp_path / FILES[0]).write_text(json.dumps(data))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "MISMATCH transformer-code rouge_l" in result.stdout

    shutil.copy(BENCH / FILES[0], tmp_path / FILES[0])
    outputs = json.loads(lzma.decompress((BENCH / FILES[2]).read_bytes()))
    outputs["runs"]["lstm-code"] = [item["reference"] for item in outputs["test"]]  # too good
    (tmp_path / FILES[2]).write_bytes(lzma.compress(json.dumps(outputs).encode()))
    result = _run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "MISMATCH lstm-code rouge_l" in result.stdout


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
