"""Section 2: gated recurrent nets solve the adding problem at length 100; a tanh RNN does not.

Hochreiter & Schmidhuber (1997) for the LSTM and the adding problem (here as in Le et
al. 2015); Bengio et al. (1994) for the vanishing gradients of the plain RNN.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from _common import table, yes_no

from modelzoo.metrics import mean_predictor_mse
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
    smooth,
)

KEY = "recurrent"
TITLE = "Gated recurrent nets and long-range dependencies"
SEEDS = (0,)
# Relative tolerance of the test MSE: a converged gated net's MSE is small and moves by a
# few per cent with the rounding of another CPU; the unlearned RNN sits at the baseline.
MSE_REL_TOL = 0.15

EXPERIMENTS = [
    ("lstm", "configs/rnn/lstm_adding.yaml"),
    ("gru", "configs/rnn/gru_adding.yaml"),
    ("rnn", "configs/rnn/rnn_adding.yaml"),
]


def _tol(value: float) -> float:
    """A tolerance of MSE_REL_TOL of ``value``, to two significant digits."""
    return float(f"{max(MSE_REL_TOL * value, 1e-4):.2g}")


def run(ctx: Context) -> Section:
    timer = Timer()
    seeds = ctx.seeds_or(SEEDS)
    runs = {
        name: run_seeds(ctx, f"{name}_adding", config, [], seeds) for name, config in EXPERIMENTS
    }
    data = runs["lstm"][0].result.data
    baseline = mean_predictor_mse(data.train.y, data.test.y)
    seq_len = int(data.test.lengths.max())
    mse = {name: [r.test["mse"] for r in rs] for name, rs in runs.items()}
    rows = [
        [
            f"`{rs[0].model.model_name}`",
            f"{rs[0].num_params() / 1e3:.1f} k",
            fmt_checked(mse[name], _tol(statistics.mean(mse[name])), 4),
            fmt_checked(
                [m / baseline for m in mse[name]], _tol(statistics.mean(mse[name]) / baseline), 3
            ),
            rs[0].recipe,
            fmt_seeds(rs),
            fmt_wall(rs),
        ]
        for name, rs in runs.items()
    ]
    rows.append(["predict the training mean", "-", f"{baseline:.4f}", "1.000", "-", "-", "-"])
    plot = ctx.plots_dir / "recurrent_curves.png"
    _plot(runs, baseline, plot)

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
            f"## 2. {TITLE} (`{KEY}`)",
            "",
            measured_line(ctx, KEY, timer, runs["lstm"][0].device),
            "",
            f"The adding problem (Hochreiter & Schmidhuber 1997; here as in Le et al. 2015): "
            f"sequences of length {seq_len} with two marked values; the target is their sum. "
            f"{len(data.train)} training, {len(data.test)} test sequences. The baseline "
            f"always predicts the mean training target (variance of a sum of two uniforms: "
            f"1/6 ≈ 0.167).",
            "",
            f"Figures marked `[±t]` are re-checked by `--check {KEY}` within t: seeded "
            f"single-thread CPU runs that reproduce to the printed digit on the CPU named "
            f"above; t is {MSE_REL_TOL:.0%} of the value, for another CPU's rounding.",
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
    return Section(KEY, body)


def _plot(runs: dict[str, list[Run]], baseline: float, path: Path) -> None:
    plt = pyplot()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rs in runs.items():
        r = rs[0]
        losses = r.step_losses()
        ax_loss.plot(np.arange(1, len(losses) + 1), smooth(losses, 20), label=name)
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
    save_figure(fig, path)
