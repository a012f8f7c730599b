"""Style transfer and clustering applications: the image-quality and clustering metrics against
known values, the offline translation datasets, and the published results re-checked.

The cheap part of each results script's ``--check`` (no training) runs in the default suite;
the full pipeline runs (a few steps per recipe) are marked slow.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from script_helpers import run_script

import modelzoo.data.paired_images  # noqa: F401  (registers the datasets until they are built in)
from modelzoo.data import build_data
from modelzoo.data.paired_images import (
    DIGIT_STYLES,
    LABEL_COLOURS,
    canny_edges,
    colour_masks,
    render_digits,
)
from modelzoo.errors import ConfigError
from modelzoo.metrics.clustering import cluster_accuracy, clustering_scores, kmeans_assign
from modelzoo.metrics.image_quality import gaussian_window, psnr, ssim

ROOT = Path(__file__).resolve().parent.parent


# --- image quality ---------------------------------------------------------------------------


def test_psnr_known_values() -> None:
    target = torch.zeros(2, 3, 8, 8)
    pred = torch.full_like(target, 0.1)  # MSE 0.01 with a range of 1: 20 dB
    assert psnr(pred, target).item() == pytest.approx(20.0)
    assert psnr(pred * 255, target, data_range=255.0).item() == pytest.approx(20.0)
    per_image = psnr(torch.stack([pred[0], target[0]]), target, reduction="none")
    assert per_image[0].item() == pytest.approx(20.0) and per_image[1].item() == float("inf")


def _ssim_reference(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Wang et al.'s SSIM written independently with scipy: Gaussian filtering (sigma 1.5,
    radius 5), then the valid region (5 pixels in from each border), averaged."""
    from scipy import ndimage

    def f(z: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(z, 1.5, truncate=3.5)  # radius int(3.5 * 1.5 + 0.5) = 5

    values = []
    for x, y in zip(a, b, strict=True):
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(s[5:-5, 5:-5].mean())
    return float(np.mean(values))


def test_ssim_matches_an_independent_implementation() -> None:
    rng = np.random.default_rng(0)
    clean = rng.random((3, 24, 20))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    got = ssim(torch.tensor(noisy), torch.tensor(clean)).item()
    assert got == pytest.approx(_ssim_reference(noisy, clean), abs=1e-10)
    assert 0.5 < got < 0.99


def test_ssim_known_values_and_properties() -> None:
    # Constant images: no variance, so SSIM is the luminance term (2 m1 m2 + C1) / (m1² + m2² + C1).
    a = torch.full((1, 1, 16, 16), 0.2, dtype=torch.float64)
    b = torch.full((1, 1, 16, 16), 0.6, dtype=torch.float64)
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert ssim(a, b).item() == pytest.approx(expected, rel=1e-9)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert ssim(x, x).item() == pytest.approx(1.0)
    assert ssim(x, y).item() == pytest.approx(ssim(y, x).item())
    assert ssim(x, 1 - x).item() < 0  # anti-correlated structure
    assert gaussian_window(11, 1.5).sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="does not fit"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16))


# --- clustering ------------------------------------------------------------------------------


def test_cluster_scores_ignore_the_names_of_clusters() -> None:
    truth = np.repeat(np.arange(4), 25)
    renamed = (truth + 1) % 4  # the same partition under other names
    assert cluster_accuracy(truth, renamed) == 1.0
    scores = clustering_scores(truth, renamed)
    assert scores["nmi"] == pytest.approx(1.0) and scores["ari"] == pytest.approx(1.0)
    merged = np.where(truth == 3, 2, truth)  # two classes in one cluster: one class wrong
    assert cluster_accuracy(truth, merged) == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    random = clustering_scores(truth, rng.integers(0, 4, 100))
    assert abs(random["ari"]) < 0.1 and random["nmi"] < 0.1


def test_kmeans_fits_one_set_and_assigns_another() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    fit = np.concatenate([c + rng.normal(0, 0.5, (50, 2)) for c in centres])
    test = np.concatenate([c + rng.normal(0, 0.5, (20, 2)) for c in centres])
    assigned = kmeans_assign(fit, test, 3, seed=0)
    assert cluster_accuracy(np.repeat(np.arange(3), 20), assigned) == 1.0
    with pytest.raises(ValueError, match="same width"):
        kmeans_assign(fit, test[:, :1], 3)


