"""What every reference section uses: where runs go, training a recipe, formatting its figures.

A section trains recipes from configs/ through ``train_recipe`` (:func:`run_recipe`),
measures what it needs from the returned runs, and returns a :class:`Section`: its
markdown body. Figures that ``--check`` re-checks are written with
``_common.checked(text, tolerance)``; the tolerance is stated next to the figure.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import ROOT, checked, machine_line

from modelzoo.config import load_recipe
from modelzoo.train.recipes import RunResult, train_recipe

_logger = logging.getLogger("reference_results")

# What every run adds to its recipe: no progress bar, no per-run figures (the sections
# draw their own), no TensorBoard events.
BOOKKEEPING = ["train.progress=false", "train.plots=false", "train.tensorboard=false"]
QUICK_STEPS = 8  # optimizer steps per run under --quick


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
class Section:
    """A section's key and its markdown body (between its markers in the file)."""

    key: str
    body: str


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
    def device(self) -> str:
        return str(self.result.trainer.device)

    @property
    def recipe(self) -> str:
        """The recipe and its overrides as `modelzoo train` takes them (seed apart)."""
        return " ".join([f"`{self.config}`", *(f"`{o}`" for o in self.overrides)])

    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def step_losses(self, key: str = "loss") -> list[float]:
        return [s[key] for s in self.result.trainer.step_losses if key in s]

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.result.data.train) / self.result.trainer.batch_size))

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


def quick_overrides(ctx: Context) -> list[str]:
    """What ``--quick`` adds to a recipe: one epoch of a few steps."""
    return ["train.epochs=1", f"train.max_steps={QUICK_STEPS}"] if ctx.quick else []


def run_recipe(
    ctx: Context, name: str, config: str, overrides: Sequence[str] = (), *, seed: int = 0
) -> Run:
    """Train ``config`` (a path under the repository) with ``overrides`` via train_recipe."""
    extra = [f"train.seed={seed}", *BOOKKEEPING, *quick_overrides(ctx)]
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


def fmt_checked(
    values: Sequence[float], tolerance: float, digits: int = 3, scale: float = 1.0
) -> str:
    """:func:`fmt_stat`, marked as re-checked by ``--check`` within ``tolerance``."""
    return checked(fmt_stat(values, digits, scale), tolerance)


def seed_tolerance(values: Sequence[float], floor: float, scale: float = 1.0) -> float:
    """A check tolerance for a mean over seeds: ``floor``, or the standard error of the mean
    when that is larger (a mean of seeds that spread widely moves more when another CPU's
    rounding sends each seed down another path)."""
    if len(values) < 2:
        return floor
    sem = statistics.stdev(v * scale for v in values) / math.sqrt(len(values))
    return max(floor, float(f"{sem:.1g}"))


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


def measured_line(ctx: Context, key: str, timer: Timer, device: str) -> str:
    quick = (
        " **`--quick` smoke run: a few steps per recipe; these numbers are not results.**"
        if ctx.quick
        else ""
    )
    return (
        f"Measured by `python scripts/reference_results.py {key}` on {date.today()}: "
        f"{machine_line(ctx.threads, device)}; section wall-clock {timer.minutes():.1f} min.{quick}"
    )


# --- plots and predictions ---------------------------------------------------------------------


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Running mean over ``window`` steps (shorter at the start)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    window = max(1, min(window, v.size))
    c = np.cumsum(np.insert(v, 0, 0.0))
    lo = np.maximum(0, np.arange(1, v.size + 1) - window)
    return (c[1:] - c[lo]) / (np.arange(1, v.size + 1) - lo)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Model outputs for a tensor, in eval mode, batch by batch (on the model's device)."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat(
        [model(x[i : i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
    )
