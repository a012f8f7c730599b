"""What pretraining buys with few labels: benchmarks/finetune_few_labels.md (+ .json, .png).

    python scripts/finetune_few_labels.py                  # run the protocol, rewrite the files
    python scripts/finetune_few_labels.py --check          # re-run it, compare with the files
    python scripts/finetune_few_labels.py --check --quick  # one cell and seed (the test suite)

On digits 5-9 with a few labels per class, a ResNet-20 pretrained on digits 0-4
(the shipped ``resnet20.digits_0to4``: it has never seen a 5-9) is fine-tuned in
several ways and compared with the same network trained from scratch with the same
budget (optimizer steps, learning rate, schedule), over several seeds. Each seed
draws its own split and labelled subset (data seed = training seed), shared by every
arm, so differences are paired. Every number in the report is measured by this
script; nothing is typed in.

``--check`` first confirms that the committed report is the one this script renders
from the committed JSON, with the protocol (arms, budgets, seeds) this script runs;
then it re-runs the protocol (``--quick``: one cell, one seed, two arms) and fails
when a per-seed test accuracy differs from the committed one by more than
``TOLERANCE``. A single fine-tune is ``modelzoo finetune`` (the report says how to
reproduce a cell with it).
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from modelzoo.finetune import finetune  # noqa: E402

OUT = ROOT / "benchmarks" / "finetune_few_labels.md"
WEIGHTS = "resnet20.digits_0to4"
ARCH = "resnet20"
TARGET_CLASSES = [5, 6, 7, 8, 9]
IMG_SIZE = 16  # the size the weights were trained at (their recipe); scratch gets the same
BATCH_SIZE = 32
LABELS = [5, 10]  # labelled training images per class
STEPS = [25, 100]  # optimizer-step budgets
SEEDS = 5
LR = 1e-3
# Seeded runs on one CPU thread reproduce exactly on the same machine and torch version;
# another CPU or version may round sums differently and flip a prediction or two.
TOLERANCE = 0.02  # test accuracy, absolute (4 of the 179 test images of seed 0)


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

Cell = tuple[int, int]  # (labelled images per class, optimizer steps)


def run_arm(arm: Arm, labels: int, seed: int, *, steps: int, lr: float) -> float:
    """Test accuracy of one arm for one labelled subset (``seed``), after ``steps`` steps."""
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
    if result.trainer.step != steps:
        raise RuntimeError(f"{arm.name}: ran {result.trainer.step} steps, not {steps}")
    return result.test_metrics["accuracy"]


def _cell_name(cell: Cell) -> str:
    return f"{cell[0]} labels/class, {cell[1]} steps"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _test_size(seed: int) -> int:
    from modelzoo.data import build_data

    data = build_data("digits", classes=TARGET_CLASSES, img_size=IMG_SIZE, seed=seed)
    return len(data.test)


def measure(
    arms: list[Arm], cells: list[Cell], seeds: list[int], lr: float
) -> dict[str, dict[str, list[float]]]:
    """arm name -> cell name -> test accuracy per seed."""
    results: dict[str, dict[str, list[float]]] = {a.name: {} for a in arms}
    for cell in cells:
        for seed in seeds:
            for arm in arms:
                started = time.perf_counter()
                accuracy = run_arm(arm, cell[0], seed, steps=cell[1], lr=lr)
                results[arm.name].setdefault(_cell_name(cell), []).append(accuracy)
                print(
                    f"{_cell_name(cell):<28} seed {seed}  {arm.name:<44} accuracy "
                    f"{accuracy:.4f}  ({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    return results


def write(out: Path, *, labels: list[int], steps: list[int], seeds: list[int], lr: float) -> None:
    """Run every arm for every label count, step budget and seed; write report, JSON, plot."""
    cells = [(n, k) for n in labels for k in steps]
    started = time.perf_counter()
    results = measure(ARMS, cells, seeds, lr)
    settings = {
        "script": "scripts/finetune_few_labels.py",
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
        "tolerance": TOLERANCE,
        "arms": [asdict(a) for a in ARMS],
        "seconds": round(time.perf_counter() - started),
        "device": f"CPU ({platform.processor() or platform.machine()}), "
        f"{torch.get_num_threads()} torch thread(s)",
        "torch": torch.__version__,
    }
    payload = {"settings": settings, "test_accuracy": results}
    from modelzoo.utils.io import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    _plot(payload, out.with_suffix(".png"))
    atomic_write_text(out.with_suffix(".json"), json.dumps(payload, indent=2) + "\n")
    atomic_write_text(out, render(payload, out.with_suffix(".png").name))


# ------------------------------------------------------------------------------ the report


def render(payload: dict[str, Any], plot_name: str) -> str:
    """The Markdown report, from the JSON alone (so ``--check`` can re-render it)."""
    settings, results = payload["settings"], payload["test_accuracy"]
    arms = [a["name"] for a in settings["arms"]]
    cells = [(n, k) for n in settings["labels_per_class"] for k in settings["steps"]]
    names = [_cell_name(c) for c in cells]
    head = [f"{n} labels, {k} steps" for n, k in cells]
    scratch = results[arms[0]]
    lines = [
        "# Fine-tuning with few labels: digits 0-4 -> digits 5-9",
        "",
        "Written by `python scripts/finetune_few_labels.py` "
        f"({settings['seconds']} s on {settings['device']}, torch {settings['torch']}). "
        "Every number below was measured by that run; `python scripts/finetune_few_labels.py "
        "--check` re-runs it and accepts each per-seed accuracy within "
        f"±{settings['tolerance']} of the one here (seeded one-thread CPU runs reproduce "
        "exactly on the same machine and torch version; another CPU may flip a prediction "
        "or two). The test suite re-runs one cell (`--check --quick`).",
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
        f"- {len(settings['seeds'])} seeds; seed s draws the split and the labelled subset "
        "(data seed s), initializes the head and orders the data (training seed s); every arm "
        "sees the same images for a given seed, so the gaps are paired differences.",
        "- scratch = the same architecture from a random initialization; its hyperparameters "
        "are the fine-tune's, not tuned for it.",
        "",
        "Test accuracy, mean ± standard deviation over seeds:",
        "",
        "| arm | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for arm in arms:
        shown = ["{:.3f} ± {:.3f}".format(*_mean_std(results[arm][name])) for name in names]
        lines.append(f"| {arm} | " + " | ".join(shown) + " |")
    lines += [
        "",
        "Gap to scratch (arm - scratch per seed, then mean ± std; seeds where the arm is better):",
        "",
        "| arm | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for arm in arms[1:]:
        gaps = []
        for name in names:
            diff = [a - b for a, b in zip(results[arm][name], scratch[name])]
            g_mean, g_std = _mean_std(diff)
            gaps.append(f"{g_mean:+.3f} ± {g_std:.3f} ({sum(d > 0 for d in diff)}/{len(diff)})")
        lines.append(f"| {arm} | " + " | ".join(gaps) + " |")
    lines += ["", f"![test accuracy]({plot_name})", "", "Reading (generated from the numbers):", ""]
    lines += _reading(results, arms, names)
    lines += ["", "Per seed:", ""]
    lines.append("| arm | cell | " + " | ".join(f"seed {s}" for s in settings["seeds"]) + " |")
    lines.append("|---|---|" + "---|" * len(settings["seeds"]))
    for arm in arms:
        for name in names:
            values = " | ".join(f"{v:.3f}" for v in results[arm][name])
            lines.append(f"| {arm} | {name} | {values} |")
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
    results: dict[str, dict[str, list[float]]], arms: list[str], names: list[str]
) -> list[str]:
    """One line per cell: the best arm, and how full fine-tuning compares with scratch."""
    scratch, full = arms[0], arms[1]
    lines = []
    for name in names:
        best = max(arms, key=lambda a: statistics.fmean(results[a][name]))
        diff = [a - b for a, b in zip(results[full][name], results[scratch][name])]
        mean, std = _mean_std(diff)
        # "Clear" when the paired gap is more than twice its spread and every seed agrees.
        clear = abs(mean) > 2 * std and len({d > 0 for d in diff}) == 1
        verdict = "beats" if mean > 0 else "trails"
        lines.append(
            f"- {name}: best arm {best} ({statistics.fmean(results[best][name]):.3f}); {full} "
            f"{verdict} scratch by {abs(mean):.3f} ({'a clear' if clear else 'not a clear'} "
            f"difference over {len(diff)} seeds)."
        )
    return lines


def _plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings, results = payload["settings"], payload["test_accuracy"]
    labels, steps = settings["labels_per_class"], settings["steps"]
    fig, axes = plt.subplots(
        1, len(steps), figsize=(5.2 * len(steps), 4.2), sharey=True, squeeze=False
    )
    for ax, k in zip(axes[0], steps):
        for i, (name, by_cell) in enumerate(results.items()):
            values = [by_cell[_cell_name((n, k))] for n in labels]
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
    from modelzoo.utils.io import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


# ------------------------------------------------------------------------------ --check


def check(out: Path, *, quick: bool) -> list[str]:
    """Problems with the committed report (empty: it holds). See the module docstring."""
    payload = json.loads(out.with_suffix(".json").read_text())
    settings, committed = payload["settings"], payload["test_accuracy"]
    problems = []
    if settings["arms"] != [asdict(a) for a in ARMS]:
        problems.append("the committed run's arms differ from this script's ARMS: re-run it")
    if out.read_text() != render(payload, out.with_suffix(".png").name):
        problems.append(f"{out.name} is not the report this script renders from its JSON")
    if not out.with_suffix(".png").is_file():
        problems.append(f"{out.with_suffix('.png').name} is missing")
    cells = [(n, k) for n in settings["labels_per_class"] for k in settings["steps"]]
    seeds = list(settings["seeds"])
    arms = ARMS
    if quick:  # the smallest budget and the first seed, scratch against full fine-tuning
        cells, seeds, arms = [min(cells)], seeds[:1], ARMS[:2]
    fresh = measure(arms, cells, seeds, settings["lr"])
    for arm in arms:
        for cell in cells:
            name = _cell_name(cell)
            for seed, got in zip(seeds, fresh[arm.name][name]):
                want = committed[arm.name][name][settings["seeds"].index(seed)]
                if abs(got - want) > settings["tolerance"]:
                    problems.append(
                        f"{arm.name}, {name}, seed {seed}: measured {got:.4f}, the report says "
                        f"{want:.4f} (tolerance ±{settings['tolerance']})"
                    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="re-run and compare; write nothing")
    parser.add_argument("--quick", action="store_true", help="with --check: one cell and seed")
    parser.add_argument("--labels", type=int, nargs="+", default=LABELS)
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds 0..N-1")
    parser.add_argument("--steps", type=int, nargs="+", default=STEPS, help="step budgets")
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=OUT, help="the report (.json, .png beside)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    if args.check:
        problems = check(args.out, quick=args.quick)
        for problem in problems:
            print(f"FAIL {problem}")
        print("OK: the report holds" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    write(args.out, labels=args.labels, steps=args.steps, seeds=list(range(args.seeds)), lr=args.lr)
    print(f"wrote {args.out} and its .json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
