"""Reference results: the field's classic claims, reproduced by modelzoo's own recipes.

    OMP_NUM_THREADS=1 python scripts/reference_results.py [SECTION ...] [--quick]
        [--threads 1] [--seeds 0,1,2] [--out benchmarks/reference_results.md]

Sections (all of them, in this order, when none is named):

- ``resnet``: resnet56 against plain56 (and resnet20 against plain20) on the digits:
  shortcuts make the deep net trainable; depth hurts only the plain net (He et al. 2016).
- ``recurrent``: LSTM and GRU against a tanh RNN on the adding problem at length 100,
  against the trivial predictor (Hochreiter & Schmidhuber 1997; Bengio et al. 1994).
- ``seq2seq``: a transformer against an attentional LSTM encoder-decoder on digit
  arithmetic: accuracy and training time per epoch (Vaswani et al. 2017).
- ``autoencoder``: reconstruction error against the mean image; the denoising gain
  (Vincent et al. 2008); anomaly detection AUROC on digit classes the AE never saw.
- ``generative``: DCGAN, cGAN and VAE samples judged by a digits classifier
  (confidence, class diversity; the cGAN's label accuracy), against real images and noise.
- ``dense_audio``: detection mAP@0.5, U-Net mean IoU, audio accuracy, CTC character
  error rate, and GAN augmentation of a few-label digits classifier (the longest
  section: the detection and segmentation recipes train on 64x64 images).

Every run goes through ``train_recipe`` with a recipe from configs/ (overrides are
stated next to each figure) into runs/reference/<name>/seed<k>/; nothing in the
markdown is typed in by hand. Each section is written as soon as it is done and
replaces only its own part of benchmarks/reference_results.md (between its
``<!-- section: NAME -->`` markers), so sections can be re-run one at a time and new
sections can be added: write ``section_<name>(ctx) -> Section`` and list it in SECTIONS.
Plots go to benchmarks/reference/. ``--quick`` trains a few steps per run (a smoke
test) and writes under runs/reference_quick/ instead, leaving the results alone.

Threads default to 1: on a shared 2-core machine, tiny models run far slower with two.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import platform
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from modelzoo.config import load_recipe  # noqa: E402
from modelzoo.data import build_data  # noqa: E402
from modelzoo.train.recipes import RunResult, build_run, train_recipe  # noqa: E402
from modelzoo.train.tasks.generative import save_image_grid  # noqa: E402
from modelzoo.train.trainer import move_to  # noqa: E402

_logger = logging.getLogger("reference_results")

DEFAULT_OUT = ROOT / "benchmarks" / "reference_results.md"
DEFAULT_RUNS = ROOT / "runs" / "reference"
QUICK_DIR = ROOT / "runs" / "reference_quick"
# What every run adds to its recipe: no progress bar, no per-run figures (this script
# draws its own), no TensorBoard events.
BOOKKEEPING = ["train.progress=false", "train.plots=false", "train.tensorboard=false"]
QUICK_STEPS = 8  # optimizer steps per run under --quick

HEADER = """# Reference results