# --- the datasets ----------------------------------------------------------------------------


def test_canny_finds_a_one_pixel_contour_on_the_border() -> None:
    image = np.zeros((1, 32, 32))
    image[0, 8:24, 8:24] = 1.0
    edges = canny_edges(image)[0]
    ys, xs = np.nonzero(edges)
    border_distance = np.minimum(
        np.minimum(np.abs(ys - 7.5), np.abs(ys - 23.5)),
        np.minimum(np.abs(xs - 7.5), np.abs(xs - 23.5)),
    )
    assert border_distance.max() <= 1.0  # every edge pixel touches the square's border
    assert 56 <= edges.sum() <= 68  # about the perimeter: one pixel wide, closed
    assert not (edges[1:, 1:] * edges[:-1, 1:] * edges[1:, :-1] * edges[:-1, :-1]).any()
    assert canny_edges(np.zeros((1, 8, 8))).sum() == 0  # no gradient, no edges


def test_edges2digits_pairs_edges_with_their_digit() -> None:
    data = build_data("edges2digits", img_size=16)
    digits8 = build_data("digits")
    assert [len(s) for s in (data.train, data.val, data.test)] == [
        len(s) for s in (digits8.train, digits8.val, digits8.test)
    ]  # the digits dataset's split
    edges, images, labels = data.test.tensors
    assert torch.equal(labels, digits8.test.tensors[1])
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    assert 0.02 < edges.mean().item() < 0.3  # thin lines, not filled shapes
    assert images.shape == (len(labels), 1, 16, 16) and 0 <= images.min() <= images.max() <= 1
    # The edges lie where the digit's intensity changes (Sobel magnitude of the digit).
    from scipy import ndimage

    x, on_edge = images[:, 0].double().numpy(), edges[:, 0].numpy() > 0
    magnitude = np.hypot(ndimage.sobel(x, axis=1), ndimage.sobel(x, axis=2))
    assert magnitude[on_edge].mean() > 1.5 * magnitude[~on_edge].mean()
    assert data.info["task"] == "pix2pix" and data.info["in_chans"] == 1


def test_digit_styles_train_unpaired_evaluate_paired() -> None:
    data = build_data("digit_styles", img_size=16)
    a, b, la, lb = data.train.tensors
    assert a.shape[1:] == b.shape[1:] == (3, 16, 16)
    # No training digit is seen in both styles: no A image has its B rendering in the B set.
    digits8 = build_data("digits").train.tensors[0].numpy()[:, 0]
    rendered_b = torch.from_numpy(render_digits(digits8, "ink", 16))
    rendered_a = torch.from_numpy(render_digits(digits8, "chalk", 16))
    a_ids = {int(torch.nonzero((rendered_a - x).abs().flatten(1).amax(1) == 0)[0]) for x in a[:60]}
    b_ids = {int(torch.nonzero((rendered_b - x).abs().flatten(1).amax(1) == 0)[0]) for x in b[:60]}
    assert not a_ids & b_ids
    assert (la != lb).float().mean() > 0.7  # training pairs are mostly of different digits
    ta, tb, tla, tlb = data.test.tensors
    assert torch.equal(tla, tlb)  # the test split pairs each digit with itself
    # The styles: light strokes on a dark board, dark strokes on light paper.
    board, paper = (torch.tensor(DIGIT_STYLES[s]["paper"]) for s in ("chalk", "ink"))
    assert torch.allclose(ta[:, :, 0, 0].mean(0), board, atol=0.02)
    assert torch.allclose(tb[:, :, 0, 0].mean(0), paper, atol=0.02)
    judge = build_data("digit_styles", img_size=16, judge=True)
    x, y = judge.test.tensors
    assert judge.info["num_classes"] == 20 and len(x) == 2 * len(ta)
    assert torch.equal(y, torch.cat([tla, tla + 10]))
    with pytest.raises(ConfigError, match="must differ"):
        build_data("digit_styles", style_a="ink")


