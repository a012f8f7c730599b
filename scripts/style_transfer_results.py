"""GANs for style transfer: pix2pix on paired data, CycleGAN on unpaired data, measured.

    OMP_NUM_THREADS=1 python scripts/style_transfer_results.py [--runs-dir runs/style_transfer]
        [--reuse-runs] [--out benchmarks/style_transfer.md]
    python scripts/style_transfer_results.py --check [--reuse-runs] [--cheap]

It trains (or, with ``--reuse-runs``, finds) the recipes in ``RECIPES`` and measures
their final weights (``last.ckpt``: nothing is selected on any split) on the test
splits, which no run saw:

- **Paired** (``edges2digits``, ``masks2scenes``): L1, PSNR and SSIM (per image, pixels
  in [0, 1], averaged over the test images) of pix2pix (L1 + conditional GAN) and of
  its "L1 only" ablation (the same U-Net without the discriminator), against always
  predicting the mean training image. For the digits, the shipped ``resnet20.digits``
  classifier also reads the generated digits (downsampled to its 16x16): the share
  it classifies as the digit the edges came from, against the same share on the real
  digits.
- **Unpaired** (``digit_styles``, chalk <-> ink): a judge (``cnn_small`` trained on both
  styles of the training digits, 20 classes = style x digit; its own recipe) reads the
  translations of the test digits: the share it puts in the target style, the share
  it reads as the same digit, and both at once; beside it the same shares for the
  untranslated inputs (identity) and for the true renderings in the target style
  (the ceiling). Also the cycle reconstruction error ``|G_BA(G_AB(a)) - a|`` (and
  B->A->B), and the L1 distance of each translation to the true rendering of the same
  digit in the other style, a ground truth the unpaired training never saw.

Figures (sample grids) go to ``benchmarks/style_transfer/``; numbers to
``benchmarks/style_transfer.json``, rendered into the markdown. ``--check`` measures
again (``--reuse-runs``: from the finished runs; otherwise training every recipe again,
which reproduces them on the same machine with one thread) and compares within
tolerances; ``--cheap`` checks only what needs no training (the baselines and the
identity rows), in seconds, for the test suite.
"""

from __future__ import annotations

import functools
import logging
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

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
import modelzoo.data.paired_images  # noqa: E402, F401  (registers the datasets)
import modelzoo.models.image_translation  # noqa: E402, F401  (registers the models)
from modelzoo.config import load_recipe  # noqa: E402
from modelzoo.data import build_data  # noqa: E402
from modelzoo.metrics.image_quality import psnr, ssim  # noqa: E402
from modelzoo.train.tasks.generative import save_image_grid  # noqa: E402

_logger = logging.getLogger("style_transfer_results")

DEFAULT_OUT = ROOT / "benchmarks" / "style_transfer.md"
DEFAULT_RUNS = ROOT / "runs" / "style_transfer"
FIGURES = "style_transfer"
RECIPES = {
    "pix2pix_edges2digits": "configs/gan/pix2pix_edges2digits.yaml",
    "pix2pix_edges2digits_l1only": "configs/gan/pix2pix_edges2digits_l1only.yaml",
    "pix2pix_masks2scenes": "configs/gan/pix2pix_masks2scenes.yaml",
    "pix2pix_masks2scenes_l1only": "configs/gan/pix2pix_masks2scenes_l1only.yaml",
    "cyclegan_digit_styles": "configs/gan/cyclegan_digit_styles.yaml",
    "cyclegan_digit_styles_judge": "configs/gan/cyclegan_digit_styles_judge.yaml",
}
PAIRED = {
    "edges2digits": ("pix2pix_edges2digits", "pix2pix_edges2digits_l1only"),
    "masks2scenes": ("pix2pix_masks2scenes", "pix2pix_masks2scenes_l1only"),
}
# How far a re-measurement may land from the published figure.
TOLERANCE = {"l1": 0.005, "mse": 0.003, "psnr": 0.3, "ssim": 0.01, "share": 0.03}
BATCH = 128
TRAINED: list[str] = []  # the runs this invocation trained (the others were reused)