Classic claims of the field, reproduced with modelzoo's own recipes and measured by
`scripts/reference_results.py`: every figure below comes from the runs that script
made (recipe, overrides, seeds and wall-clock are stated beside it); none is typed in.
Re-run one part with `OMP_NUM_THREADS=1 python scripts/reference_results.py SECTION`;
it replaces only that part of this file. Plots are in [reference/](reference/).
"""


# --- measuring functions ---------------------------------------------------------------------


def auroc(positive: Sequence[float] | np.ndarray, negative: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve: the chance that a positive scores above a negative.

    The Mann-Whitney statistic over average ranks, so a tie counts one half.

    Args:
        positive: scores of the positive class (e.g. anomalies).
        negative: scores of the negative class.

    Raises:
        ValueError: when either side is empty.
    """
    pos = np.asarray(positive, dtype=np.float64).ravel()
    neg = np.asarray(negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"auroc needs scores on both sides; got {pos.size} and {neg.size}")
    scores = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # 1-based rank of each distinct value, averaged over its ties.
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def classifier_measures(
    probs: torch.Tensor, labels: torch.Tensor | None = None
) -> dict[str, float]:
    """What a classifier makes of a set of images, from its class probabilities (N, K).

    Returns:
        ``confidence``: mean of the largest probability; ``class_entropy_bits``: entropy
        of the histogram of predicted classes (log2 K when every class is equally common,
        0 when all images get one class); ``classifier_score``: exp of the mean KL from
        p(y|x) to the mean p(y) (the Inception score, with this classifier);
        ``accuracy`` against ``labels`` when they are given.
    """
    probs = probs.double()
    predicted = probs.argmax(dim=1)
    share = torch.bincount(predicted, minlength=probs.shape[1]).double() / len(predicted)
    nonzero = share[share > 0]
    marginal = probs.mean(dim=0)
    kl = (probs * (probs.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(dim=1)
    out = {
        "confidence": float(probs.max(dim=1).values.mean()),
        "class_entropy_bits": 0.0 - float((nonzero * nonzero.log2()).sum()),  # no -0.0
        "classifier_score": float(kl.mean().exp()),
    }
    if labels is not None:
        out["accuracy"] = float((predicted == labels.to(predicted.device)).double().mean())
    return out


def mean_predictor_mse(train_targets: torch.Tensor, test_targets: torch.Tensor) -> float:
    """Test MSE of always predicting the training mean (per element; the trivial baseline)."""
    mean = train_targets.double().mean(dim=0, keepdim=True)
    return float((test_targets.double() - mean).pow(2).mean())


def masking_noise(x: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    """Zero each value with probability ``level`` (the denoising AE's noise), seeded."""
    rng = torch.Generator().manual_seed(seed)
    keep = torch.rand(x.shape, generator=rng) >= level
    return x * keep.to(x.device, x.dtype)


# --- the markdown file -------------------------------------------------------------------------

_BLOCK = re.compile(
    r"<!-- section: (?P<key>[\w-]+) -->\n.*?<!-- end section: (?P=key) -->\n?", re.DOTALL
)


def section_block(key: str, body: str) -> str:
    """A section's text between its markers (what merge_markdown replaces)."""
    return f"<!-- section: {key} -->\n{body.strip()}\n<!-- end section: {key} -->\n"


def merge_markdown(existing: str | None, key: str, body: str, order: Sequence[str] = ()) -> str:
    """The file with section ``key`` set to ``body``; every other section is kept as it was.

    Sections are laid out in ``order``; sections not in ``order`` (added by a later
    version of the script, or removed from it) follow, in the order the file had them.
    """
    blocks = {m["key"]: m.group(0) for m in _BLOCK.finditer(existing or "")}
    blocks[key] = section_block(key, body)
    keys = [k for k in order if k in blocks] + [k for k in blocks if k not in order]
    return HEADER + "".join("\n" + blocks[k].rstrip("\n") + "\n" for k in keys)


def write_section(path: Path, section: Section, order: Sequence[str]) -> None:
    existing = path.read_text() if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(merge_markdown(existing, section.key, section.body, order))
    tmp.replace(path)


# --- runs --------------------------------------------------------------------------------------


@dataclass
class Context:
    """Where runs, plots and the markdown go, and how long to train.

    Args:
        runs_dir: run directories (``<name>/seed<k>``).
        plots_dir: the section figures.
        out: the markdown file (plot links are relative to it).
        quick: a few optimizer steps per run (smoke test, not results).
        seeds: train seeds for every section; None uses each section's own.
        threads: torch threads (stated in the markdown).
    """

    runs_dir: Path
    plots_dir: Path
    out: Path
    quick: bool = False
    seeds: tuple[int, ...] | None = None
    threads: int = 1

    def seeds_or(self, default: Sequence[int]) -> tuple[int, ...]:
        return tuple(self.seeds) if self.seeds else tuple(default)

    def link(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.out.parent)).as_posix()


@dataclass
class Run:
    """One trained recipe: where it came from and what it gave."""

    name: str
    config: str
    overrides: list[str]
    seed: int
    wall_s: float
    result: RunResult

    @property
    def test(self) -> dict[str, float]:
        return self.result.test_metrics

    @property
    def model(self) -> torch.nn.Module:
        return self.result.trainer.model

    @property
    def recipe(self) -> str:
        """The recipe and its overrides as `modelzoo train` takes them (seed apart)."""
        return " ".join([f"`{self.config}`", *(f"`{o}`" for o in self.overrides)])

    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def step_losses(self, key: str = "loss") -> list[float]:
        return [s[key] for s in self.result.trainer.step_losses if key in s]

    def val_curve(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of a validation metric from the run's metrics.csv."""
        path = self.result.run_dir / "metrics.csv" if self.result.run_dir else None
        if path is None or not path.is_file():
            return [], []
        xs, ys = [], []
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if row.get(f"val_{key}"):
                    xs.append(float(row["epoch"]) + 1)  # evaluated after that epoch
                    ys.append(float(row[f"val_{key}"]))
        return xs, ys


def run_recipe(
    ctx: Context, name: str, config: str, overrides: Sequence[str] = (), *, seed: int = 0
) -> Run:
    """Train ``config`` (a path under the repository) with ``overrides`` via train_recipe."""
    extra = [f"train.seed={seed}", *BOOKKEEPING]
    if ctx.quick:
        extra += ["train.epochs=1", f"train.max_steps={QUICK_STEPS}"]
    recipe = load_recipe(ROOT / config, [*overrides, *extra])
    run_dir = ctx.runs_dir / name / f"seed{seed}"
    if run_dir.exists():  # a fresh run every time: these directories are the script's own
        shutil.rmtree(run_dir)
    _logger.info("training %s (seed %d): %s %s", name, seed, config, " ".join(overrides))
    start = time.perf_counter()
    result = train_recipe(recipe, run_dir)
    wall = time.perf_counter() - start
    _logger.info("  %.1f s, test %s", wall, _short(result.test_metrics))
    return Run(name, config, list(overrides), seed, wall, result)


def run_seeds(
    ctx: Context, name: str, config: str, overrides: Sequence[str], seeds: Sequence[int]
) -> list[Run]:
    return [run_recipe(ctx, name, config, overrides, seed=s) for s in seeds]


def _short(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


# --- formatting --------------------------------------------------------------------------------


@dataclass
class Section:
    key: str
    body: str


@dataclass
class Timer:
    start: float = field(default_factory=time.perf_counter)

    def minutes(self) -> float:
        return (time.perf_counter() - self.start) / 60


def fmt_stat(values: Sequence[float], digits: int = 3, scale: float = 1.0) -> str:
    """``mean ± std`` over seeds (just the value for one seed)."""
    vals = [v * scale for v in values]
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def fmt_sig(values: Sequence[float], sig: int = 2) -> str:
    """``mean ± std`` to ``sig`` significant digits (for values that span decades)."""
    if len(values) == 1:
        return f"{values[0]:.{sig}g}"
    return f"{statistics.mean(values):.{sig}g} ± {statistics.stdev(values):.{sig}g}"


def fmt_seeds(runs: Sequence[Run]) -> str:
    return ",".join(str(r.seed) for r in runs)


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def fmt_wall(runs: Sequence[Run]) -> str:
    walls = [r.wall_s for r in runs]
    each = fmt_seconds(statistics.mean(walls))
    return each if len(walls) == 1 else f"{each} per seed"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measured_line(ctx: Context, key: str, timer: Timer, device: str) -> str:
    quick = (
        " **`--quick` smoke run: a few steps per recipe; these numbers are not results.**"
        if ctx.quick
        else ""
    )
    return (
        f"Measured by `python scripts/reference_results.py {key}` on {date.today()}: "
        f"{_cpu()}, {device}, {ctx.threads} torch thread(s), torch {torch.__version__}; "
        f"section wall-clock {timer.minutes():.1f} min.{quick}"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _device(run: Run) -> str:
    return str(run.result.trainer.device)


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Running mean over ``window`` steps (shorter at the start)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    window = max(1, min(window, v.size))
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(v.size):
        lo = max(0, i + 1 - window)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _steps_per_epoch(run: Run) -> int:
    return max(1, math.ceil(len(run.result.data.train) / run.result.trainer.batch_size))


@torch.no_grad()
def _predict(model: torch.nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Model outputs for a tensor, in eval mode, batch by batch (on the model's device)."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat(
        [model(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
    )


# --- 1. resnet ---------------------------------------------------------------------------------

RESNET_EXPERIMENTS = [
    # (name, depth, shortcuts, recipe, overrides)
    ("resnet20", 20, True, "configs/resnet/resnet56_digits.yaml", ["model.name=resnet20"]),
    ("plain20", 20, False, "configs/resnet/plain56_digits.yaml", ["model.name=plain20"]),
    ("resnet56", 56, True, "configs/resnet/resnet56_digits.yaml", []),
    ("plain56", 56, False, "configs/resnet/plain56_digits.yaml", []),
]


def section_resnet(ctx: Context) -> Section:
    """Shortcuts make the 56-layer net trainable; depth hurts only the plain net."""
    timer = Timer()
    seeds = ctx.seeds_or((0, 1, 2))
    runs = {
        name: run_seeds(ctx, name, config, overrides, seeds)
        for name, _, _, config, overrides in RESNET_EXPERIMENTS
    }
    train_acc = {
        name: [r.result.trainer.evaluate(r.result.data.train)["accuracy"] for r in rs]
        for name, rs in runs.items()
    }
    test_acc = {name: [r.test["accuracy"] for r in rs] for name, rs in runs.items()}
    last_loss = {
        name: [statistics.mean(r.step_losses()[-_steps_per_epoch(r) :]) for r in rs]
        for name, rs in runs.items()
    }
    rows = []
    for name, depth, shortcuts, _, _ in RESNET_EXPERIMENTS:
        rs = runs[name]
        rows.append(
            [
                f"`{name}`",
                depth,
                "yes" if shortcuts else "no",
                f"{rs[0].num_params() / 1e3:.0f} k",
                fmt_stat(test_acc[name], 1, 100),
                fmt_stat(train_acc[name], 1, 100),
                fmt_sig(last_loss[name]),
                rs[0].recipe,
                fmt_seeds(rs),
                fmt_wall(rs),
            ]
        )

    plot = ctx.plots_dir / "resnet_curves.png"
    _plot_resnet(runs, plot)

    digits = runs["resnet56"][0].result.data
    mean = {k: statistics.mean(v) for k, v in test_acc.items()}
    tr = {k: statistics.mean(v) for k, v in train_acc.items()}
    shortcut_wins = min(test_acc["resnet56"]) > max(test_acc["plain56"])
    plain_degrades = tr["plain56"] < tr["plain20"] - 0.01
    resnet_holds = tr["resnet56"] >= tr["resnet20"] - 0.01
    n = len(seeds)
    verdict = [
        f"- **Shortcuts make the deep net trainable** (He et al. 2016, CVPR, fig. 6): test "
        f"accuracy resnet56 {100 * mean['resnet56']:.1f}% vs plain56 {100 * mean['plain56']:.1f}% "
        f"(mean of {n} seed(s)); every resnet56 seed beats every plain56 seed: "
        f"{yes_no(shortcut_wins)}.",
        f"- **Depth hurts only the plain net** (the degradation problem, measured on the "
        f"training set): plain20 → plain56 training accuracy {100 * tr['plain20']:.1f}% → "
        f"{100 * tr['plain56']:.1f}% (drops by more than 1 point: {yes_no(plain_degrades)}); "
        f"resnet20 → resnet56 {100 * tr['resnet20']:.1f}% → {100 * tr['resnet56']:.1f}% "
        f"(within 1 point or better: {yes_no(resnet_holds)}).",
    ]
    body = "\n".join(
        [
            "## 1. Residual connections (`resnet`)",
            "",
            measured_line(ctx, "resnet", timer, _device(runs["resnet56"][0])),
            "",
            "The CIFAR ResNets of He et al. (2016) and their plain counterparts (the same "
            f"layers without shortcuts) on sklearn's 8x8 digits ({len(digits.train)} train / "
            f"{len(digits.test)} test images), one SGD recipe for all four; the 20-layer nets "
            "use the 56-layer recipes with `model.name` overridden. Train accuracy is the "
            "final model on the training split in eval mode; last-epoch loss is the mean "
            "training loss over the final epoch.",
            "",
            table(
                [
                    "model",
                    "depth",
                    "shortcuts",
                    "params",
                    "test acc %",
                    "train acc %",
                    "last-epoch train loss",
                    "recipe",
                    "seeds",
                    "wall-clock",
                ],
                rows,
            ),
            "",
            *verdict,
            "",
            f"![training loss and validation accuracy]({ctx.link(plot)})",
        ]
    )
    return Section("resnet", body)


def _plot_resnet(runs: dict[str, list[Run]], path: Path) -> None:
    plt = _plt()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"resnet20": "tab:blue", "plain20": "tab:orange", "resnet56": "tab:green"}
    colors["plain56"] = "tab:red"
    for name, rs in runs.items():
        for i, r in enumerate(rs):
            losses = r.step_losses()
            label = name if i == 0 else None
            width, alpha = (1.6, 1.0) if i == 0 else (0.8, 0.4)
            smoothed = _smooth(losses, _steps_per_epoch(r))
            ax_loss.plot(
                np.arange(1, len(losses) + 1),
                smoothed,
                color=colors[name],
                lw=width,
                alpha=alpha,
                label=label,
            )
            xs, ys = r.val_curve("accuracy")
            ax_acc.plot(
                xs, [100 * y for y in ys], color=colors[name], lw=width, alpha=alpha, label=label
            )
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training loss (running mean over one epoch)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy %")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Digits: residual vs plain nets (thin lines: other seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- 2. recurrent ------------------------------------------------------------------------------

RECURRENT_EXPERIMENTS = [
    ("lstm", "configs/rnn/lstm_adding.yaml"),
    ("gru", "configs/rnn/gru_adding.yaml"),
    ("rnn", "configs/rnn/rnn_adding.yaml"),
]


def section_recurrent(ctx: Context) -> Section:
    """Gated recurrent nets solve the adding problem at length 100; a tanh RNN does not."""
    timer = Timer()
    seeds = ctx.seeds_or((0,))
    runs = {
        name: run_seeds(ctx, f"{name}_adding", config, [], seeds)
        for name, config in RECURRENT_EXPERIMENTS
    }
    data = runs["lstm"][0].result.data
    baseline = mean_predictor_mse(data.train.y, data.test.y)
    seq_len = int(data.test.lengths.max())
    mse = {name: [r.test["mse"] for r in rs] for name, rs in runs.items()}
    rows = [
        [
            f"`{rs[0].model.model_name}`",
            f"{rs[0].num_params() / 1e3:.1f} k",
            fmt_stat(mse[name], 4),
            fmt_stat([m / baseline for m in mse[name]], 3),
            rs[0].recipe,
            fmt_seeds(rs),
            fmt_wall(rs),
        ]
        for name, rs in runs.items()
    ]
    rows.append(["predict the training mean", "-", f"{baseline:.4f}", "1.000", "-", "-", "-"])
    plot = ctx.plots_dir / "recurrent_curves.png"
    _plot_recurrent(runs, baseline, plot)

    ratio = {k: statistics.mean(v) / baseline for k, v in mse.items()}
    gated_solve = ratio["lstm"] < 0.1 and ratio["gru"] < 0.1
    rnn_fails = ratio["rnn"] > 0.5
    verdict = [
        f"- **LSTM and GRU solve it** (test MSE under a tenth of the baseline): "
        f"LSTM {ratio['lstm']:.3f}, GRU {ratio['gru']:.3f} of the baseline: "
        f"{yes_no(gated_solve)}.",
        f"- **The tanh RNN does not learn it** (vanishing gradients, Bengio et al. 1994; "
        f"test MSE above half the baseline): {ratio['rnn']:.3f} of the baseline: "
        f"{yes_no(rnn_fails)}.",
    ]
    body = "\n".join(
        [
            "## 2. Gated recurrent nets and long-range dependencies (`recurrent`)",
            "",
            measured_line(ctx, "recurrent", timer, _device(runs["lstm"][0])),
            "",
            f"The adding problem (Hochreiter & Schmidhuber 1997; here as in Le et al. 2015): "
            f"sequences of length {seq_len} with two marked values; the target is their sum. "
            f"{len(data.train)} training, {len(data.test)} test sequences. The baseline "
            f"always predicts the mean training target (variance of a sum of two uniforms: "
            f"1/6 ≈ 0.167).",
            "",
            table(
                ["model", "params", "test MSE", "MSE / baseline", "recipe", "seeds", "wall-clock"],
                rows,
            ),
            "",
            *verdict,
            "",
            f"![adding problem curves]({ctx.link(plot)})",
        ]
    )
    return Section("recurrent", body)


def _plot_recurrent(runs: dict[str, list[Run]], baseline: float, path: Path) -> None:
    plt = _plt()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rs in runs.items():
        r = rs[0]
        losses = r.step_losses()
        ax_loss.plot(np.arange(1, len(losses) + 1), _smooth(losses, 20), label=name)
        xs, ys = r.val_curve("mse")
        ax_val.plot(xs, ys, marker="o", label=name)
    for ax in (ax_loss, ax_val):
        ax.axhline(baseline, color="k", ls="--", lw=1, label="predict the mean")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training MSE (running mean of 20 steps)")
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel("validation MSE")
    fig.suptitle("Adding problem, length 100 (seed of the first run)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- 3. seq2seq --------------------------------------------------------------------------------

SEQ2SEQ_EXPERIMENTS = [
    ("transformer", "configs/transformer/transformer_seq2seq_arithmetic.yaml"),
    ("lstm", "configs/rnn/lstm_seq2seq_arithmetic.yaml"),
]


def time_training_epoch(run: Run) -> float:
    """Seconds for one pass of training steps over the run's training split.

    The task's own training step, backward and an AdamW step, with the recipe's batch
    size and no evaluation; measured after the run (it changes the run's model, so call
    it last).
    """
    trainer, data = run.result.trainer, run.result.data
    task, model = trainer.task, trainer.model
    loader = DataLoader(
        data.train,
        batch_size=trainer.batch_size,
        shuffle=True,
        collate_fn=data.collate_fn,
        generator=torch.Generator().manual_seed(0),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    start = time.perf_counter()
    for batch in loader:
        batch = move_to(batch, trainer.device)
        loss = task.training_step(batch, "main")["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def section_seq2seq(ctx: Context) -> Section:
    """A transformer against an attentional LSTM encoder-decoder on digit arithmetic."""
    timer = Timer()
    seeds = ctx.seeds_or((0,))
    runs = {
        name: run_seeds(ctx, f"{name}_arithmetic", config, [], seeds)
        for name, config in SEQ2SEQ_EXPERIMENTS
    }
    rows, epoch_s = [], {}
    for name, rs in runs.items():
        # Timed one after the other, after training: the same machine load for both.
        epoch_s[name] = [time_training_epoch(r) for r in rs]
    for name, rs in runs.items():
        rows.append(
            [
                f"`{rs[0].model.model_name}`",
                f"{rs[0].num_params() / 1e3:.0f} k",
                fmt_stat([r.test["exact_match"] for r in rs], 1, 100),
                fmt_stat([r.test["token_accuracy_greedy"] for r in rs], 1, 100),
                fmt_stat([r.test["accuracy"] for r in rs], 1, 100),
                fmt_stat(epoch_s[name], 1),
                rs[0].result.trainer.config.epochs,
                rs[0].recipe,
                fmt_seeds(rs),
                fmt_wall(rs),
            ]
        )
    plot = ctx.plots_dir / "seq2seq_curves.png"
    _plot_seq2seq(runs, plot)
    data = runs["transformer"][0].result.data
    em = {k: statistics.mean(r.test["exact_match"] for r in rs) for k, rs in runs.items()}
    speed = {k: statistics.mean(v) for k, v in epoch_s.items()}
    verdict = [
        f"- **Accuracy**: exact match transformer {100 * em['transformer']:.1f}% vs LSTM "
        f"{100 * em['lstm']:.1f}%; the transformer is ahead: "
        f"{yes_no(em['transformer'] > em['lstm'])}.",
        f"- **Training time per epoch** (Vaswani et al. 2017 claim less training time "
        f"through parallelism): transformer {speed['transformer']:.1f} s vs LSTM "
        f"{speed['lstm']:.1f} s; the transformer's epoch is faster: "
        f"{yes_no(speed['transformer'] < speed['lstm'])}."
        + (
            f" With sources of at most {data.info['max_src_len']} tokens there is little "
            f"sequential work for the transformer to save."
            if speed["transformer"] >= speed["lstm"]
            else ""
        ),
    ]
    info = data.info
    body = "\n".join(
        [
            "## 3. Transformer vs recurrent encoder-decoder (`seq2seq`)",
            "",
            measured_line(ctx, "seq2seq", timer, _device(runs["transformer"][0])),
            "",
            f"Digit arithmetic (`arithmetic` data: a + b and a − b with up to "
            f"{info.get('num_digits')} digits per operand, {len(data.train)} training and "
            f"{len(data.test)} test problems). Exact match and greedy token accuracy come from "
            f"greedy decoding of the test split; teacher-forced accuracy is next-token accuracy "
            f"given the true prefix. Time per epoch is one pass of training steps (forward, "
            f"backward, AdamW step, no evaluation) over the training split at the recipe's batch "
            f"size, timed after training, one model after the other; wall-clock is the whole "
            f"run including the per-epoch greedy validation.",
            "",
            table(
                [
                    "model",
                    "params",
                    "exact match %",
                    "greedy token acc %",
                    "teacher-forced acc %",
                    "s / epoch",
                    "epochs",
                    "recipe",
                    "seeds",
                    "wall-clock",
                ],
                rows,
            ),
            "",
            *verdict,
            "",
            f"![validation exact match]({ctx.link(plot)})",
        ]
    )
    return Section("seq2seq", body)


def _plot_seq2seq(runs: dict[str, list[Run]], path: Path) -> None:
    plt = _plt()
    fig, (ax_loss, ax_em) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rs in runs.items():
        r = rs[0]
        losses = r.step_losses()
        ax_loss.plot(
            np.arange(1, len(losses) + 1), _smooth(losses, _steps_per_epoch(r)), label=name
        )
        xs, ys = r.val_curve("exact_match")
        ax_em.plot(xs, [100 * y for y in ys], marker="o", ms=3, label=name)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training cross-entropy (running mean over one epoch)")
    ax_em.set_xlabel("epoch")
    ax_em.set_ylabel("validation exact match % (greedy)")
    for ax in (ax_loss, ax_em):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Digit arithmetic: transformer vs LSTM encoder-decoder")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- 4. autoencoder ----------------------------------------------------------------------------

AE_RECIPE = "configs/autoencoder/conv_autoencoder_digits.yaml"
DAE_RECIPE = "configs/autoencoder/denoising_autoencoder_digits.yaml"
AE_SEEN_RECIPE = "configs/autoencoder/conv_autoencoder_digits_0to4.yaml"


@torch.no_grad()
def reconstruct(run: Run, x: torch.Tensor) -> torch.Tensor:
    """A trained autoencoder's reconstructions of ``x`` (eval mode: no corruption)."""
    task = run.result.trainer.task
    model = task.model
    model.eval()
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


def section_autoencoder(ctx: Context) -> Section:
    """Reconstruction vs the mean image, the denoising gain, and anomaly detection AUROC."""
    timer = Timer()
    seeds = ctx.seeds_or((0,))
    ae = run_seeds(ctx, "conv_autoencoder", AE_RECIPE, [], seeds)
    dae = run_seeds(ctx, "denoising_autoencoder", DAE_RECIPE, [], seeds)
    seen_runs = run_seeds(ctx, "conv_autoencoder_0to4", AE_SEEN_RECIPE, [], seeds)

    data = ae[0].result.data
    x_train, x_test = data.train.tensors[0], data.test.tensors[0]
    baseline = mean_predictor_mse(x_train, x_test)
    dae_model = dae[0].model
    noise, level = dae_model.corrupt.noise, dae_model.corrupt.noise_level
    if noise != "masking":
        raise RuntimeError(f"{DAE_RECIPE} changed its noise to {noise!r}; update this section")
    noisy = masking_noise(x_test, level, seed=1234)
    noisy_mse = float(per_image_mse(noisy, x_test).mean())

    clean = {"ae": [], "dae": []}
    denoise = {"ae": [], "dae": []}
    for key, rs in (("ae", ae), ("dae", dae)):
        for r in rs:
            clean[key].append(float(per_image_mse(reconstruct(r, x_test), x_test).mean()))
            denoise[key].append(float(per_image_mse(reconstruct(r, noisy), x_test).mean()))

    seen = [int(c) for c in seen_runs[0].result.trainer.recipe["data"]["classes"]]
    aurocs, per_class_auroc, dropped = [], {}, 0
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

    recon_rows = [
        [
            "conv autoencoder, clean test images",
            fmt_stat(clean["ae"], 4),
            f"{statistics.mean(clean['ae']) / baseline:.3f}",
            ae[0].recipe,
            fmt_seeds(ae),
            fmt_wall(ae),
        ],
        [
            "denoising autoencoder, clean test images",
            fmt_stat(clean["dae"], 4),
            f"{statistics.mean(clean['dae']) / baseline:.3f}",
            dae[0].recipe,
            fmt_seeds(dae),
            fmt_wall(dae),
        ],
        ["the mean training image", f"{baseline:.4f}", "1.000", "-", "-", "-"],
    ]
    denoise_rows = [
        ["the corrupted input itself", f"{noisy_mse:.4f}", "-"],
        ["conv autoencoder", fmt_stat(denoise["ae"], 4), ae[0].recipe],
        ["denoising autoencoder", fmt_stat(denoise["dae"], 4), dae[0].recipe],
    ]
    gain = statistics.mean(denoise["ae"]) / statistics.mean(denoise["dae"])
    unseen_classes = sorted(per_class_auroc)
    mean_auroc = statistics.mean(aurocs)
    verdict = [
        f"- **An autoencoder reconstructs far better than the mean image**: test MSE "
        f"{statistics.mean(clean['ae']):.4f} vs {baseline:.4f} "
        f"({statistics.mean(clean['ae']) / baseline:.2f}×): {yes_no(statistics.mean(clean['ae']) < 0.5 * baseline)}.",  # noqa: E501
        f"- **Denoising training pays off on corrupted inputs** (Vincent et al. 2008): MSE "
        f"to the clean images {statistics.mean(denoise['dae']):.4f} (DAE) vs "
        f"{statistics.mean(denoise['ae']):.4f} (plain AE), {gain:.2f}× lower: "
        f"{yes_no(gain > 1)}.",
        f"- **Reconstruction error flags unseen classes**: AUROC {mean_auroc:.3f} (0.5 is "
        f"chance) for digits {unseen_classes} against digits {list(seen)}; better than "
        f"chance by 0.1 or more: {yes_no(mean_auroc > 0.6)}.",
    ]
    body = "\n".join(
        [
            "## 4. Autoencoders (`autoencoder`)",
            "",
            measured_line(ctx, "autoencoder", timer, _device(ae[0])),
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
            f"noise, the DAE recipe's own; fixed seed), reconstructed by each model in eval "
            f"mode and compared with the clean images.",
            "",
            table(["input → clean target", "MSE", "recipe"], denoise_rows),
            "",
            f"Anomaly detection: {seen_runs[0].recipe} trains the same autoencoder on digits "
            f"{list(seen)} only; every image of the full digits test split is scored by its "
            f"reconstruction MSE; AUROC of the unseen digits (positives) against the seen ones "
            f"(negatives), computed from ranks (Mann-Whitney). {dropped} test image(s) "
            f"identical to an AE training image were dropped. Seed(s) "
            f"{fmt_seeds(seen_runs)}; wall-clock {fmt_wall(seen_runs)}.",
            "",
            table(
                ["unseen digits vs seen", "AUROC"],
                [[f"all of {unseen_classes}", fmt_stat(aurocs, 3)]]
                + [[f"digit {c}", fmt_stat(per_class_auroc[c], 3)] for c in unseen_classes],
            ),
            "",
            *verdict,
            "",
            f"![reconstructions]({ctx.link(rec_plot)})",
            "",
            f"![anomaly scores]({ctx.link(hist_plot)})",
        ]
    )
    return Section("autoencoder", body)


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
    scores: tuple[np.ndarray, np.ndarray], seen_classes: Sequence[int], value: float, path: Path
) -> None:
    plt = _plt()
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- 5. generative -----------------------------------------------------------------------------

CLASSIFIER16_RECIPE = "configs/cnn/cnn_small_digits16.yaml"
NUM_SAMPLES = 1000
SAMPLE_SEED = 2024


def gan_samples(run: Run, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` images from a trained GAN, in [0, 1] (seeded; eval mode)."""
    model = run.model.eval()
    rng = torch.Generator(device=run.result.trainer.device).manual_seed(SAMPLE_SEED)
    with torch.no_grad():
        if labels is not None:
            out = model.sample(n, labels=labels.to(run.result.trainer.device), generator=rng)
        else:
            out = model.sample(n, generator=rng)
    return ((out.float().cpu() + 1) / 2).clamp(0, 1)


def vae_samples(run: Run, n: int, img_size: int) -> torch.Tensor:
    """``n`` decoded prior draws of the digits VAE as (n, 1, img_size, img_size) in [0, 1]."""
    model = run.model.eval()
    rng = torch.Generator(device=run.result.trainer.device).manual_seed(SAMPLE_SEED)
    with torch.no_grad():
        out = model.sample(n, generator=rng).float().cpu()
    side = math.isqrt(out[0].numel())
    images = out.reshape(n, 1, side, side)  # flat 64-vectors back to 8x8 images
    if side != img_size:  # upsampled as the digits dataset upsamples (bilinear)
        images = F.interpolate(
            images, size=(img_size, img_size), mode="bilinear", align_corners=False
        )
    return images


def classify(classifier: Run, images: torch.Tensor) -> torch.Tensor:
    return _predict(classifier.model, images).softmax(dim=1)


def section_generative(ctx: Context) -> Section:
    """DCGAN, cGAN and VAE samples, judged by a digits classifier."""
    timer = Timer()
    seed = ctx.seeds_or((0,))[0]
    clf = run_recipe(ctx, "cnn_small_digits16", CLASSIFIER16_RECIPE, seed=seed)
    dcgan = run_recipe(ctx, "dcgan", "configs/gan/dcgan_digits.yaml", seed=seed)
    cgan = run_recipe(ctx, "cgan", "configs/gan/cgan_digits.yaml", seed=seed)
    vae = run_recipe(ctx, "vae", "configs/autoencoder/vae_digits.yaml", seed=seed)

    x_test, y_test = clf.result.data.test.tensors
    img_size = x_test.shape[-1]
    if dcgan.model.img_size != img_size or cgan.model.img_size != img_size:
        raise RuntimeError("the GAN recipes and the classifier recipe disagree on img_size")
    num_classes = cgan.model.num_classes
    cond = torch.arange(NUM_SAMPLES) % num_classes
    sets = {
        "real test images": (x_test, y_test, clf),
        "DCGAN samples": (gan_samples(dcgan, NUM_SAMPLES), None, dcgan),
        "cGAN samples (label = condition)": (gan_samples(cgan, NUM_SAMPLES, cond), cond, cgan),
        "VAE samples (decoded means)": (vae_samples(vae, NUM_SAMPLES, img_size), None, vae),
        "uniform noise": (
            torch.rand(
                NUM_SAMPLES,
                1,
                img_size,
                img_size,
                generator=torch.Generator().manual_seed(SAMPLE_SEED),
            ),
            None,
            None,
        ),
    }
    rows, measures = [], {}
    for label, (images, labels, run) in sets.items():
        m = classifier_measures(classify(clf, images), labels)
        measures[label] = m
        rows.append(
            [
                label,
                len(images),
                f"{m['confidence']:.3f}",
                f"{m['class_entropy_bits']:.2f}",
                f"{m['classifier_score']:.2f}",
                f"{100 * m['accuracy']:.1f}" if "accuracy" in m else "-",
                run.recipe if run is not None else "-",
                fmt_wall([run]) if run is not None else "-",
            ]
        )
    plot = ctx.plots_dir / "generative_samples.png"
    grid = [
        x_test[:20],
        sets["DCGAN samples"][0][:20],
        sets["cGAN samples (label = condition)"][0][:20],
        sets["VAE samples (decoded means)"][0][:20],
        sets["uniform noise"][0][:20],
    ]
    save_image_grid(grid, plot, titles=["real", "DCGAN", "cGAN", "VAE", "noise"], ncols=10)

    real, noise = measures["real test images"], measures["uniform noise"]
    gens = [k for k in measures if k not in ("real test images", "uniform noise")]
    max_h = math.log2(num_classes)
    lines = []
    for k in gens:
        m = measures[k]
        lines.append(
            f"- **{k.split(' (')[0]}**: confidence {m['confidence']:.3f} (real "
            f"{real['confidence']:.3f}, noise {noise['confidence']:.3f}); class entropy "
            f"{m['class_entropy_bits']:.2f} of {max_h:.2f} bits (real "
            f"{real['class_entropy_bits']:.2f}); above the noise floor on confidence: "
            f"{yes_no(m['confidence'] > noise['confidence'])}; at least 90% of the real "
            f"images' diversity: {yes_no(m['class_entropy_bits'] >= 0.9 * real['class_entropy_bits'])}."  # noqa: E501
        )
    acc = measures["cGAN samples (label = condition)"]["accuracy"]
    lines.append(
        f"- **The cGAN draws the digit it is asked for** (Mirza & Osindero 2014): the "
        f"classifier reads the conditioning label from {100 * acc:.1f}% of its samples "
        f"(chance {100 / num_classes:.0f}%; the classifier's own accuracy on real test images "
        f"is {100 * real['accuracy']:.1f}%)."
    )
    body = "\n".join(
        [
            "## 5. Generative models judged by a classifier (`generative`)",
            "",
            measured_line(ctx, "generative", timer, _device(clf)),
            "",
            f"A `cnn_small` trained on the digits at {img_size}x{img_size} "
            f"({clf.recipe}, seed {clf.seed}, test accuracy "
            f"{100 * clf.test['accuracy']:.1f}%) classifies {NUM_SAMPLES} samples of each "
            f"generative model (latents seeded), the {len(x_test)} real test images, and "
            f"uniform noise as a floor. Confidence is the mean largest class probability; class "
            f"entropy is the entropy of the histogram of predicted classes (diversity: "
            f"{max_h:.2f} bits when all {num_classes} digits are equally common); the "
            f"classifier score is the Inception score computed with this classifier "
            f"(1 to {num_classes}). The VAE's 8x8 samples (decoded means) are upsampled to "
            f"{img_size}x{img_size} as the dataset upsamples; the GANs are trained at "
            f"{img_size}x{img_size}. The cGAN draws {NUM_SAMPLES // num_classes} samples per "
            f"digit; its accuracy is the share the classifier assigns to the conditioning "
            f"label.",
            "",
            table(
                [
                    "images",
                    "n",
                    "confidence",
                    "class entropy (bits)",
                    "classifier score",
                    "accuracy vs label %",
                    "recipe (seed " + str(seed) + ")",
                    "wall-clock",
                ],
                rows,
            ),
            "",
            f"VAE test negative ELBO (nats per image): {vae.test.get('elbo', float('nan')):.1f}.",
            "",
            *lines,
            "",
            f"![samples: real, DCGAN, cGAN (columns are digits 0-9), VAE, noise]({ctx.link(plot)})",
        ]
    )
    return Section("generative", body)


# --- 6. dense_audio ----------------------------------------------------------------------------

DENSE_AUDIO_EXPERIMENTS = [
    # (name, recipe, metric key, shown as, scale, higher is better)
    (
        "fcos_tiny",
        "configs/detection/fcos_tiny_shapes.yaml",
        "map_50",
        "detection mAP@0.5 %",
        100,
        True,
    ),
    (
        "unet_tiny",
        "configs/segmentation/unet_shapes.yaml",
        "miou",
        "segmentation mean IoU %",
        100,
        True,
    ),
    (
        "audio_cnn",
        "configs/audio/audio_cnn_tones.yaml",
        "accuracy",
        "audio classification accuracy %",
        100,
        True,
    ),
    (
        "ctc_lstm",
        "configs/audio/ctc_lstm_dtmf.yaml",
        "cer",
        "CTC character error rate %",
        100,
        False,
    ),
]
FEW_CLASSIFIER_RECIPE = "configs/cnn/cnn_small_digits16_few.yaml"
FEW_CGAN_RECIPE = "configs/gan/cgan_digits_few.yaml"
FULL_CGAN_RECIPE = "configs/gan/cgan_digits.yaml"
GENERATED_PER_CLASS = 50


def generated_set(cgan: Run, per_class: int, num_classes: int) -> TensorDataset:
    """``per_class`` cGAN samples of each class, labelled with their condition, in [0, 1]."""
    labels = torch.arange(per_class * num_classes) % num_classes
    return TensorDataset(gan_samples(cgan, len(labels), labels), labels)


def train_augmented(
    ctx: Context, extra: TensorDataset, seed: int, num_real: int
) -> tuple[float, float, int]:
    """The few-label classifier recipe trained on its real images plus ``extra``.

    The epochs are scaled down so that it takes about as many optimizer steps as the
    recipe takes on the real images alone. Returns (test accuracy, wall seconds, epochs).
    """
    base = load_recipe(ROOT / FEW_CLASSIFIER_RECIPE)
    batch = int(base.data.get("batch_size", 32))
    real_steps = math.ceil(num_real / batch)
    aug_steps = math.ceil((num_real + len(extra)) / batch)
    epochs = max(1, round(base.train.epochs * real_steps / aug_steps))
    overrides = [f"train.epochs={epochs}", f"train.seed={seed}", *BOOKKEEPING]
    if ctx.quick:
        overrides += [f"train.max_steps={QUICK_STEPS}"]
    recipe = load_recipe(ROOT / FEW_CLASSIFIER_RECIPE, overrides)
    start = time.perf_counter()
    trainer, data = build_run(recipe, None)
    x_real, y_real = data.train.tensors
    x_extra, y_extra = extra.tensors
    train = TensorDataset(torch.cat([x_real, x_extra]), torch.cat([y_real, y_extra]))
    trainer.fit(train, data.val)
    accuracy = trainer.evaluate(data.test)["accuracy"]
    return accuracy, time.perf_counter() - start, epochs


def section_dense_audio(ctx: Context) -> Section:
    """Detection, segmentation, audio and CTC recipes, and GAN augmentation of few labels."""
    timer = Timer()
    seeds = ctx.seeds_or((0,))
    rows, device = [], "cpu"
    for name, config, key, shown, scale, higher in DENSE_AUDIO_EXPERIMENTS:
        if not (ROOT / config).is_file():
            rows.append([shown, "not measured: recipe missing", f"`{config}`", "-", "-"])
            continue
        rs = run_seeds(ctx, name, config, [], seeds)
        device = _device(rs[0])
        rows.append(
            [
                shown + (" (higher is better)" if higher else " (lower is better)"),
                fmt_stat([r.test[key] for r in rs], 1, scale),
                rs[0].recipe,
                fmt_seeds(rs),
                fmt_wall(rs),
            ]
        )

    # GAN augmentation: a classifier with a few labels per class, with and without cGAN samples.
    aug_seeds = ctx.seeds_or((0, 1, 2))
    few = run_seeds(ctx, "cnn_small_few", FEW_CLASSIFIER_RECIPE, [], aug_seeds)
    num_classes = few[0].result.data.info["num_classes"]
    per_class = len(few[0].result.data.train) // num_classes
    cgan_few = run_recipe(ctx, "cgan_few", FEW_CGAN_RECIPE, seed=0)
    cgan_full = run_recipe(ctx, "cgan_full", FULL_CGAN_RECIPE, seed=0)
    aug_rows = [
        [
            f"{per_class} real images per class",
            fmt_stat([r.test["accuracy"] for r in few], 1, 100),
            few[0].recipe,
            fmt_seeds(few),
            fmt_wall(few),
        ]
    ]
    gains, extras = {}, {}
    for label, cgan in (("few", cgan_few), ("full", cgan_full)):
        extra = extras[label] = generated_set(cgan, GENERATED_PER_CLASS, num_classes)
        results = [train_augmented(ctx, extra, s, len(few[0].result.data.train)) for s in aug_seeds]
        accs = [a for a, _, _ in results]
        gains[label] = statistics.mean(accs) - statistics.mean(r.test["accuracy"] for r in few)
        trained_on = (
            f"the same {per_class} images per class"
            if label == "few"
            else f"all {len(cgan.result.data.train)} labelled training images"
        )
        aug_rows.append(
            [
                f"+ {GENERATED_PER_CLASS} cGAN samples per class (cGAN trained on {trained_on}; "
                f"{cgan.recipe}, {fmt_seconds(cgan.wall_s)})",
                fmt_stat(accs, 1, 100),
                f"{few[0].recipe} `train.epochs={results[0][2]}`, training set extended",
                ",".join(str(s) for s in aug_seeds),
                f"{fmt_seconds(statistics.mean(w for _, w, _ in results))} per seed",
            ]
        )
    plot = ctx.plots_dir / "gan_augmentation_samples.png"
    x_few, y_few = few[0].result.data.train.tensors
    # Two real images of each class, a class per column, as the cGAN rows are laid out.
    real = torch.stack([x_few[y_few == c][i] for i in range(2) for c in range(num_classes)])
    save_image_grid(
        [
            real,
            extras["few"].tensors[0][: 2 * num_classes],
            extras["full"].tensors[0][: 2 * num_classes],
        ],
        plot,
        titles=["real (few)", "cGAN (few)", "cGAN (all)"],
        ncols=num_classes,
    )
    img_size = few[0].result.data.info["img_size"]
    body = "\n".join(
        [
            "## 6. Detection, segmentation, audio; GAN augmentation (`dense_audio`)",
            "",
            measured_line(ctx, "dense_audio", timer, device),
            "",
            "Test-split figures of the dense-prediction and audio recipes (generated shapes, "
            "tones and DTMF data; detection mAP at IoU 0.5, segmentation IoU averaged over "
            "classes, CTC character error rate = edit distance / reference length).",
            "",
            table(["measure", "test value", "recipe", "seeds", "wall-clock"], rows),
            "",
            f"GAN augmentation: the few-label classifier recipe ({per_class} real training "
            f"images per class, digits at {img_size}x{img_size}) alone, and with "
            f"{GENERATED_PER_CLASS} cGAN samples per class added to its training set "
            f"(labelled with their condition). "
            f"With samples added, the epochs are scaled down so both take about the same "
            f"number of optimizer steps; the augmented run uses `build_run` + `fit` on the "
            f"extended set (the recipe's model, task, optimizer and schedule). The fair "
            f"comparison is the cGAN trained on the same few images; the cGAN trained on the "
            f"whole training set has seen more labelled digits than the classifier, so it is "
            f"an upper reference, not a few-label result.",
            "",
            table(["training set", "test acc %", "recipe", "seeds", "wall-clock"], aug_rows),
            "",
            f"- **Fair setting** (cGAN on the same few images): accuracy change "
            f"{100 * gains['few']:+.1f} points; helps: {yes_no(gains['few'] > 0)}.",
            f"- **Upper reference** (cGAN on all training images): "
            f"{100 * gains['full']:+.1f} points.",
            "",
            f"![real few-label images and cGAN samples, one digit per column]({ctx.link(plot)})",
        ]
    )
    return Section("dense_audio", body)


# --- main --------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Context], Section]] = {
    "resnet": section_resnet,
    "recurrent": section_recurrent,
    "seq2seq": section_seq2seq,
    "autoencoder": section_autoencoder,
    "generative": section_generative,
    "dense_audio": section_dense_audio,
}
DEFAULT_SECTIONS = list(SECTIONS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"any of {', '.join(SECTIONS)} (default: {' '.join(DEFAULT_SECTIONS)})",
    )
    parser.add_argument("--quick", action="store_true", help="a few steps per run (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seeds", default=None, help="train seeds for every section, e.g. 0,1")
    parser.add_argument("--out", type=Path, default=None, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--runs-dir", type=Path, default=None, help=f"default {DEFAULT_RUNS}")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    base = QUICK_DIR if args.quick else None
    out = args.out or (base / "reference_results.md" if base else DEFAULT_OUT)
    ctx = Context(
        runs_dir=args.runs_dir or (base / "runs" if base else DEFAULT_RUNS),
        plots_dir=out.parent / "reference",
        out=out,
        quick=args.quick,
        seeds=tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None,
        threads=args.threads,
    )
    for name in args.sections or DEFAULT_SECTIONS:
        _logger.info("section %s", name)
        section = SECTIONS[name](ctx)
        write_section(ctx.out, section, list(SECTIONS))
        _logger.info("wrote section %s to %s", name, ctx.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
