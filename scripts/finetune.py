"""Fine-tune a zoo model on new data, or measure the transfer reference result.

    # the same as `modelzoo finetune ...`:
    python scripts/finetune.py resnet20.digits_0to4 --data digits \\
        --data-arg classes=[5,6,7,8,9] --data-arg train_per_class=10
    # benchmarks/transfer_results.md (+ .png, .json):
    python scripts/finetune.py --reference

The first form is ``modelzoo finetune`` (same arguments; see ``--help``). The
reference compares, on digits 5-9 with a few labels per class, a ResNet-20
pretrained on digits 0-4 (the shipped ``resnet20.digits_0to4``: it has never
seen a 5-9) against the same network trained from scratch with the same budget
(optimizer steps, learning rate, schedule), over several seeds. Each seed draws
its own split and labelled subset (data seed = training seed), shared by every
arm, so differences are paired. Everything in the report is measured by this
run; nothing is typed in.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from modelzoo.finetune import finetune  # noqa: E402

_logger = logging.getLogger("finetune")

WEIGHTS = "resnet20.digits_0to4"
ARCH = "resnet20"
TARGET_CLASSES = [5, 6, 7, 8, 9]
IMG_SIZE = 16  # the size the weights were trained at (their recipe); scratch gets the same
BATCH_SIZE = 32


@dataclass(frozen=True)
class Arm:
    """One way of training on the target classes.

    Attributes:
        name: the label in the report.
        pretrained: start from ``WEIGHTS`` (else a fresh initialization).
        freeze: the share of the run with the backbone frozen (0: never, 1: throughout).
        layer_decay: per-layer learning-rate factor, or None.
        lr_factor: the arm's learning rate over the common one (a head trained alone
            from a fresh initialization needs more than a whole network does).
    """

    name: str
    pretrained: bool
    freeze: float = 0.0
    layer_decay: float | None = None
    lr_factor: float = 1.0


ARMS = [
    Arm("scratch", pretrained=False),
    Arm("fine-tune (all layers)", pretrained=True),
    Arm("fine-tune, head first (backbone frozen 1/3)", pretrained=True, freeze=1 / 3),
    Arm("fine-tune, layer decay 0.7", pretrained=True, layer_decay=0.7),
    Arm("linear probe (frozen backbone, lr x10)", pretrained=True, freeze=1.0, lr_factor=10.0),
]


def run_arm(arm: Arm, labels: int, seed: int, *, steps: int, lr: float) -> dict[str, float]:
    """Test metrics of one arm for one labelled subset (``seed``), after ``steps`` steps."""
    per_epoch = math.ceil(labels * len(TARGET_CLASSES) / BATCH_SIZE)
    epochs = math.ceil(steps / per_epoch)  # the schedule spans exactly the budget
    result = finetune(
        WEIGHTS if arm.pretrained else ARCH,
        "digits",
        data_kwargs={
            "classes": TARGET_CLASSES,
            "train_per_class": labels,
            "img_size": IMG_SIZE,
            "seed": seed,
        },
        epochs=epochs,
        lr=lr * arm.lr_factor,
        batch_size=BATCH_SIZE,
        freeze_epochs=round(arm.freeze * epochs),
        layer_decay=arm.layer_decay,
        seed=seed,
        device="cpu",
        progress=False,
        plots=False,
        # One evaluation, at the end: the final weights are the ones tested.
        train_options={"max_steps": steps, "eval_every": steps},
    )
    assert result.trainer.step == steps
    return result.test_metrics


def _test_size(seed: int) -> int:
    from modelzoo.data import build_data

    data = build_data("digits", classes=TARGET_CLASSES, img_size=IMG_SIZE, seed=seed)
    return len(data.test)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


Cell = tuple[int, int]  # (labelled images per class, optimizer steps)


def _cell_name(cell: Cell) -> str:
    return f"{cell[0]} labels/class, {cell[1]} steps"


def reference(
    *,
    labels: list[int],
    seeds: list[int],
    steps: list[int],
    lr: float,
    out: Path,
    arms: list[Arm] = ARMS,
) -> dict[str, Any]:
    """Run every arm for every label count, step budget and seed; write the report and plot."""
    cells: list[Cell] = [(n, k) for n in labels for k in steps]
    results: dict[str, dict[Cell, list[float]]] = {a.name: {c: [] for c in cells} for a in arms}
    started = time.perf_counter()
    for cell in cells:
        for seed in seeds:
            for arm in arms:
                t0 = time.perf_counter()
                accuracy = run_arm(arm, cell[0], seed, steps=cell[1], lr=lr)["accuracy"]
                results[arm.name][cell].append(accuracy)
                print(
                    f"{_cell_name(cell):<28} seed {seed}  {arm.name:<44} accuracy "
                    f"{accuracy:.4f}  ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
    seconds = time.perf_counter() - started
    settings = {
        "weights": WEIGHTS,
        "arch": ARCH,
        "target_classes": TARGET_CLASSES,
        "img_size": IMG_SIZE,
        "labels_per_class": labels,
        "steps": steps,
        "seeds": seeds,
        "batch_size": BATCH_SIZE,
        "test_images": _test_size(seeds[0]),
        "lr": lr,
        "seconds": round(seconds),
        "device": f"CPU ({platform.processor() or platform.machine()}), "
        f"{torch.get_num_threads()} torch thread(s)",
        "torch": torch.__version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    plot = out.with_suffix(".png")
    _plot(results, labels, steps, plot)
    out.write_text(_report(results, settings, arms, cells, plot.name))
    raw = {
        name: {_cell_name(c): v for c, v in by_cell.items()} for name, by_cell in results.items()
    }
    out.with_suffix(".json").write_text(
        json.dumps({"settings": settings, "test_accuracy": raw}, indent=2) + "\n"
    )
    return {"settings": settings, "results": results}


def _report(
    results: dict[str, dict[Cell, list[float]]],
    settings: dict[str, Any],
    arms: list[Arm],
    cells: list[Cell],
    plot_name: str,
) -> str:
    scratch = results[arms[0].name]
    n_seeds = len(settings["seeds"])
    head = [f"{n} labels, {k} steps" for n, k in cells]
    lines = [
        "# Transfer reference: digits 0-4 -> digits 5-9 with few labels",
        "",
        "Written by `python scripts/finetune.py --reference` "
        f"({settings['seconds']} s on {settings['device']}, torch {settings['torch']}). "
        "Every number below was measured by that run.",
        "",
        f"- pretrained: `{settings['weights']}`, a ResNet-20 trained on 16x16 digits 0-4 only "
        "(`configs/zoo/resnet20_digits_0to4.yaml`); it never saw a 5-9.",
        f"- task: the digits {settings['target_classes']} (relabelled 0-4), "
        f"{' or '.join(map(str, settings['labels_per_class']))} labelled training images per "
        "class, tested on the held-out 20% of those classes "
        f"({settings['test_images']} images for seed {settings['seeds'][0]}).",
        f"- budget, the same for every arm: {' or '.join(map(str, settings['steps']))} "
        f"optimizer steps (batch {settings['batch_size']}, as many epochs as that takes), "
        f"AdamW, lr {settings['lr']} (the linear probe, which trains only a fresh head: 10x), "
        "cosine schedule over the run, weight decay 0.01; the final weights are tested (no "
        "selection on the validation split). Head first: the backbone (BatchNorm statistics "
        "included) is frozen for the first third of the epochs, then everything trains.",
        f"- {n_seeds} seeds; seed s draws the split and the labelled subset (data seed s), "
        "initializes the head and orders the data (training seed s); every arm sees the same "
        "images for a given seed, so the gaps are paired differences.",
        "- scratch = the same architecture from a random initialization; its hyperparameters "
        "are the fine-tune's, not tuned for it.",
        "",
        "Test accuracy, mean ± standard deviation over seeds:",
        "",
        "| arm | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for arm in arms:
        cells_text = []
        for cell in cells:
            mean, std = _mean_std(results[arm.name][cell])
            cells_text.append(f"{mean:.3f} ± {std:.3f}")
        lines.append(f"| {arm.name} | " + " | ".join(cells_text) + " |")
    lines += [
        "",
        "Gap to scratch (arm - scratch per seed, then mean ± std; seeds where the arm is better):",
        "",
        "| arm | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for arm in arms[1:]:
        gaps = []
        for cell in cells:
            diff = [a - b for a, b in zip(results[arm.name][cell], scratch[cell])]
            g_mean, g_std = _mean_std(diff)
            gaps.append(f"{g_mean:+.3f} ± {g_std:.3f} ({sum(d > 0 for d in diff)}/{len(diff)})")
        lines.append(f"| {arm.name} | " + " | ".join(gaps) + " |")
    lines += [
        "",
        f"![test accuracy]({plot_name})",
        "",
        "Reading (generated from the numbers above):",
        "",
    ]
    lines += _reading(results, arms, cells)
    lines += ["", "Per seed:", ""]
    lines.append("| arm | cell | " + " | ".join(f"seed {s}" for s in settings["seeds"]) + " |")
    lines.append("|---|---|" + "---|" * n_seeds)
    for arm in arms:
        for cell in cells:
            values = " | ".join(f"{v:.3f}" for v in results[arm.name][cell])
            lines.append(f"| {arm.name} | {_cell_name(cell)} | {values} |")
    lines += [
        "",
        "Reproduce a cell with the CLI, e.g. 10 labels per class, 100 steps (2 steps per "
        "epoch), seed 0: `modelzoo finetune resnet20.digits_0to4 --data digits --data-arg "
        "classes=[5,6,7,8,9] --data-arg train_per_class=10 --data-arg seed=0 --seed 0 "
        "--epochs 50`; scratch: `modelzoo finetune resnet20 ... --data-arg img_size=16`. "
        "(The CLI also evaluates the validation split each epoch, which does not change "
        "training; its default thread count may change the last digits.)",
        "",
    ]
    return "\n".join(lines)


def _reading(
    results: dict[str, dict[Cell, list[float]]], arms: list[Arm], cells: list[Cell]
) -> list[str]:
    """One line per cell: the best arm, and how full fine-tuning compares with scratch."""
    scratch, full = arms[0].name, arms[1].name
    lines = []
    for cell in cells:
        best = max(arms, key=lambda a: statistics.fmean(results[a.name][cell]))
        diff = [a - b for a, b in zip(results[full][cell], results[scratch][cell])]
        mean, std = _mean_std(diff)
        # "Clear" when the paired gap is more than twice its spread and every seed agrees.
        clear = abs(mean) > 2 * std and len({d > 0 for d in diff}) == 1
        verdict = "beats" if mean > 0 else "trails"
        lines.append(
            f"- {_cell_name(cell)}: best arm {best.name} "
            f"({statistics.fmean(results[best.name][cell]):.3f}); {full} {verdict} scratch by "
            f"{abs(mean):.3f} ({'a clear' if clear else 'not a clear'} difference over "
            f"{len(diff)} seeds)."
        )
    return lines


def _plot(
    results: dict[str, dict[Cell, list[float]]], labels: list[int], steps: list[int], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(steps), figsize=(5.2 * len(steps), 4.2), sharey=True, squeeze=False
    )
    for ax, k in zip(axes[0], steps):
        for i, (name, by_cell) in enumerate(results.items()):
            values = [by_cell[(n, k)] for n in labels]
            means = [statistics.fmean(v) for v in values]
            stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            offset = (i - (len(results) - 1) / 2) * 0.12  # keep the error bars apart
            ax.errorbar(
                [n + offset for n in labels], means, yerr=stds, marker="o", capsize=3, label=name
            )
        ax.set_xticks(labels)
        ax.set_xlabel("labelled training images per class (digits 5-9)")
        ax.set_title(f"{k} optimizer steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (mean ± std over seeds)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("ResNet-20 on digits 5-9: pretrained on digits 0-4 vs scratch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--reference" not in argv:
        from modelzoo.cli import main as cli_main

        return cli_main(["finetune", *argv])
    parser = argparse.ArgumentParser(description="the transfer reference result")
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--labels", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[25, 100], help="optimizer-step budgets"
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "transfer_results.md", help="the report"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    reference(
        labels=args.labels,
        seeds=list(range(args.seeds)),
        steps=args.steps,
        lr=args.lr,
        out=args.out,
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
