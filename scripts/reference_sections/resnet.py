"""Section 1: residual connections make a 56-layer net trainable; depth hurts only the plain net.

He et al. (2016), "Deep Residual Learning for Image Recognition", CVPR, fig. 6: the
CIFAR ResNets against their plain counterparts, here on sklearn's 8x8 digits.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from _common import table, yes_no

from reference_sections.harness import (
    Context,
    Run,
    Section,
    Timer,
    fmt_checked,
    fmt_seeds,
    fmt_sig,
    fmt_wall,
    measured_line,
    pyplot,
    run_seeds,
    save_figure,
    seed_tolerance,
    smooth,
)

KEY = "resnet"
TITLE = "Residual connections"
SEEDS = (0, 1, 2)
ACC_TOL = 1.0  # points of accuracy, on a mean of three seeds (see the section text)

EXPERIMENTS = [
    # (name, depth, shortcuts, recipe, overrides)
    ("resnet20", 20, True, "configs/resnet/resnet56_digits.yaml", ["model.name=resnet20"]),
    ("plain20", 20, False, "configs/resnet/plain56_digits.yaml", ["model.name=plain20"]),
    ("resnet56", 56, True, "configs/resnet/resnet56_digits.yaml", []),
    ("plain56", 56, False, "configs/resnet/plain56_digits.yaml", []),
]


def run(ctx: Context) -> Section:
    """Train the four nets on every seed and write the table, the verdicts and the curves."""
    timer = Timer()
    seeds = ctx.seeds_or(SEEDS)
    runs = {
        name: run_seeds(ctx, name, config, overrides, seeds)
        for name, _, _, config, overrides in EXPERIMENTS
    }
    train_acc = {
        name: [r.result.trainer.evaluate(r.result.data.train)["accuracy"] for r in rs]
        for name, rs in runs.items()
    }
    test_acc = {name: [r.test["accuracy"] for r in rs] for name, rs in runs.items()}
    last_loss = {
        name: [statistics.mean(r.step_losses()[-r.steps_per_epoch() :]) for r in rs]
        for name, rs in runs.items()
    }
    rows = []
    for name, depth, shortcuts, _, _ in EXPERIMENTS:
        rs = runs[name]
        rows.append(
            [
                f"`{name}`",
                depth,
                "yes" if shortcuts else "no",
                f"{rs[0].num_params() / 1e3:.0f} k",
                fmt_checked(test_acc[name], seed_tolerance(test_acc[name], ACC_TOL, 100), 1, 100),
                " / ".join(f"{100 * a:.1f}" for a in test_acc[name]),
                fmt_checked(train_acc[name], seed_tolerance(train_acc[name], ACC_TOL, 100), 1, 100),
                fmt_sig(last_loss[name]),
                rs[0].recipe,
                fmt_seeds(rs),
                fmt_wall(rs),
            ]
        )

    plot = ctx.plots_dir / "resnet_curves.png"
    _plot(runs, plot)

    digits = runs["resnet56"][0].result.data
    mean = {k: statistics.mean(v) for k, v in test_acc.items()}
    tr = {k: statistics.mean(v) for k, v in train_acc.items()}
    shortcut_wins = min(test_acc["resnet56"]) > max(test_acc["plain56"])
    plain_degrades = tr["plain56"] < tr["plain20"] - 0.01
    resnet_holds = tr["resnet56"] >= tr["resnet20"] - 0.01
    every_seed_trains = min(train_acc["resnet56"] + train_acc["resnet20"]) >= 0.9
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
        f"- **Every residual seed trains** (a recipe that diverges on some seeds is not a "
        f"result): every resnet20 and resnet56 seed reaches 90% training accuracy: "
        f"{yes_no(every_seed_trains)}.",
    ]
    body = "\n".join(
        [
            f"## 1. {TITLE} (`{KEY}`)",
            "",
            measured_line(ctx, KEY, timer, runs["resnet56"][0].device),
            "",
            "The CIFAR ResNets of He et al. (2016) and their plain counterparts (the same "
            f"layers without shortcuts) on sklearn's 8x8 digits ({len(digits.train)} train / "
            f"{len(digits.test)} test images), one SGD recipe for all four; the 20-layer nets "
            "use the 56-layer recipes with `model.name` overridden. The recipe follows the "
            "paper's CIFAR schedule in spirit: SGD with momentum 0.9 at lr 0.1, weight decay "
            "1e-4, and for the deep nets a warm-up at a small learning rate (the paper trains "
            "ResNet-110 at 0.01 until training error falls below 80%; here a linear warm-up "
            "over the first epochs) plus gradient-norm clipping, so that no seed diverges in "
            "the first steps (see the recipe's comment). Train accuracy is the final model "
            "on the training split in eval mode; last-epoch loss is the mean training loss "
            "over the final epoch.",
            "",
            f"Figures marked `[±t]` are re-checked by `python scripts/reference_results.py "
            f"--check {KEY}` within t. These are seeded single-thread CPU runs: on the CPU and "
            f"torch build named above they reproduce to the printed digit. Another CPU or BLAS "
            f"build rounds differently and sends each seed down another path; t is "
            f"{ACC_TOL:g} point of accuracy, or the standard error of the mean over the seeds "
            f"when that is larger (the plain 56-layer net's seeds spread widely).",
            "",
            table(
                [
                    "model",
                    "depth",
                    "shortcuts",
                    "params",
                    "test acc %",
                    "test acc % per seed",
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
    return Section(KEY, body)


def _plot(runs: dict[str, list[Run]], path: Path) -> None:
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {
        "resnet20": "tab:blue",
        "plain20": "tab:orange",
        "resnet56": "tab:green",
        "plain56": "tab:red",
    }
    for name, rs in runs.items():
        for i, r in enumerate(rs):
            losses = r.step_losses()
            label = name if i == 0 else None
            width, alpha = (1.6, 1.0) if i == 0 else (0.8, 0.4)
            ax_loss.plot(
                np.arange(1, len(losses) + 1),
                smooth(losses, r.steps_per_epoch()),
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
    save_figure(fig, path)
