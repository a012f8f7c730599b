"""Section 4: autoencoders: reconstruction against the mean image, the denoising gain
(Vincent et al. 2008), and anomaly detection by reconstruction error (AUROC)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import checked, table, yes_no

from modelzoo.data import build_data
from modelzoo.metrics import auroc, mean_predictor_mse
from modelzoo.train.tasks.generative import save_image_grid
from reference_sections.harness import (
    Context,
    Run,
    Section,
    Timer,
    fmt_checked,
    fmt_seeds,
    fmt_wall,
    measured_line,
    pyplot,
    run_seeds,
    save_figure,
)

KEY = "autoencoder"
TITLE = "Autoencoders"
SEEDS = (0,)
AE_RECIPE = "configs/autoencoder/conv_autoencoder_digits.yaml"
DAE_RECIPE = "configs/autoencoder/denoising_autoencoder_digits.yaml"
AE_SEEN_RECIPE = "configs/autoencoder/conv_autoencoder_digits_0to4.yaml"
NOISE_SEED = 1234
MSE_REL_TOL = 0.05  # of the value (see the section text)
AUROC_TOL = 0.01


def masking_noise(x: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    """Zero each value with probability ``level`` (the denoising AE's noise), seeded."""
    rng = torch.Generator().manual_seed(seed)
    keep = torch.rand(x.shape, generator=rng) >= level
    return x * keep.to(x.device, x.dtype)


@torch.no_grad()
def reconstruct(run: Run, x: torch.Tensor) -> torch.Tensor:
    """A trained autoencoder's reconstructions of ``x`` (eval mode: no corruption)."""
    task = run.result.trainer.task
    task.model.eval()
    device = run.result.trainer.device
    out = [
        task.predict_step(x[i : i + 256].to(device)).float().cpu() for i in range(0, len(x), 256)
    ]
    return torch.cat(out)


def per_image_mse(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (recon.double() - target.double()).pow(2).flatten(1).mean(dim=1)


def anomaly_scores(
    run: Run, seen: Sequence[int], data_kwargs: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], int]:
    """Reconstruction errors of the full test split: seen classes, unseen ones, per class.

    Test images identical to one the AE trained on are dropped (their count is returned).
    """
    full = build_data("digits", **data_kwargs)
    x, y = full.test.tensors
    trained = run.result.data.train.tensors[0].flatten(1)
    flat = x.flatten(1)
    dup = (flat[:, None, :] == trained[None, :, :]).all(dim=2).any(dim=1)
    x, y = x[~dup], y[~dup]
    scores = per_image_mse(reconstruct(run, x), x).numpy()
    is_seen = np.isin(y.numpy(), list(seen))
    per_class = {int(c): scores[y.numpy() == c] for c in torch.unique(y).tolist()}
    return scores[~is_seen], scores[is_seen], per_class, int(dup.sum())


def _mse_tol(value: float) -> float:
    return float(f"{max(MSE_REL_TOL * value, 1e-4):.1g}")


def run(ctx: Context) -> Section:
    timer = Timer()
    seeds = ctx.seeds_or(SEEDS)
    ae = run_seeds(ctx, "conv_autoencoder", AE_RECIPE, [], seeds)
    dae = run_seeds(ctx, "denoising_autoencoder", DAE_RECIPE, [], seeds)
    seen_runs = run_seeds(ctx, "conv_autoencoder_0to4", AE_SEEN_RECIPE, [], seeds)

    data = ae[0].result.data
    x_train, x_test = data.train.tensors[0], data.test.tensors[0]
    baseline = mean_predictor_mse(x_train, x_test)
    corrupt = dae[0].model.corrupt
    if corrupt.noise != "masking":
        raise RuntimeError(
            f"{DAE_RECIPE} changed its noise to {corrupt.noise!r}; update this section"
        )
    level = corrupt.noise_level
    noisy = masking_noise(x_test, level, seed=NOISE_SEED)
    noisy_mse = float(per_image_mse(noisy, x_test).mean())

    clean: dict[str, list[float]] = {"ae": [], "dae": []}
    denoise: dict[str, list[float]] = {"ae": [], "dae": []}
    for key, rs in (("ae", ae), ("dae", dae)):
        for r in rs:
            clean[key].append(float(per_image_mse(reconstruct(r, x_test), x_test).mean()))
            denoise[key].append(float(per_image_mse(reconstruct(r, noisy), x_test).mean()))

    seen = [int(c) for c in seen_runs[0].result.trainer.recipe["data"]["classes"]]
    aurocs: list[float] = []
    per_class_auroc: dict[int, list[float]] = {}
    dropped = 0
    scores_for_plot = None
    for r in seen_runs:
        unseen_s, seen_s, per_class, dropped = anomaly_scores(r, seen, {})
        aurocs.append(auroc(unseen_s, seen_s))
        for c, s in per_class.items():
            if c not in seen:
                per_class_auroc.setdefault(c, []).append(auroc(s, seen_s))
        if scores_for_plot is None:
            scores_for_plot = (unseen_s, seen_s)

    rec_plot = ctx.plots_dir / "autoencoder_reconstructions.png"
    _plot_reconstructions(ae[0], dae[0], x_test, noisy, rec_plot)
    hist_plot = ctx.plots_dir / "autoencoder_anomaly_scores.png"
    _plot_anomaly(scores_for_plot, seen, statistics.mean(aurocs), hist_plot)

    mean = statistics.mean
    recon_rows = [
        [
            "conv autoencoder, clean test images",
            fmt_checked(clean["ae"], _mse_tol(mean(clean["ae"])), 4),
            f"{mean(clean['ae']) / baseline:.3f}",
            ae[0].recipe,
            fmt_seeds(ae),
            fmt_wall(ae),
        ],
        [
            "denoising autoencoder, clean test images",
            fmt_checked(clean["dae"], _mse_tol(mean(clean["dae"])), 4),
            f"{mean(clean['dae']) / baseline:.3f}",
            dae[0].recipe,
            fmt_seeds(dae),
            fmt_wall(dae),
        ],
        # Data-only figures: no training involved, so they reproduce exactly anywhere.
        ["the mean training image", checked(f"{baseline:.4f}", 0.0001), "1.000", "-", "-", "-"],
    ]
    denoise_rows = [
        ["the corrupted input itself", checked(f"{noisy_mse:.4f}", 0.0001), "-"],
        [
            "conv autoencoder",
            fmt_checked(denoise["ae"], _mse_tol(mean(denoise["ae"])), 4),
            ae[0].recipe,
        ],
        [
            "denoising autoencoder",
            fmt_checked(denoise["dae"], _mse_tol(mean(denoise["dae"])), 4),
            dae[0].recipe,
        ],
    ]
    gain = mean(denoise["ae"]) / mean(denoise["dae"])
    unseen_classes = sorted(per_class_auroc)
    mean_auroc = mean(aurocs)
    ratio = mean(clean["ae"]) / baseline
    verdict = [
        f"- **An autoencoder reconstructs far better than the mean image**: test MSE "
        f"{mean(clean['ae']):.4f} vs {baseline:.4f} ({ratio:.2f}×); under half: "
        f"{yes_no(ratio < 0.5)}.",
        f"- **Denoising training pays off on corrupted inputs** (Vincent et al. 2008): MSE "
        f"to the clean images {mean(denoise['dae']):.4f} (DAE) vs "
        f"{mean(denoise['ae']):.4f} (plain AE), {gain:.2f}× lower: {yes_no(gain > 1)}.",
        f"- **Reconstruction error flags unseen classes**: AUROC {mean_auroc:.3f} (0.5 is "
        f"chance) for digits {unseen_classes} against digits {list(seen)}; better than "
        f"chance by 0.1 or more: {yes_no(mean_auroc > 0.6)}.",
    ]
    body = "\n".join(
        [
            f"## 4. {TITLE} (`{KEY}`)",
            "",
            measured_line(ctx, KEY, timer, ae[0].device),
            "",
            f"Figures marked `[±t]` are re-checked by `--check {KEY}` (also in the default "
            f"test suite) within t: seeded single-thread CPU runs that reproduce to the "
            f"printed digit on the CPU named here; t is {MSE_REL_TOL:.0%} of a trained "
            f"model's MSE and {AUROC_TOL:g} of an AUROC, for another CPU's rounding. "
            f"Figures of the data alone (no training) must reproduce to the last digit.",
            "",
            "Reconstruction MSE per pixel (pixels in [0, 1]) on the digits test split "
            f"({len(x_test)} images, 8x8).",
            "",
            table(
                ["reconstruction of", "test MSE", "/ mean image", "recipe", "seeds", "wall-clock"],
                recon_rows,
            ),
            "",
            f"Denoising: the test images with {level:.0%} of their pixels zeroed (masking "
            f"noise, the DAE recipe's own; seed {NOISE_SEED}), reconstructed by each model in "
            f"eval mode and compared with the clean images.",
            "",
            table(["input → clean target", "MSE", "recipe"], denoise_rows),
            "",
            f"Anomaly detection: {seen_runs[0].recipe} trains the same autoencoder on digits "
            f"{list(seen)} only; every image of the full digits test split is scored by its "
            f"reconstruction MSE; AUROC of the unseen digits (positives) against the seen ones "
            f"(negatives), computed from ranks (Mann-Whitney; `modelzoo.metrics.auroc`). "
            f"{dropped} test image(s) identical to an AE training image were dropped. Seed(s) "
            f"{fmt_seeds(seen_runs)}; wall-clock {fmt_wall(seen_runs)}.",
            "",
            table(
                ["unseen digits vs seen", "AUROC"],
                [[f"all of {unseen_classes}", fmt_checked(aurocs, AUROC_TOL, 3)]]
                + [
                    [f"digit {c}", fmt_checked(per_class_auroc[c], AUROC_TOL, 3)]
                    for c in unseen_classes
                ],
            ),
            "",
            *verdict,
            "",
            f"![reconstructions]({ctx.link(rec_plot)})",
            "",
            f"![anomaly scores]({ctx.link(hist_plot)})",
        ]
    )
    return Section(KEY, body)


def _plot_reconstructions(
    ae: Run, dae: Run, x: torch.Tensor, noisy: torch.Tensor, path: Path
) -> None:
    n = 12
    rows = [
        x[:n],
        reconstruct(ae, x[:n]),
        noisy[:n],
        reconstruct(ae, noisy[:n]),
        reconstruct(dae, noisy[:n]),
    ]
    titles = ["test", "AE(test)", "noisy", "AE(noisy)", "DAE(noisy)"]
    save_image_grid(rows, path, titles=titles, ncols=n)


def _plot_anomaly(
    scores: tuple[np.ndarray, np.ndarray] | None,
    seen_classes: Sequence[int],
    value: float,
    path: Path,
) -> None:
    if scores is None:
        return
    plt = pyplot()
    unseen, seen = scores
    names = ",".join(str(c) for c in seen_classes)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, max(unseen.max(), seen.max()), 40)
    ax.hist(seen, bins=bins, alpha=0.6, label=f"seen digits ({names})", density=True)
    ax.hist(unseen, bins=bins, alpha=0.6, label="unseen digits", density=True)
    ax.set_xlabel("reconstruction MSE per image")
    ax.set_ylabel("density")
    ax.set_title(f"AE trained on {names}: anomaly scores (AUROC {value:.3f})")
    ax.legend()
    save_figure(fig, path)