def test_masks2scenes_paints_each_class_its_way_deterministically() -> None:
    data = build_data("masks2scenes", n_train=8, n_val=0, n_test=8, img_size=32)
    again = build_data("masks2scenes", n_train=8, n_val=0, n_test=8, img_size=32)
    labels_rgb, scenes, masks = data.test.tensors
    assert torch.equal(scenes, again.test.tensors[1])
    assert torch.equal(labels_rgb, torch.from_numpy(colour_masks(masks.numpy())))
    background = (masks == 0)[:, None].expand_as(labels_rgb)
    assert (labels_rgb[background] == 0).all()  # LABEL_COLOURS[0]: black
    assert LABEL_COLOURS[0].tolist() == [0.0, 0.0, 0.0]
    # Inside shapes (away from outlines) the colours follow the class: balls are reddish,
    # squares bluish, triangles greenish.
    from scipy import ndimage

    for label, channel in ((1, 0), (2, 2), (3, 1)):
        inner = torch.from_numpy(
            ndimage.binary_erosion(masks.numpy() == label, iterations=1)[:, None]
        )
        if inner.any():
            colour = scenes.permute(1, 0, 2, 3)[:, inner[:, 0]].mean(dim=1)
            assert colour.argmax() == channel, (label, colour)
    swapped = build_data(
        "masks2scenes", n_train=8, n_val=0, n_test=8, direction="scenes_to_masks"
    ).test.tensors
    assert torch.equal(swapped[0], scenes) and torch.equal(swapped[1], labels_rgb)
    with pytest.raises(ConfigError, match="direction"):
        build_data("masks2scenes", direction="both")


# --- the published results -------------------------------------------------------------------


def _script(name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return run_script(name, *args, timeout=timeout)


@pytest.mark.parametrize("name", ["clustering", "style_transfer"])
def test_published_results_are_rendered_from_their_json(name: str) -> None:
    """Every figure of the markdown comes from the JSON the script wrote, and the figures
    that need no training re-measure the same (``--check --cheap``)."""
    md = ROOT / "benchmarks" / f"{name}.md"
    data = json.loads(md.with_suffix(".json").read_text())
    assert not data["meta"]["quick"]
    result = _script(f"{name}_results.py", "--check", "--cheap")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "check passed" in result.stdout


def test_published_clustering_claims_hold() -> None:
    data = json.loads((ROOT / "benchmarks" / "clustering.json").read_text())
    km = data["kmeans"]
    expected = {"raw", "pca2", "pca8", "pca16", "ae16", "dae16", "vae8", "ae2", "vae2", "resnet20"}
    assert set(km) == expected
    assert all(len(r["nmi"]) == 10 for r in km.values())
    # The supervised features cluster best; every representation beats chance by far.
    assert max(km, key=lambda k: np.mean(km[k]["nmi"])) == "resnet20"
    assert min(np.mean(r["nmi"]) for r in km.values()) > 0.4
    for image in ("latent_maps.png", "reconstructions.png"):
        assert (ROOT / "benchmarks" / "clustering" / image).stat().st_size > 0


def test_published_style_transfer_claims_hold() -> None:
    data = json.loads((ROOT / "benchmarks" / "style_transfer.json").read_text())
    for name, p in data["paired"].items():
        for run in (k for k in p if k.startswith("pix2pix")):
            assert p[run]["l1"] < p["mean_image"]["l1"], (name, run)  # beats the trivial output
    c = data["unpaired"]["cyclegan"]
    assert c["ab"]["domain"] > data["unpaired"]["identity"]["ab"]["domain"] + 0.5
    for image in ("edges2digits.png", "masks2scenes.png", "digit_styles.png"):
        assert (ROOT / "benchmarks" / "style_transfer" / image).stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["clustering", "style_transfer"])
def test_results_pipeline_end_to_end_quick(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.md"
    result = _script(
        f"{name}_results.py",
        "--quick",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--out",
        str(out),
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "--quick smoke run" in out.read_text()
    assert json.loads(out.with_suffix(".json").read_text())["meta"]["quick"]
