"""Section 5: DCGAN, cGAN and VAE samples judged by a digits classifier, against real images
and noise; the cGAN's label accuracy (Mirza & Osindero 2014)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from _common import checked, table, yes_no

from modelzoo.metrics import classifier_measures
from modelzoo.train.tasks.generative import save_image_grid
from reference_sections.harness import (
    Context,
    Run,
    Section,
    Timer,
    fmt_wall,
    measured_line,
    predict,
    run_recipe,
)

KEY = "generative"
TITLE = "Generative models judged by a classifier"
SEEDS = (0,)
CLASSIFIER16_RECIPE = "configs/cnn/cnn_small_digits16.yaml"
NUM_SAMPLES = 1000
SAMPLE_SEED = 2024
# Tolerances (see the section text): confidence and entropy of 1000 samples, accuracy in points.
CONFIDENCE_TOL, ENTROPY_TOL, SCORE_TOL, ACC_TOL = 0.02, 0.05, 0.3, 1.5


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
    return predict(classifier.model, images).softmax(dim=1)


def run(ctx: Context) -> Section:
    timer = Timer()
    seed = ctx.seeds_or(SEEDS)[0]
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
    noise = torch.rand(
        NUM_SAMPLES, 1, img_size, img_size, generator=torch.Generator().manual_seed(SAMPLE_SEED)
    )
    sets: dict[str, tuple[torch.Tensor, torch.Tensor | None, Run | None]] = {
        "real test images": (x_test, y_test, clf),
        "DCGAN samples": (gan_samples(dcgan, NUM_SAMPLES), None, dcgan),
        "cGAN samples (label = condition)": (gan_samples(cgan, NUM_SAMPLES, cond), cond, cgan),
        "VAE samples (decoded means)": (vae_samples(vae, NUM_SAMPLES, img_size), None, vae),
        "uniform noise": (noise, None, None),
    }
    rows, measures = [], {}
    for label, (images, labels, run_) in sets.items():
        m = classifier_measures(classify(clf, images), labels)
        measures[label] = m
        rows.append(
            [
                label,
                len(images),
                checked(f"{m['confidence']:.3f}", CONFIDENCE_TOL),
                checked(f"{m['class_entropy_bits']:.2f}", ENTROPY_TOL),
                checked(f"{m['classifier_score']:.2f}", SCORE_TOL),
                checked(f"{100 * m['accuracy']:.1f}", ACC_TOL) if "accuracy" in m else "-",
                run_.recipe if run_ is not None else "-",
                fmt_wall([run_]) if run_ is not None else "-",
            ]
        )
    plot = ctx.plots_dir / "generative_samples.png"
    grid = [images[:20] for images, _, _ in sets.values()]
    save_image_grid(grid, plot, titles=["real", "DCGAN", "cGAN", "VAE", "noise"], ncols=10)

    real, floor = measures["real test images"], measures["uniform noise"]
    gens = [k for k in measures if k not in ("real test images", "uniform noise")]
    max_h = math.log2(num_classes)
    lines = []
    for k in gens:
        m = measures[k]
        diverse = m["class_entropy_bits"] >= 0.9 * real["class_entropy_bits"]
        lines.append(
            f"- **{k.split(' (')[0]}**: confidence {m['confidence']:.3f} (real "
            f"{real['confidence']:.3f}, noise {floor['confidence']:.3f}); class entropy "
            f"{m['class_entropy_bits']:.2f} of {max_h:.2f} bits (real "
            f"{real['class_entropy_bits']:.2f}); above the noise floor on confidence: "
            f"{yes_no(m['confidence'] > floor['confidence'])}; at least 90% of the real "
            f"images' diversity: {yes_no(diverse)}."
        )
    acc = measures["cGAN samples (label = condition)"]["accuracy"]
    lines.append(
        f"- **The cGAN draws the digit it is asked for** (Mirza & Osindero 2014): the "
        f"classifier reads the conditioning label from {100 * acc:.1f}% of its samples "
        f"(chance {100 / num_classes:.0f}%; the classifier's own accuracy on real test images "
        f"is {100 * real['accuracy']:.1f}%); above 90%: {yes_no(acc > 0.9)}."
    )
    elbo = vae.test.get("elbo", float("nan"))
    body = "\n".join(
        [
            f"## 5. {TITLE} (`{KEY}`)",
            "",
            measured_line(ctx, KEY, timer, clf.device),
            "",
            f"A `cnn_small` trained on the digits at {img_size}x{img_size} "
            f"({clf.recipe}, seed {clf.seed}, test accuracy "
            f"{100 * clf.test['accuracy']:.1f}%) classifies {NUM_SAMPLES} samples of each "
            f"generative model (latents seeded), the {len(x_test)} real test images, and "
            f"uniform noise as a floor. Confidence is the mean largest class probability; class "
            f"entropy is the entropy of the histogram of predicted classes (diversity: "
            f"{max_h:.2f} bits when all {num_classes} digits are equally common); the "
            f"classifier score is the Inception score computed with this classifier "
            f"(1 to {num_classes}; `modelzoo.metrics.classifier_measures`). The VAE's 8x8 "
            f"samples (decoded means) are upsampled to {img_size}x{img_size} as the dataset "
            f"upsamples; the GANs are trained at {img_size}x{img_size}. The cGAN draws "
            f"{NUM_SAMPLES // num_classes} samples per digit; its accuracy is the share the "
            f"classifier assigns to the conditioning label.",
            "",
            f"Figures marked `[±t]` are re-checked by `--check {KEY}` within t: seeded "
            f"single-thread CPU runs (training and sampling) that reproduce to the printed "
            f"digit on the CPU named here; the tolerances allow for another CPU's rounding, "
            f"which adversarial training amplifies.",
            "",
            table(
                [
                    "images",
                    "n",
                    "confidence",
                    "class entropy (bits)",
                    "classifier score",
                    "accuracy vs label %",
                    f"recipe (seed {seed})",
                    "wall-clock",
                ],
                rows,
            ),
            "",
            f"VAE test negative ELBO (nats per image): {checked(f'{elbo:.1f}', 0.5)}.",
            "",
            *lines,
            "",
            f"![samples: real, DCGAN, cGAN (columns are digits 0-9), VAE, noise]({ctx.link(plot)})",
        ]
    )
    return Section(KEY, body)
