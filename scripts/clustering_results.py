"""Autoencoders for dimensionality reduction and clustering, measured on the digits.

    OMP_NUM_THREADS=1 python scripts/clustering_results.py [--runs-dir runs/clustering]
        [--reuse-runs] [--out benchmarks/clustering.md] [--seeds 10]
    python scripts/clustering_results.py --check [--cheap]

What it measures, on sklearn's digits with the ``digits`` dataset's seed-0 split
(1259 train / 179 val / 359 test images; the shipped weights were trained and
selected on the train and val parts of the same split, so the test digits chose
nothing):

- k-means (k = 10, k-means++ with 10 restarts; scikit-learn) on each representation,
  **fit on the training digits and scored on the test digits** by NMI, ARI and
  cluster accuracy, over 10 k-means seeds: raw pixels; PCA (fit on the training
  digits) with 2, 8 and 16 components; the codes of the shipped conv autoencoder
  (``conv_autoencoder.digits``, 16-d) and VAE (``vae.digits``, the 8-d posterior
  mean); a denoising autoencoder (16-d) and 2-d autoencoder and VAE trained here by
  their recipes; and, as a supervised reference, the pre-logit features of the shipped
  ``resnet20.digits`` classifier. Latents come from ``mz.embed``.
- Reconstruction error (mean squared error per pixel on the test digits, in [0, 1])
  of each autoencoder against PCA with as many components as its code has
  dimensions (PCA reconstructions clipped to [0, 1], the autoencoders' output range).
- Pictures: 2-d latent maps of the test digits (PCA, the 2-d autoencoder and VAE, and
  a t-SNE of the 16-d autoencoder codes) and reconstructions side by side.

Every number goes to ``benchmarks/clustering.json`` and the markdown is rendered from
it. ``--check`` recomputes the numbers (training the recipe runs again unless
``--reuse-runs`` finds them) and compares them with the published JSON within small
tolerances, and checks that the markdown is the rendering of that JSON; ``--cheap``
restricts the check to what needs no training (raw pixels, PCA, the shipped weights,
the first k-means seed): seconds, for the test suite.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:  # `_common` lives next to this file
    sys.path.insert(0, str(SCRIPTS))

from _common import (  # noqa: E402  (puts the checkout on sys.path too)
    ROOT,
    cpu_name,
    rendering_problems,
    report_check,
    results_parser,
    run_seconds,
    start_measuring,
    table,
    write_results,
)

import modelzoo as mz  # noqa: E402
from modelzoo.config import load_recipe  # noqa: E402
from modelzoo.data import build_data  # noqa: E402
from modelzoo.embed import embed  # noqa: E402
from modelzoo.metrics.clustering import clustering_scores, kmeans_assign  # noqa: E402

_logger = logging.getLogger("clustering_results")

DEFAULT_OUT = ROOT / "benchmarks" / "clustering.md"
DEFAULT_RUNS = ROOT / "runs" / "clustering"
FIGURES = "clustering"  # folder of the figures, next to the markdown
NUM_CLUSTERS = 10
KMEANS_SEEDS = 10
# How far a re-run may land from the published numbers.
TOL_SCORE = 0.01  # NMI, ARI, accuracy
TOL_MSE_REL = 0.02  # reconstruction MSE, relative

# Recipe runs: key -> recipe (trained into RUNS/<key>).
RECIPES = {
    "dae16": "configs/autoencoder/denoising_autoencoder_digits.yaml",
    "ae2": "configs/autoencoder/conv_autoencoder_digits_clustering_2d.yaml",
    "vae2": "configs/autoencoder/vae_digits_clustering_2d.yaml",
}


@dataclass(frozen=True)
class Rep:
    """A representation of the digits that k-means clusters."""

    key: str
    label: str  # the table's row name
    source: str  # where it comes from (weights, recipe, sklearn)
    group: str  # unsupervised | supervised | baseline
    cheap: bool  # computable without training anything


REPS = [
    Rep("raw", "raw pixels (64-d)", "the images", "baseline", True),
    Rep("pca2", "PCA, 2 components", "sklearn PCA fit on the train digits", "baseline", True),
    Rep("pca8", "PCA, 8 components", "sklearn PCA fit on the train digits", "baseline", True),
    Rep("pca16", "PCA, 16 components", "sklearn PCA fit on the train digits", "baseline", True),
    Rep("ae16", "conv autoencoder, 16-d code", "`conv_autoencoder.digits`", "unsupervised", True),
    Rep("dae16", "denoising conv autoencoder, 16-d code", RECIPES["dae16"], "unsupervised", False),
    Rep("vae8", "VAE, 8-d posterior mean", "`vae.digits`", "unsupervised", True),
    Rep("ae2", "conv autoencoder, 2-d code", RECIPES["ae2"], "unsupervised", False),
    Rep("vae2", "VAE, 2-d posterior mean", RECIPES["vae2"], "unsupervised", False),
    Rep(
        "resnet20",
        "resnet20 pre-logit features (64-d)",
        "`resnet20.digits` (trained with the labels)",
        "supervised",
        True,
    ),
]
SHORT = {
    "raw": "raw",
    "pca2": "PCA-2",
    "pca8": "PCA-8",
    "pca16": "PCA-16",
    "ae16": "AE-16",
    "dae16": "DAE-16",
    "vae8": "VAE-8",
    "ae2": "AE-2",
    "vae2": "VAE-2",
    "resnet20": "resnet20",
}
# Reconstruction: (autoencoder key, PCA key with as many components).
RECON_PAIRS = [
    ("ae16", "pca16"),
    ("dae16", "pca16"),
    ("vae8", "pca8"),
    ("ae2", "pca2"),
    ("vae2", "pca2"),
]


# --- models ---------------------------------------------------------------------------------------


def load_run_model(run_dir: Path) -> torch.nn.Module:
    """The model of a finished run (its last checkpoint), in eval mode."""
    from modelzoo.train.checkpoint import load_checkpoint
    from modelzoo.train.recipes import build_run

    recipe = load_recipe(run_dir / "config.yaml", ["train.progress=false"])
    trainer, _ = build_run(recipe, None)
    state = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    trainer.model.load_state_dict(state["model"])
    return trainer.model.eval()


def train_runs(runs_dir: Path, reuse: bool, quick: bool) -> dict[str, Path]:
    """Train (or find) every recipe run; returns key -> run directory."""
    import shutil

    from modelzoo.train.recipes import train_recipe

    runs = {}
    for key, recipe_path in RECIPES.items():
        run_dir = runs_dir / key
        if reuse and (run_dir / "checkpoints" / "last.ckpt").is_file():
            _logger.info("reusing %s", run_dir)
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            overrides = ["train.progress=false", "train.tensorboard=false"]
            if quick:
                overrides.append("train.max_steps=4")
            _logger.info("training %s -> %s", recipe_path, run_dir)
            train_recipe(load_recipe(ROOT / recipe_path, overrides), run_dir)
        runs[key] = run_dir
    return runs


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Digits:
    x_train: torch.Tensor  # (N, 1, 8, 8) in [0, 1]
    y_train: np.ndarray
    x_test: torch.Tensor
    y_test: np.ndarray
    x16_train: torch.Tensor  # 16x16, as resnet20.digits takes them
    x16_test: torch.Tensor


def load_digits() -> Digits:
    data = build_data("digits")
    data16 = build_data("digits", img_size=16)
    x_train, y_train = data.train.tensors
    x_test, y_test = data.test.tensors
    return Digits(
        x_train,
        y_train.numpy(),
        x_test,
        y_test.numpy(),
        data16.train.tensors[0],
        data16.test.tensors[0],
    )


def representations(
    digits: Digits, runs: dict[str, Path], keys: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray, Any]]:
    """key -> (train features, test features, the model or PCA that made them)."""
    from sklearn.decomposition import PCA

    flat_train = digits.x_train.flatten(1).numpy().astype(np.float64)
    flat_test = digits.x_test.flatten(1).numpy().astype(np.float64)
    out: dict[str, tuple[np.ndarray, np.ndarray, Any]] = {}
    for key in keys:
        if key == "raw":
            out[key] = (flat_train, flat_test, None)
        elif key.startswith("pca"):
            pca = PCA(n_components=int(key[3:]), random_state=0).fit(flat_train)
            out[key] = (pca.transform(flat_train), pca.transform(flat_test), pca)
        else:
            if key == "ae16":
                model, x_train, x_test = (
                    mz.create("conv_autoencoder.digits"),
                    digits.x_train,
                    digits.x_test,
                )
            elif key == "vae8":
                model = mz.create("vae.digits")
                x_train, x_test = digits.x_train.flatten(1), digits.x_test.flatten(1)
            elif key == "resnet20":
                model = mz.create("resnet20.digits")
                x_train, x_test = digits.x16_train, digits.x16_test
            else:
                model = load_run_model(runs[key])
                flat = getattr(model, "in_features", None) is not None
                x_train = digits.x_train.flatten(1) if flat else digits.x_train
                x_test = digits.x_test.flatten(1) if flat else digits.x_test
            model.eval()
            out[key] = (embed(model, x_train).numpy(), embed(model, x_test).numpy(), model)
    return out


def kmeans_results(
    reps: dict[str, tuple[np.ndarray, np.ndarray, Any]], y_test: np.ndarray, seeds: list[int]
) -> dict[str, dict[str, Any]]:
    results = {}
    for key, (train, test, _) in reps.items():
        per_seed: dict[str, list[float]] = {"nmi": [], "ari": [], "accuracy": []}
        for seed in seeds:
            assigned = kmeans_assign(train, test, NUM_CLUSTERS, seed=seed)
            for name, value in clustering_scores(y_test, assigned).items():
                per_seed[name].append(value)
        results[key] = {"dim": int(train.shape[1]), "seeds": list(seeds), **per_seed}
        _logger.info(
            "%s: NMI %.3f ARI %.3f",
            key,
            statistics.mean(per_seed["nmi"]),
            statistics.mean(per_seed["ari"]),
        )
    return results


@torch.no_grad()
def reconstruct(key: str, model: Any, x_test: torch.Tensor) -> np.ndarray:
    """Test reconstructions (N, 64) in [0, 1]."""
    flat = x_test.flatten(1)
    if key.startswith("pca"):
        return np.clip(
            model.inverse_transform(model.transform(flat.numpy().astype(np.float64))), 0, 1
        )
    inputs = flat if getattr(model, "in_features", None) is not None else x_test
    recon = model(inputs)[0]  # AEOutput.recon / VAEOutput.recon (z = mu in eval mode)
    return recon.reshape(len(x_test), -1).double().numpy()


def recon_results(reps: dict[str, tuple], digits: Digits) -> dict[str, float]:
    target = digits.x_test.flatten(1).double().numpy()
    out = {}
    keys = {k for pair in RECON_PAIRS for k in pair if k in reps}
    for key in sorted(keys):
        out[key] = float(np.mean((reconstruct(key, reps[key][2], digits.x_test) - target) ** 2))
    mean_image = digits.x_train.flatten(1).double().numpy().mean(axis=0, keepdims=True)
    out["mean_image"] = float(np.mean((mean_image - target) ** 2))
    return out


# --- figures --------------------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latent_maps(reps: dict[str, tuple], y_test: np.ndarray, path: Path) -> None:
    from sklearn.manifold import TSNE

    plt = _plt()
    tsne = TSNE(n_components=2, perplexity=30, init="pca", random_state=0).fit_transform(
        reps["ae16"][1]
    )
    panels = [
        ("PCA, 2 components", reps["pca2"][1]),
        ("conv autoencoder, 2-d code", reps["ae2"][1]),
        ("VAE, 2-d posterior mean", reps["vae2"][1]),
        ("t-SNE of the 16-d autoencoder codes", tsne),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    cmap = plt.get_cmap("tab10")
    for ax, (title, points) in zip(axes, panels):
        for c in range(NUM_CLUSTERS):
            sel = y_test == c
            ax.scatter(points[sel, 0], points[sel, 1], s=7, color=cmap(c), alpha=0.7)
            cx, cy = np.median(points[sel], axis=0)
            ax.text(
                cx,
                cy,
                str(c),
                fontsize=13,
                weight="bold",
                ha="center",
                va="center",
                color=cmap(c),
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1},
            )
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "The 359 test digits, coloured by class (the class labels were not used)", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_reconstructions(reps: dict[str, tuple], digits: Digits, path: Path) -> None:
    plt = _plt()
    first = [int(np.flatnonzero(digits.y_test == c)[0]) for c in range(NUM_CLUSTERS)]
    x = digits.x_test[first]
    rows = [("test digit", x.flatten(1).numpy())]
    for key in ("ae16", "dae16", "pca16", "vae8", "pca8", "ae2", "vae2", "pca2"):
        if key in reps:
            rows.append((SHORT[key], reconstruct(key, reps[key][2], x)))
    fig, axes = plt.subplots(len(rows), len(first), figsize=(len(first) * 0.7, len(rows) * 0.75))
    for (name, images), ax_row in zip(rows, axes):
        for j, ax in enumerate(ax_row):
            ax.imshow(images[j].reshape(8, 8), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- the report -----------------------------------------------------------------------------------


def measure(
    runs_dir: Path, *, reuse: bool, quick: bool, seeds: list[int], cheap: bool, figures: Path | None
) -> dict[str, Any]:
    started = time.perf_counter()
    digits = load_digits()
    keys = [r.key for r in REPS if r.cheap or not cheap]
    runs = {} if cheap else train_runs(runs_dir, reuse, quick)
    reps = representations(digits, runs, keys)
    result: dict[str, Any] = {
        "kmeans": kmeans_results(reps, digits.y_test, seeds),
        "recon_mse": recon_results(reps, digits),
        "runs": {k: {"recipe": RECIPES[k], "seconds": run_seconds(p)} for k, p in runs.items()},
        "split": {"train": len(digits.y_train), "test": len(digits.y_test)},
    }
    if figures is not None:
        plot_latent_maps(reps, digits.y_test, figures / "latent_maps.png")
        plot_reconstructions(reps, digits, figures / "reconstructions.png")
    result["meta"] = {
        "date": date.today().isoformat(),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sklearn": _sklearn_version(),
        "seconds": time.perf_counter() - started,
        "quick": quick,
    }
    return result


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _stat(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _mean(result: dict[str, Any], key: str, metric: str = "nmi") -> float:
    return statistics.mean(result["kmeans"][key][metric])


def _versus(result: dict[str, Any], a: str, b: str, metric: str) -> str:
    """A sentence comparing two representations' mean scores, honest about the direction."""
    va, vb = _mean(result, a, metric), _mean(result, b, metric)
    sa, sb = (statistics.pstdev(result["kmeans"][k][metric]) for k in (a, b))
    margin = va - vb
    clear = abs(margin) > sa + sb
    word = "higher" if margin > 0 else "lower"
    name = {k.key: k.label for k in REPS}
    return (
        f"{name[a]} {va:.3f} vs {name[b]} {vb:.3f}: {abs(margin):.3f} {word}"
        f"{'' if clear else ' (within the spread over k-means seeds)'}"
    )