# --- runs -----------------------------------------------------------------------------------------


def train_runs(runs_dir: Path, reuse: bool, quick: bool) -> dict[str, Path]:
    from modelzoo.train.recipes import train_recipe

    runs = {}
    for key, recipe in RECIPES.items():
        run_dir = runs_dir / key
        if reuse and (run_dir / "checkpoints" / "last.ckpt").is_file():
            _logger.info("reusing %s", run_dir)
        else:
            TRAINED.append(key)
            if run_dir.exists():
                shutil.rmtree(run_dir)
            overrides = ["train.progress=false", "train.tensorboard=false"]
            if quick:
                overrides.append("train.max_steps=3")
            _logger.info("training %s -> %s", recipe, run_dir)
            train_recipe(load_recipe(ROOT / recipe, overrides), run_dir)
        runs[key] = run_dir
    return runs


def load_run_model(run_dir: Path) -> torch.nn.Module:
    """The model of a finished run (its last checkpoint), in eval mode.

    Built from the run's recipe alone: these recipes name every model keyword but the
    image size, which their data section states.
    """
    from modelzoo.registry import accepted_kwargs
    from modelzoo.train.checkpoint import load_checkpoint

    recipe = load_recipe(run_dir / "config.yaml")
    kwargs = dict(recipe.model)
    name = kwargs.pop("name")
    if "img_size" in recipe.data and "img_size" in (accepted_kwargs(name) or ()):
        kwargs.setdefault("img_size", recipe.data["img_size"])
    model = mz.create(name, **kwargs)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["model"])
    return model.eval()


@functools.cache
def dataset(key: str) -> Any:
    """The dataset of a recipe (built once per process)."""
    data = dict(load_recipe(ROOT / RECIPES[key]).data)
    data.pop("batch_size", None)
    return build_data(data.pop("name"), **data)


# --- measuring ------------------------------------------------------------------------------------


@torch.no_grad()
def batched(fn: Any, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])


