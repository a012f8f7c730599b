"""benchmarks/reference_results.md still holds: its figures are re-measured and compared.

The measures the sections use are library functions (``modelzoo.metrics``) tested here
against independent computations; the script itself runs as a subprocess, in its
``--check`` mode, which re-trains a section's recipes and compares every figure marked
``[±t]`` (and every yes/no verdict) with the published file. The autoencoder section
takes seconds and runs in the default suite; the others take minutes each and run
under ``-m slow``.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from modelzoo.metrics import auroc, classifier_measures, mean_predictor_mse

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "reference_results.py"
PUBLISHED = ROOT / "benchmarks" / "reference_results.md"
SECTIONS = [
    "resnet",
    "recurrent",
    "seq2seq",
    "autoencoder",
    "generative",
    "dense",
    "audio",
    "augmentation",
]
CHEAP = ["autoencoder"]


# --- the measures ---------------------------------------------------------------------------


def test_auroc_perfect_reversed_and_tied() -> None:
    assert auroc([0.9, 0.8, 0.7], [0.1, 0.2]) == 1.0
    assert auroc([0.1, 0.2], [0.9, 0.8, 0.7]) == 0.0
    assert auroc([0.5, 0.5, 0.5], [0.5, 0.5]) == 0.5


def test_auroc_counts_pairs_and_half_ties_like_sklearn() -> None:
    # Pairs (pos, neg): 3>1 3>2 | 2>1 2=2 -> (3 + 0.5) / 4.
    assert auroc([3.0, 2.0], [1.0, 2.0]) == pytest.approx(3.5 / 4)
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 200).round(1), rng.normal(0, 1, 150).round(1)  # many ties
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auroc(pos, neg) == pytest.approx(pairs)
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    assert auroc(pos, neg) == pytest.approx(roc_auc_score(labels, np.r_[pos, neg]))


def test_auroc_refuses_empty_or_non_finite_scores() -> None:
    with pytest.raises(ValueError, match="both sides; got 0 positive and 1 negative"):
        auroc([], [0.1])
    with pytest.raises(ValueError, match="finite"):
        auroc([float("nan")], [0.1])


def test_classifier_measures_confidence_diversity_and_accuracy() -> None:
    k = 10
    one_class = torch.zeros(50, k)
    one_class[:, 3] = 1.0
    m = classifier_measures(one_class)
    assert m["confidence"] == pytest.approx(1.0)
    assert m["class_entropy_bits"] == 0.0
    assert m["classifier_score"] == pytest.approx(1.0)  # confident but never diverse

    labels = torch.arange(100) % k
    every_class = torch.eye(k)[labels]
    m = classifier_measures(every_class, labels)
    assert m["class_entropy_bits"] == pytest.approx(math.log2(k))
    assert m["classifier_score"] == pytest.approx(k)
    assert m["accuracy"] == 1.0
    assert classifier_measures(every_class, (labels + 1) % k)["accuracy"] == 0.0

    uniform = classifier_measures(torch.full((20, k), 1.0 / k))
    assert uniform["confidence"] == pytest.approx(1.0 / k)
    assert uniform["classifier_score"] == pytest.approx(1.0)


def test_classifier_score_is_the_inception_score_formula() -> None:
    probs = torch.softmax(torch.randn(64, 5, generator=torch.Generator().manual_seed(0)), 1)
    p = probs.double().numpy()
    marginal = p.mean(0)
    expected = math.exp(np.mean([(row * np.log(row / marginal)).sum() for row in p]))
    assert classifier_measures(probs)["classifier_score"] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"labels must be \(64,\)"):
        classifier_measures(probs, torch.zeros(3, dtype=torch.long))


def test_mean_predictor_mse_is_the_variance_around_the_training_mean() -> None:
    assert mean_predictor_mse(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0])) == 2.0
    images = torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    test = torch.rand(10, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    mean_image = images.double().mean(0)
    assert mean_predictor_mse(images, test) == pytest.approx(
        float(((test.double() - mean_image) ** 2).mean())
    )
    with pytest.raises(ValueError, match="shapes differ"):
        mean_predictor_mse(images, torch.zeros(2, 3))


# --- the published file ---------------------------------------------------------------------

_CHECKED = re.compile(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)(?: ± [\d.e-]+)?\s?[%×]? \[±([\d.e-]+)\]")


def _sections(text: str) -> dict[str, str]:
    pattern = r"<!-- section: ([\w-]+) -->\n(.*?)<!-- end section: \1 -->"
    return {m[1]: m[2] for m in re.finditer(pattern, text, re.DOTALL)}


def test_every_section_is_published_with_tolerances_next_to_its_figures() -> None:
    sections = _sections(PUBLISHED.read_text())
    assert list(sections) == SECTIONS
    for key, body in sections.items():
        figures = _CHECKED.findall(body)
        assert len(figures) >= 2, f"section {key} states no re-checked figures"
        assert all(float(tol) > 0 for _, tol in figures), key
        assert "--quick" not in body, f"section {key} holds a smoke run, not results"
        assert re.search(r"Measured by .* 1 torch thread", body), key


def _run(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_reproduces_the_autoencoder_section_and_catches_a_changed_figure(
    tmp_path: Path,
) -> None:
    """One run of ``--check autoencoder`` against a copy of the published file in which one
    figure and one verdict were altered: every other figure must reproduce, the altered
    two must be named, and the altered figure's re-measurement must match the true one."""
    text = PUBLISHED.read_text()
    body = _sections(text)["autoencoder"]
    row = re.search(r"^\| conv autoencoder, clean test images \| (\S+) \[±(\S+)\]", body, re.M)
    assert row, "the autoencoder table changed shape; update this test"
    value, tol = float(row[1]), float(row[2])
    wrong = f"{value + 20 * tol:.4f}"
    altered = body.replace(row.group(0), row.group(0).replace(row[1], wrong, 1), 1)
    assert "under half: yes" in altered
    altered = altered.replace("under half: yes", "under half: **no**")
    published_copy = tmp_path / "published.md"
    published_copy.write_text(text.replace(body, altered))
    # The re-run is merged into a file that already holds other sections: they must stay.
    work = tmp_path / "work"
    work.mkdir()
    (work / "reference_results.md").write_text(text)

    result = _run("--check", "autoencoder", "--out", str(published_copy), "--work-dir", str(work),
                  timeout=600)  # fmt: skip
    out = result.stdout
    assert result.returncode == 1, out + result.stderr[-3000:]
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 2, out
    assert "conv autoencoder, clean test images / test MSE" in failed[0]
    assert "under half" not in failed[0] and "An autoencoder reconstructs" in failed[1]
    measured = float(re.search(r"measured (\S+)", failed[0])[1])
    assert abs(measured - value) <= tol, f"published {value}, re-measured {measured}"
    passed = [line for line in out.splitlines() if line.startswith("ok")]
    assert len(passed) == len(_CHECKED.findall(body)) - 1 + 2  # 2 of the 3 verdicts
    assert "NOT reproduced (2)" in out

    rerun = _sections((work / "reference_results.md").read_text())
    assert list(rerun) == SECTIONS
    for key in SECTIONS:
        if key != "autoencoder":
            assert rerun[key] == _sections(text)[key], f"--check changed section {key}"
    assert (work / "reference" / "autoencoder_anomaly_scores.png").stat().st_size > 0
    assert (work / "runs" / "conv_autoencoder_0to4" / "seed0" / "checkpoints").is_dir()