def _recon_verdict(ae: float, pca: float) -> str:
    """Which reconstructs better; within 5% of each other counts as a tie."""
    if abs(ae / pca - 1) <= 0.05:
        return "tie (within 5%)"
    return "autoencoder" if ae < pca else "**PCA**"


def render(result: dict[str, Any]) -> str:
    meta = result["meta"]
    name = {r.key: r for r in REPS}
    km = result["kmeans"]
    seeds = len(next(iter(km.values()))["seeds"])
    rows = []
    for rep in REPS:
        if rep.key not in km:
            continue
        r = km[rep.key]
        rows.append(
            [
                rep.label,
                r["dim"],
                _stat(r["nmi"]),
                _stat(r["ari"]),
                _stat(r["accuracy"]),
                rep.source,
            ]
        )
    mse = result["recon_mse"]
    recon_rows = [
        [
            name[ae].label,
            km[ae]["dim"],
            f"{mse[ae]:.4f}",
            f"{mse[pca]:.4f}",
            f"{mse[ae] / mse[pca]:.2f}",
            _recon_verdict(mse[ae], mse[pca]),
        ]
        for ae, pca in RECON_PAIRS
        if ae in mse and pca in mse
    ]
    runs = result["runs"]
    run_rows = [[f"`{r['recipe']}`", f"{r['seconds'] / 60:.1f} min"] for r in runs.values()]
    unsup = [k for k in ("ae16", "dae16", "vae8", "ae2", "vae2") if k in km]
    best = max(unsup, key=lambda k: _mean(result, k))
    findings = []
    for ae, pca in (
        ("ae16", "pca16"),
        ("dae16", "pca16"),
        ("vae8", "pca8"),
        ("ae2", "pca2"),
        ("vae2", "pca2"),
    ):
        if ae in km and pca in km:
            findings.append(f"- Same dimension, NMI: {_versus(result, ae, pca, 'nmi')}.")
    findings.append(
        f"- Best unsupervised representation by NMI against raw pixels: "
        f"{_versus(result, best, 'raw', 'nmi')}."
    )
    if "resnet20" in km:
        findings.append(
            f"- Features learned *with* the labels cluster far better (NMI "
            f"{_mean(result, 'resnet20'):.3f}): the supervised reference, not a fair competitor."
        )
    for ae, pca in RECON_PAIRS:
        if ae in mse and pca in mse:
            verdict = {
                "autoencoder": "the autoencoder reconstructs better",
                "**PCA**": "**PCA reconstructs better**",
            }.get(_recon_verdict(mse[ae], mse[pca]), "about the same (within 5%)")
            findings.append(
                f"- Reconstruction at {km[ae]['dim']} dimensions: {name[ae].label} MSE "
                f"{mse[ae]:.4f} vs PCA {mse[pca]:.4f}: {verdict}."
            )
    quick = (
        " **(a --quick smoke run: the recipe runs trained a few steps; not results)**"
        if meta["quick"]
        else ""
    )
    lines = [
        "# Autoencoders for dimensionality reduction and clustering",
        "",
        f"Measured by `python scripts/clustering_results.py` on {meta['date']}: {meta['cpu']}, "
        f"cpu, {meta['threads']} torch thread(s), torch {meta['torch']}, scikit-learn "
        f"{meta['sklearn']}; script wall-clock {meta['seconds'] / 60:.1f} min (training times "
        f"below).{quick} Every number below is in [clustering.json](clustering.json), re-checked "
        "by `python scripts/clustering_results.py --check`.",
        "",
        f"Data: sklearn's 8x8 digits, the `digits` dataset's seed-0 split "
        f"({result['split']['train']} training and {result['split']['test']} test images; the "
        "shipped weights were trained and selected on the training and validation parts of that "
        "split). k-means (k = 10, k-means++, 10 restarts) is **fit on the training digits and "
        f"scored on the test digits**, over {seeds} k-means seeds (mean ± standard deviation). "
        "Each model is one training run, so the spread is that of k-means alone, not of "
        "training. Latents come from `mz.embed(model, images)`.",
        "",
        "## k-means on each representation",
        "",
        table(["representation", "dim", "NMI", "ARI", "cluster accuracy", "from"], rows),
        "",
        "Cluster accuracy maps each cluster to one class (the best one-to-one matching).",
        "",
        "## Reconstruction error at equal code size",
        "",
        "Mean squared error per pixel on the test digits (pixels in [0, 1]); PCA's "
        "reconstructions are clipped to [0, 1]. Always predicting the mean training digit scores "
        f"{mse['mean_image']:.4f}. The autoencoders were trained on binary cross-entropy and the "
        "VAEs on the ELBO (cross-entropy plus a KL term that pulls the codes together), not on "
        "this squared error, which PCA minimizes directly among linear maps.",
        "",
        table(
            ["autoencoder", "code size", "autoencoder MSE", "PCA MSE", "ratio", "better"],
            recon_rows,
        ),
        "",
        "## Findings",
        "",
        *findings,
        "",
        "## Latent maps",
        "",
        "![2-d latent maps](clustering/latent_maps.png)",
        "",
        "The 2-d panels are the representations k-means scored above (PCA-2, AE-2, VAE-2); t-SNE "
        "(fit on the test codes themselves, for the picture only) shows the structure of the "
        "16-d codes.",
        "",
        "![reconstructions](clustering/reconstructions.png)",
        "",
        "## Recipes trained here",
        "",
        table(["recipe", "training wall-clock"], run_rows),
        "",
        "Run one with `OMP_NUM_THREADS=1 modelzoo train RECIPE`; the shipped weights come from "
        "`configs/zoo/conv_autoencoder_digits.yaml`, `configs/zoo/vae_digits.yaml` and "
        "`configs/zoo/resnet20_digits.yaml`.",
    ]
    return "\n".join(lines) + "\n"