def translate(generator: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images through a [-1, 1] generator, back to [0, 1]."""
    return batched(lambda b: ((generator(b * 2 - 1) + 1) / 2).clamp(0, 1), x)


def quality(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {
        "l1": float((pred - target).abs().mean()),
        "mse": float((pred - target).pow(2).mean()),
        "psnr": float(psnr(pred, target)),
        "ssim": float(ssim(pred, target)),
    }


def classify(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return batched(lambda b: model(b).argmax(dim=1), x)


def digit_accuracy(
    classifier: torch.nn.Module, images32: torch.Tensor, labels: torch.Tensor
) -> float:
    """``resnet20.digits`` (16x16 inputs) reading 32x32 digits: area-downsampled to 16x16."""
    small = F.interpolate(images32, size=(16, 16), mode="area")
    return float((classify(classifier, small) == labels).double().mean())


def measure_paired(name: str, runs: dict[str, Path] | None) -> tuple[dict[str, Any], dict]:
    data = dataset(PAIRED[name][0])
    train_target = data.train.tensors[1]
    source, target = data.test.tensors[0], data.test.tensors[1]
    mean_image = train_target.mean(dim=0, keepdim=True).expand_as(target)
    out: dict[str, Any] = {"test_images": len(target), "mean_image": quality(mean_image, target)}
    outputs: dict[str, torch.Tensor] = {}
    classifier = mz.create("resnet20.digits").eval() if name == "edges2digits" else None
    labels = data.test.tensors[2] if name == "edges2digits" else None
    if classifier is not None:
        out["digit_accuracy_real"] = digit_accuracy(classifier, target, labels)
    if runs is not None:
        for key in PAIRED[name]:
            model = load_run_model(runs[key])
            outputs[key] = translate(model.generator, source)
            out[key] = quality(outputs[key], target)
            if classifier is not None:
                out[key]["digit_accuracy"] = digit_accuracy(classifier, outputs[key], labels)
            _logger.info("%s %s: %s", name, key, out[key])
    return out, {"source": source, "target": target, **outputs}


def judge_shares(
    judge: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, domain: int
) -> dict[str, float]:
    """What the 20-class judge reads: style ``domain`` (0 = A, 1 = B), the digit ``labels``."""
    predicted = classify(judge, images)
    in_domain = (predicted // 10) == domain
    same_digit = (predicted % 10) == labels
    return {
        "domain": float(in_domain.double().mean()),
        "content": float(same_digit.double().mean()),
        "both": float((in_domain & same_digit).double().mean()),
    }


def measure_unpaired(runs: dict[str, Path] | None) -> tuple[dict[str, Any], dict]:
    data = dataset("cyclegan_digit_styles")
    a, b, labels = data.test.tensors[0], data.test.tensors[1], data.test.tensors[2]
    out: dict[str, Any] = {
        "test_images": len(a),
        "train_a": data.info["train_a"],
        "train_b": data.info["train_b"],
        "domains": data.info["domains"],
        "identity": {"l1_ab": float((a - b).abs().mean()), "ssim_ab": float(ssim(a, b))},
    }
    if runs is None:
        return out, {}
    model = load_run_model(runs["cyclegan_digit_styles"])
    judge = load_run_model(runs["cyclegan_digit_styles_judge"])
    fake_b, fake_a = translate(model.generator_ab, a), translate(model.generator_ba, b)
    rec_a, rec_b = translate(model.generator_ba, fake_b), translate(model.generator_ab, fake_a)
    out["judge_test_accuracy"] = float(
        (classify(judge, torch.cat([a, b])) == torch.cat([labels, labels + 10])).double().mean()
    )
    out["cyclegan"] = {
        "ab": judge_shares(judge, fake_b, labels, 1),
        "ba": judge_shares(judge, fake_a, labels, 0),
        "cycle_a": float((rec_a - a).abs().mean()),
        "cycle_b": float((rec_b - b).abs().mean()),
        "l1_ab": float((fake_b - b).abs().mean()),
        "l1_ba": float((fake_a - a).abs().mean()),
        "ssim_ab": float(ssim(fake_b, b)),
        "ssim_ba": float(ssim(fake_a, a)),
    }
    out["identity"] |= {
        "ab": judge_shares(judge, a, labels, 1),
        "ba": judge_shares(judge, b, labels, 0),
    }
    out["oracle"] = {
        "ab": judge_shares(judge, b, labels, 1),
        "ba": judge_shares(judge, a, labels, 0),
    }
    _logger.info("cyclegan: %s", out["cyclegan"])
    images = {"a": a, "b": b, "fake_b": fake_b, "fake_a": fake_a, "rec_a": rec_a, "rec_b": rec_b}
    return out, images


# --- figures --------------------------------------------------------------------------------------


def _spread(labels: torch.Tensor | None, n: int) -> list[int]:
    """Indices of ``n`` test items, one per class in turn when there are labels."""
    if labels is None:
        return list(range(n))
    return [int(torch.nonzero(labels == c)[0]) for c in range(min(n, int(labels.max()) + 1))]


def plot_paired(
    name: str, images: dict[str, torch.Tensor], labels: torch.Tensor | None, path: Path
) -> None:
    pick = _spread(labels, 10)
    keys = PAIRED[name]
    rows = [
        images["source"][pick],
        images[keys[1]][pick],
        images[keys[0]][pick],
        images["target"][pick],
    ]
    save_image_grid(rows, path, titles=["source", "L1 only", "pix2pix", "target"], ncols=len(pick))


def plot_unpaired(images: dict[str, torch.Tensor], labels: torch.Tensor, path: Path) -> None:
    pick = _spread(labels, 10)
    names = ["a", "fake_b", "rec_a", "b", "fake_a", "rec_b"]
    titles = ["chalk (A)", "A -> B", "A -> B -> A", "ink (B)", "B -> A", "B -> A -> B"]
    save_image_grid([images[k][pick] for k in names], path, titles=titles, ncols=len(pick))


# --- the report -----------------------------------------------------------------------------------


def measure(runs_dir: Path, *, reuse: bool, quick: bool, cheap: bool, figures: Path | None) -> dict:
    started = time.perf_counter()
    runs = None if cheap else train_runs(runs_dir, reuse, quick)
    result: dict[str, Any] = {"paired": {}, "runs": {}}
    for name in PAIRED:
        result["paired"][name], images = measure_paired(name, runs)
        if figures is not None and runs is not None:
            labels = dataset(PAIRED[name][0]).test.tensors[2]
            plot_paired(
                name, images, labels if name == "edges2digits" else None, figures / f"{name}.png"
            )
    result["unpaired"], images = measure_unpaired(runs)
    if figures is not None and images:
        labels = dataset("cyclegan_digit_styles").test.tensors[2]
        plot_unpaired(images, labels, figures / "digit_styles.png")
    if runs is not None:
        result["runs"] = {
            k: {"recipe": RECIPES[k], "seconds": run_seconds(p)} for k, p in runs.items()
        }
    result["meta"] = {
        "date": date.today().isoformat(),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - started,
        "quick": quick,
        "trained": list(TRAINED),
    }
    return result


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _minutes(result: dict, key: str) -> str:
    run = result["runs"].get(key)
    return f"{run['seconds'] / 60:.0f} min" if run else "-"


def _quality_row(
    label: str, q: dict[str, float], extra: list[str], recipe: str, wall: str
) -> list[str]:
    return [label, f"{q['l1']:.4f}", f"{q['psnr']:.2f}", f"{q['ssim']:.3f}", *extra, recipe, wall]


def render(result: dict[str, Any]) -> str:
    meta = result["meta"]
    paired, unpaired = result["paired"], result["unpaired"]
    quick = (
        " **(a --quick smoke run: a few steps per recipe; not results)**" if meta["quick"] else ""
    )
    sections = []
    titles = {
        "edges2digits": "Edges to digits (`edges2digits`)",
        "masks2scenes": "Label maps to painted scenes (`masks2scenes`)",
    }
    findings = []
    for name, (gan, l1only) in PAIRED.items():
        p = paired[name]
        digits = name == "edges2digits"
        header = ["model", "L1 ↓", "PSNR dB ↑", "SSIM ↑"] + (
            ["digit read right ↑"] if digits else []
        )
        header += ["recipe", "training"]
        rows = []
        for key, label in ((gan, "pix2pix (L1 + cGAN)"), (l1only, "L1 only (no discriminator)")):
            extra = [_pct(p[key]["digit_accuracy"])] if digits else []
            rows.append(
                _quality_row(label, p[key], extra, f"`{RECIPES[key]}`", _minutes(result, key))
            )
        rows.append(
            _quality_row("mean training image", p["mean_image"], ["-"] if digits else [], "-", "-")
        )
        if digits:
            real = _pct(p["digit_accuracy_real"])
            rows.append(["the real test digits (targets)", "0", "∞", "1", real, "-", "-"])
        sections.append(
            f"### {titles[name]}\n\n{p['test_images']} test pairs.\n\n{table(header, rows)}\n\n"
            f"![{name}](style_transfer/{name}.png)"
        )
        ratio = p[gan]["l1"] / p[l1only]["l1"]
        if abs(ratio - 1) <= 0.02:
            closer = "about the same distance to the targets (within 2%)"
        elif ratio < 1:
            closer = "pix2pix is closer to the targets pixel by pixel"
        else:
            closer = "**the L1-only ablation is closer to the targets pixel by pixel**"
        share = p[gan]["l1"] / p["mean_image"]["l1"]
        findings.append(
            f"- {name}: test L1 pix2pix {p[gan]['l1']:.4f} vs L1 only {p[l1only]['l1']:.4f}: "
            f"{closer}; SSIM {p[gan]['ssim']:.3f} vs {p[l1only]['ssim']:.3f}. pix2pix's L1 is "
            f"{100 * share:.0f}% of the mean training image's ({p['mean_image']['l1']:.4f})."
        )
    e = paired["edges2digits"]
    gan_e, l1_e = PAIRED["edges2digits"]
    if gan_e in e:
        n = e["test_images"]
        gap = round((e[gan_e]["digit_accuracy"] - e[l1_e]["digit_accuracy"]) * n)
        why = ""
        if gap <= 0.02 * n:  # the adversarial term did not make the digits more legible
            why = (
                " The edges of blurry 8x8 digits leave much of the digit to guess and the targets "
                "are blurry themselves: the adversarial term has little sharpness to add here."
            )
        findings.append(
            f"- The digit classifier reads {_pct(e[gan_e]['digit_accuracy'])} of the pix2pix "
            f"digits and {_pct(e[l1_e]['digit_accuracy'])} of the L1-only ones as the digit "
            f"their edges came from ({abs(gap)} of {n} test digits "
            f"{'more' if gap >= 0 else 'fewer'} for pix2pix); {_pct(e['digit_accuracy_real'])} "
            f"of the real digits.{why}"
        )
    c = unpaired["cyclegan"]
    share_rows = []
    for direction, label in (("ab", "chalk → ink (A → B)"), ("ba", "ink → chalk (B → A)")):
        for source, what in (
            (c, "CycleGAN"),
            (unpaired["identity"], "untranslated input"),
            (unpaired["oracle"], "true rendering in the target style"),
        ):
            s = source[direction]
            share_rows.append([label, what, _pct(s["domain"]), _pct(s["content"]), _pct(s["both"])])
    error_rows = [
        [
            "chalk → ink (A → B)",
            f"{c['cycle_a']:.4f}",
            f"{c['l1_ab']:.4f}",
            f"{c['ssim_ab']:.3f}",
            f"{unpaired['identity']['l1_ab']:.4f}",
        ],
        [
            "ink → chalk (B → A)",
            f"{c['cycle_b']:.4f}",
            f"{c['l1_ba']:.4f}",
            f"{c['ssim_ba']:.3f}",
            f"{unpaired['identity']['l1_ab']:.4f}",
        ],
    ]
    ab = c["ab"]
    findings.append(
        f"- CycleGAN, chalk → ink: the judge reads {_pct(ab['domain'])} of the translations as ink "
        f"and {_pct(ab['content'])} as the same digit ({_pct(ab['both'])} both); the true ink "
        f"renderings score {_pct(unpaired['oracle']['ab']['both'])}, the untranslated chalk digits "
        f"{_pct(unpaired['identity']['ab']['both'])}. ink → chalk: {_pct(c['ba']['both'])} both."
    )
    judge_wall = _minutes(result, "cyclegan_digit_styles_judge")
    cycle_wall = _minutes(result, "cyclegan_digit_styles")
    judge_recipe, cycle_recipe = (
        RECIPES["cyclegan_digit_styles_judge"],
        RECIPES["cyclegan_digit_styles"],
    )
    share_header = ["direction", "images", "judged target style", "judged same digit", "both"]
    error_header = [
        "direction",
        "cycle L1 (x → y → x)",
        "L1 to the true rendering",
        "SSIM to it",
        "L1 of the untranslated input",
    ]
    how = "training included" if meta.get("trained") else "evaluation of finished runs"
    lines = [
        "# GANs for style transfer: pix2pix and CycleGAN",
        "",
        f"Measured by `python scripts/style_transfer_results.py` on {meta['date']}: {meta['cpu']}, "
        f"cpu, {meta['threads']} torch thread(s), torch {meta['torch']}; script wall-clock "
        f"{meta['seconds'] / 60:.0f} min ({how}).{quick} Every number below is in "
        "[style_transfer.json](style_transfer.json), re-checked by "
        "`python scripts/style_transfer_results.py --check`. Each model is measured with its final "
        "weights (nothing selected on any split) on a test split no run saw. Pixels are in [0, 1]; "
        "L1, PSNR and SSIM (11x11 Gaussian window, σ = 1.5) are per image, averaged over the test "
        "images.",
        "",
        "## Paired translation: pix2pix",
        "",
        "pix2pix (Isola et al. 2017): a U-Net generator and a 34x34 PatchGAN discriminator on "
        "(source, image) pairs, the generator trained on the conditional GAN loss plus 100 × L1; "
        '"L1 only" is the paper\'s ablation, the same U-Net trained on the L1 term alone.',
        "",
        "\n\n".join(sections),
        "",
        "## Unpaired translation: CycleGAN",
        "",
        "CycleGAN (Zhu et al. 2017) between two renderings of the digits, chalk (A: thin light "
        "strokes on a slate board) and ink (B: thick dark-blue strokes on cream paper). Training "
        f"saw {unpaired['train_a']} digits in chalk only and {unpaired['train_b']} *other* digits "
        "in ink only: no pairs. The judge is a `cnn_small` trained on both renderings of the "
        "training digits to tell style and digit at once (20 classes; "
        f"`{judge_recipe}`, {judge_wall} of training); it classifies the "
        f"{unpaired['test_images']} test digits' true renderings with "
        f"{_pct(unpaired['judge_test_accuracy'])} accuracy. CycleGAN: `{cycle_recipe}`, "
        f"{cycle_wall} of training.",
        "",
        table(share_header, share_rows),
        "",
        "Reconstruction and distance to the ground truth (the same test digit rendered in the "
        "target style, which unpaired training never saw):",
        "",
        table(error_header, error_rows),
        "",
        "![digit styles](style_transfer/digit_styles.png)",
        "",
        "Rows: test digits in chalk, their translation to ink and back; the same digits in ink "
        "(the ground truth of the first translation), their translation to chalk and back.",
        "",
        "## Findings",
        "",
        *findings,
    ]
    return "\n".join(lines) + "\n"


# --- check ----------------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, float]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out |= _flatten(v, f"{prefix}{k}.")
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix[:-1]: float(value)}
    return {}


def _tolerance(key: str) -> float | None:
    last = key.rsplit(".", 1)[-1]
    if last in ("domain", "content", "both") or "accuracy" in last:
        return TOLERANCE["share"]
    for metric in ("l1", "mse", "psnr", "ssim"):
        if last == metric or last.startswith(metric + "_") or last.startswith("cycle"):
            return TOLERANCE["l1" if last.startswith("cycle") else metric]
    return None  # counts, timings: not measurements to compare


def compare(published: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    old = _flatten({k: published[k] for k in ("paired", "unpaired")})
    new = _flatten({k: fresh[k] for k in ("paired", "unpaired")})
    problems = []
    for key, value in new.items():
        tol = _tolerance(key)
        if tol is None:
            if key in old and old[key] != value:
                problems.append(f"{key}: published {old[key]}, now {value}")
            continue
        if key not in old:
            problems.append(f"{key}: not in the published results")
        elif abs(old[key] - value) > tol:
            problems.append(f"{key}: published {old[key]:.4f}, re-measured {value:.4f} (±{tol})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(
        __doc__.split("\n", 1)[0], DEFAULT_OUT, DEFAULT_RUNS, "with --check: no training"
    )
    args = parser.parse_args(argv)
    start_measuring(args.threads)
    json_path = args.out.with_suffix(".json")
    if args.check:
        published, problems = rendering_problems(args.out, json_path, render)
        fresh = measure(
            args.runs_dir, reuse=args.reuse_runs, quick=False, cheap=args.cheap, figures=None
        )
        return report_check(problems + compare(published, fresh))
    result = measure(
        args.runs_dir,
        reuse=args.reuse_runs,
        quick=args.quick,
        cheap=False,
        figures=args.out.parent / FIGURES,
    )
    write_results(args.out, json_path, result, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
