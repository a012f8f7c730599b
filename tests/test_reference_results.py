"""scripts/reference_results.py: its measuring functions, its markdown merge, one tiny section."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ref():
    spec = importlib.util.spec_from_file_location(
        "reference_results", ROOT / "scripts" / "reference_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


# --- AUROC -------------------------------------------------------------------------------------


def test_auroc_perfect_reversed_and_tied(ref) -> None:
    assert ref.auroc([0.9, 0.8, 0.7], [0.1, 0.2]) == 1.0
    assert ref.auroc([0.1, 0.2], [0.9, 0.8, 0.7]) == 0.0
    assert ref.auroc([0.5, 0.5, 0.5], [0.5, 0.5]) == 0.5


def test_auroc_counts_pairs_and_half_ties(ref) -> None:
    # Pairs (pos, neg): 3>1 3>2 | 2>1 2=2 -> (3 + 0.5) / 4.
    assert ref.auroc([3.0, 2.0], [1.0, 2.0]) == pytest.approx(3.5 / 4)
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 200).round(1), rng.normal(0, 1, 150).round(1)  # many ties
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert ref.auroc(pos, neg) == pytest.approx(pairs)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    expected = sklearn_metrics.roc_auc_score(labels, np.r_[pos, neg])
    assert ref.auroc(pos, neg) == pytest.approx(expected)


def test_auroc_needs_both_sides(ref) -> None:
    with pytest.raises(ValueError, match="both sides"):
        ref.auroc([], [0.1])


# --- the other measures ------------------------------------------------------------------------


def test_classifier_measures_confidence_diversity_and_accuracy(ref) -> None:
    k = 10
    one_class = torch.zeros(50, k)
    one_class[:, 3] = 1.0
    m = ref.classifier_measures(one_class)
    assert m["confidence"] == pytest.approx(1.0)
    assert m["class_entropy_bits"] == pytest.approx(0.0)
    assert m["classifier_score"] == pytest.approx(1.0)  # confident but never diverse

    labels = torch.arange(100) % k
    every_class = torch.eye(k)[labels]
    m = ref.classifier_measures(every_class, labels)
    assert m["class_entropy_bits"] == pytest.approx(math.log2(k))
    assert m["classifier_score"] == pytest.approx(k)
    assert m["accuracy"] == 1.0
    assert ref.classifier_measures(every_class, (labels + 1) % k)["accuracy"] == 0.0

    uniform = ref.classifier_measures(torch.full((20, k), 1.0 / k))
    assert uniform["confidence"] == pytest.approx(1.0 / k)
    assert uniform["classifier_score"] == pytest.approx(1.0)


def test_mean_predictor_mse_is_the_variance_around_the_training_mean(ref) -> None:
    train = torch.tensor([0.0, 2.0])  # mean 1
    test = torch.tensor([1.0, 3.0])
    assert ref.mean_predictor_mse(train, test) == pytest.approx((0 + 4) / 2)


def test_masking_noise_is_seeded_and_zeroes_about_its_share(ref) -> None:
    x = torch.ones(200, 1, 8, 8)
    a = ref.masking_noise(x, 0.25, seed=1)
    assert torch.equal(a, ref.masking_noise(x, 0.25, seed=1))
    assert not torch.equal(a, ref.masking_noise(x, 0.25, seed=2))
    assert (a == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)


# --- the markdown file -------------------------------------------------------------------------


def test_merge_replaces_one_section_and_keeps_the_others(ref) -> None:
    order = ["resnet", "recurrent", "seq2seq"]
    text = ref.merge_markdown(None, "recurrent", "## two\nfirst run", order)
    text = ref.merge_markdown(text, "resnet", "## one\nresnet body", order)
    text = ref.merge_markdown(text, "custom", "## later\nadded by someone else", order)
    assert text.index("## one") < text.index("## two") < text.index("## later")

    again = ref.merge_markdown(text, "recurrent", "## two\nsecond run", order)
    assert "second run" in again and "first run" not in again
    assert "resnet body" in again and "added by someone else" in again
    assert again.count("<!-- section: recurrent -->") == 1
    assert again.startswith(ref.HEADER)
    # Re-writing a section with the same body changes nothing (the merge is stable).
    assert ref.merge_markdown(again, "resnet", "## one\nresnet body", order) == again


def test_write_section_creates_then_updates_the_file(ref, tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.md"
    ref.write_section(path, ref.Section("a", "alpha 1"), ["a", "b"])
    ref.write_section(path, ref.Section("b", "beta 1"), ["a", "b"])
    ref.write_section(path, ref.Section("a", "alpha 2"), ["a", "b"])
    text = path.read_text()
    assert "alpha 2" in text and "alpha 1" not in text and "beta 1" in text


# --- a section end to end, a few steps per recipe ------------------------------------------------


def test_autoencoder_section_runs_quick(ref, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ctx = ref.Context(
        runs_dir=tmp_path / "runs",
        plots_dir=tmp_path / "reference",
        out=tmp_path / "results.md",
        quick=True,
    )
    section = ref.section_autoencoder(ctx)
    assert section.key == "autoencoder"
    assert "--quick" in section.body  # a smoke run says it is one
    assert "(reference/autoencoder_reconstructions.png)" in section.body
    for name in ("autoencoder_reconstructions.png", "autoencoder_anomaly_scores.png"):
        assert (tmp_path / "reference" / name).stat().st_size > 0
    assert (tmp_path / "runs/conv_autoencoder_0to4/seed0/checkpoints/last.ckpt").is_file()
    assert "AUROC" in section.body