# --- the foundation benchmark ------------------------------------------------------------------

FOUNDATION = ROOT / "benchmarks" / "foundation.md"


def _foundation_check(out: Path) -> subprocess.CompletedProcess[str]:
    script = ROOT / "scripts" / "bench_foundation.py"
    return subprocess.run(
        [sys.executable, str(script), "--check", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_foundation_report_is_what_its_numbers_give(tmp_path: Path) -> None:
    result = _foundation_check(FOUNDATION)
    assert result.returncode == 0, result.stdout + result.stderr
    # A slower import in the raw numbers must flip the verdict the report prints.
    raw = json.loads(FOUNDATION.with_suffix(".json").read_text())
    assert "import modelzoo` beyond `import torch`" in FOUNDATION.read_text()
    raw["imports"]["modelzoo"]["lib"] = [9.0 for _ in raw["imports"]["modelzoo"]["lib"]]
    (tmp_path / "foundation.json").write_text(json.dumps(raw))
    (tmp_path / "foundation.md").write_text(FOUNDATION.read_text())
    result = _foundation_check(tmp_path / "foundation.md")
    assert result.returncode == 1
    assert "+| `import modelzoo` beyond `import torch`" in result.stdout
    assert "9.000 / 9.000 / 9.000 s" in result.stdout and "**misses goal**" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("section", [s for s in SECTIONS if s not in CHEAP])
def test_check_reproduces_the_published_section(section: str, tmp_path: Path) -> None:
    result = _run("--check", section, "--work-dir", str(tmp_path), timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert f"every checked figure of {section} reproduced" in result.stdout
