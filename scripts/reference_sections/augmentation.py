"""Section 8: does a cGAN's output help a classifier that has only a few labels per class?

The few-label classifier recipe alone, and with cGAN samples (labelled with their
condition) added to its training set: the fair setting trains the cGAN on the same
few images; a cGAN trained on every label is an upper reference.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from _common import ROOT, checked, table, yes_no
from torch.utils.data import TensorDataset

from modelzoo.config import load_recipe
from modelzoo.train.recipes import build_run
from modelzoo.train.tasks.generative import save_image_grid
from reference_sections.generative import gan_samples
from reference_sections.harness import (
    BOOKKEEPING,
    Context,
    Run,
    Section,
    Timer,
    fmt_checked,
    fmt_seconds,
    fmt_seeds,
    fmt_wall,
    measured_line,
    quick_overrides,
    run_recipe,
    run_seeds,
    seed_tolerance,
)

KEY = "augmentation"
TITLE = "GAN augmentation of a few-label classifier"
SEEDS = (0, 1, 2)
FEW_CLASSIFIER_RECIPE = "configs/cnn/cnn_small_digits16_few.yaml"
FEW_CGAN_RECIPE = "configs/gan/cgan_digits_few.yaml"
FULL_CGAN_RECIPE = "configs/gan/cgan_digits.yaml"
GENERATED_PER_CLASS = 50
ACC_TOL = 1.5  # points, on a mean of three seeds (see the section text)


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
    overrides += [o for o in quick_overrides(ctx) if o.startswith("train.max_steps")]
    recipe = load_recipe(ROOT / FEW_CLASSIFIER_RECIPE, overrides)
    start = time.perf_counter()
    trainer, data = build_run(recipe, None)
    x_real, y_real = data.train.tensors
    x_extra, y_extra = extra.tensors
    train = TensorDataset(torch.cat([x_real, x_extra]), torch.cat([y_real, y_extra]))
    trainer.fit(train, data.val)
    accuracy = trainer.evaluate(data.test)["accuracy"]
    return accuracy, time.perf_counter() - start, epochs


def run(ctx: Context) -> Section:
    timer = Timer()
    seeds = ctx.seeds_or(SEEDS)
    few = run_seeds(ctx, "cnn_small_few", FEW_CLASSIFIER_RECIPE, [], seeds)
    num_classes = few[0].result.data.info["num_classes"]
    num_real = len(few[0].result.data.train)
    per_class = num_real // num_classes
    cgan_few = run_recipe(ctx, "cgan_few", FEW_CGAN_RECIPE, seed=0)
    cgan_full = run_recipe(ctx, "cgan_full", FULL_CGAN_RECIPE, seed=0)
    few_acc = [r.test["accuracy"] for r in few]
    rows = [
        [
            f"{per_class} real images per class",
            fmt_checked(few_acc, seed_tolerance(few_acc, ACC_TOL, 100), 1, 100),
            few[0].recipe,
            fmt_seeds(few),
            fmt_wall(few),
        ]
    ]
    gains, extras = {}, {}
    for label, cgan in (("few", cgan_few), ("full", cgan_full)):
        extra = extras[label] = generated_set(cgan, GENERATED_PER_CLASS, num_classes)
        results = [train_augmented(ctx, extra, s, num_real) for s in seeds]
        accs = [a for a, _, _ in results]
        gains[label] = statistics.mean(accs) - statistics.mean(few_acc)
        trained_on = (
            f"the same {per_class} images per class"
            if label == "few"
            else f"all {len(cgan.result.data.train)} labelled training images"
        )
        rows.append(
            [
                # No timing in the label: --check matches rows by it.
                f"+ {GENERATED_PER_CLASS} cGAN samples per class (cGAN trained on {trained_on}; "
                f"{cgan.recipe})",
                fmt_checked(accs, seed_tolerance(accs, ACC_TOL, 100), 1, 100),
                f"{few[0].recipe} `train.epochs={results[0][2]}`, training set extended",
                ",".join(str(s) for s in seeds),
                f"{fmt_seconds(statistics.mean(w for _, w, _ in results))} per seed, after "
                f"{fmt_seconds(cgan.wall_s)} of cGAN training",
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
    change = {k: checked(f"{100 * v:+.1f}", 2 * ACC_TOL) for k, v in gains.items()}
    body = "\n".join(
        [
            f"## 8. {TITLE} (`{KEY}`)",
            "",
            measured_line(ctx, KEY, timer, few[0].device),
            "",
            f"The few-label classifier recipe ({per_class} real training images per class, "
            f"digits at {img_size}x{img_size}) alone, and with {GENERATED_PER_CLASS} cGAN "
            f"samples per class added to its training set (labelled with their condition). "
            f"With samples added, the epochs are scaled down so both take about the same "
            f"number of optimizer steps; the augmented run uses `build_run` + `fit` on the "
            f"extended set (the recipe's model, task, optimizer and schedule). The fair "
            f"comparison is the cGAN trained on the same few images; the cGAN trained on the "
            f"whole training set has seen more labelled digits than the classifier, so it is "
            f"an upper reference, not a few-label result.",
            "",
            f"Figures marked `[±t]` are re-checked by `--check {KEY}` within t: seeded "
            f"single-thread CPU runs that reproduce to the printed digit on the CPU named "
            f"here; t = {ACC_TOL:g} points (or the standard error of the mean over the seeds, when "
            f"larger) allows for another CPU's rounding.",
            "",
            table(["training set", "test acc %", "recipe", "seeds", "wall-clock"], rows),
            "",
            f"- **Fair setting** (cGAN on the same few images): accuracy change "
            f"{change['few']} points; helps: "
            f"{yes_no(gains['few'] > 0)}.",
            f"- **Upper reference** (cGAN on all training images): accuracy change "
            f"{change['full']} points; helps: "
            f"{yes_no(gains['full'] > 0)}.",
            "",
            f"![real few-label images and cGAN samples, one digit per column]({ctx.link(plot)})",
        ]
    )
    return Section(KEY, body)