# --- check ----------------------------------------------------------------------------------------


def compare(published: dict[str, Any], fresh: dict[str, Any], cheap: bool) -> list[str]:
    """Differences beyond the tolerances, as messages (empty when everything holds)."""
    problems = []
    for key, new in fresh["kmeans"].items():
        old = published["kmeans"].get(key)
        if old is None:
            problems.append(f"{key}: not in the published results")
            continue
        for metric in ("nmi", "ari", "accuracy"):
            for i, seed in enumerate(new["seeds"]):
                published_value = old[metric][old["seeds"].index(seed)]
                if abs(new[metric][i] - published_value) > TOL_SCORE:
                    problems.append(
                        f"{key} {metric} seed {seed}: published {published_value:.4f}, "
                        f"re-measured {new[metric][i]:.4f}"
                    )
    for key, value in fresh["recon_mse"].items():
        old = published["recon_mse"].get(key)
        if old is None or abs(value - old) > TOL_MSE_REL * old:
            problems.append(f"reconstruction {key}: published {old}, re-measured {value:.5f}")
    if not cheap and set(fresh["kmeans"]) != set(published["kmeans"]):
        problems.append(
            f"representations differ: {sorted(published['kmeans'])} vs {sorted(fresh['kmeans'])}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(
        __doc__.split("\n", 1)[0], DEFAULT_OUT, DEFAULT_RUNS, "with --check: no training, seed 0"
    )
    parser.add_argument("--seeds", type=int, default=KMEANS_SEEDS, help="k-means seeds 0..N-1")
    args = parser.parse_args(argv)
    start_measuring(args.threads)
    json_path = args.out.with_suffix(".json")
    if args.check:
        published, problems = rendering_problems(args.out, json_path, render)
        seeds = [0] if args.cheap else list(published["kmeans"]["raw"]["seeds"])
        fresh = measure(
            args.runs_dir,
            reuse=args.reuse_runs,
            quick=False,
            seeds=seeds,
            cheap=args.cheap,
            figures=None,
        )
        return report_check(problems + compare(published, fresh, args.cheap))
    result = measure(
        args.runs_dir,
        reuse=args.reuse_runs,
        quick=args.quick,
        seeds=list(range(args.seeds)),
        cheap=False,
        figures=args.out.parent / FIGURES,
    )
    write_results(args.out, json_path, result, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
