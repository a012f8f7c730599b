"""How long the He et al. 2016 CIFAR-10 recipes take per step here, and their 64k steps in all.

    OMP_NUM_THREADS=1 python scripts/cifar_recipe_time.py [--steps 3]
    python scripts/cifar_recipe_time.py --check   # the headers say what the JSON file says

Each recipe in configs/resnet/*_cifar10.yaml runs through the trainer as ``modelzoo train``
runs it (its model, optimizer, schedule, batch of 128, augmentation and normalization),
on ``torchvision/FakeData`` images of CIFAR's shape instead of CIFAR-10 itself (the time
of a step does not depend on what the pixels show, and nothing is downloaded). A callback
stamps the clocks before every optimizer step; the first ``--warmup`` steps are left out,
and the median of the next ``--steps`` intervals is the time per step.

The figure is the process's CPU time per step with one torch thread: on a machine shared
with other jobs (this one often runs at a load of many times its cores) wall-clock time
measures the neighbours, CPU time the work. The estimate of a full run spreads that work
over every core of the machine with perfect scaling, so it is a lower bound: CPU seconds
per step x ``max_steps`` / cores. The wall-clock time per step and the load average are
recorded next to it.

Writes benchmarks/cifar_recipe_time.json and the ``# Time:`` comment of each recipe's
header (from the JSON file alone, so ``--check`` can re-derive it without measuring).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

from _common import ROOT, cpu_name

OUT = ROOT / "benchmarks/cifar_recipe_time.json"
RECIPES = sorted((ROOT / "configs/resnet").glob("*_cifar10.yaml"))
MARK = "# Time:"


class _Clock:
    """Stamps the clocks before each optimizer step (the trainer's ``on_step`` hook)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, float]] = []

    def on_step(self, trainer: object, step: int) -> None:
        self.stamps.append((time.process_time(), time.perf_counter()))


def measure(path: Path, steps: int, warmup: int) -> tuple[float, float]:
    """Median CPU seconds and wall-clock seconds per optimizer step of the recipe."""
    from modelzoo.config import load_recipe
    from modelzoo.train.recipes import build_run

    images = 128 * (warmup + steps + 2)  # one epoch: no end-of-epoch work inside the timing
    recipe = load_recipe(
        path,
        [
            "data.name=torchvision/FakeData",
            f"data.size={images}",
            "data.image_size=[3, 32, 32]",
            "data.num_classes=10",
            f"train.max_steps={warmup + steps + 1}",
            "train.progress=false",
            "train.plots=false",
            "train.tensorboard=false",
        ],
    )
    trainer, data = build_run(recipe, None)
    clock = _Clock()
    trainer.callbacks.append(clock)
    trainer.fit(data.train, data.val)
    pairs = list(zip(clock.stamps, clock.stamps[1:]))[warmup:]
    cpu = statistics.median(b[0] - a[0] for a, b in pairs)
    wall = statistics.median(b[1] - a[1] for a, b in pairs)
    return cpu, wall


def header_lines(entry: dict, machine: dict) -> list[str]:
    """The ``# Time:`` comment of a recipe, from its measurement."""
    seconds = entry["cpu_seconds_per_step"]
    total = seconds * entry["max_steps"] / machine["cores"]
    days = total / 86400
    span = f"{days:.1f} days" if days >= 2 else f"{total / 3600:.0f} hours"
    text = (
        f"{MARK} the paper's {entry['max_steps'] // 1000}k steps need a GPU. A step here is "
        f"{seconds:.2f} s of CPU time ({machine['cpu']}, {machine['threads']} torch thread), "
        f"so this {machine['cores']}-core CPU would need at least {span} for the whole run "
        f"(measured {machine['date']} by scripts/cifar_recipe_time.py)."
    )
    return textwrap.wrap(text, width=98, subsequent_indent="# ")


def rewrite_header(path: Path, lines: list[str]) -> str:
    """The recipe's text with its ``# Time:`` comment replaced by ``lines``."""
    text = path.read_text().splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith(MARK))
    end = start + 1
    while end < len(text) and text[end].startswith("# ") and not text[end].startswith(MARK):
        end += 1
    return "\n".join([*text[:start], *lines, *text[end:]]) + "\n"


def check() -> int:
    """Every recipe's ``# Time:`` comment is the one the committed JSON file gives."""
    results = json.loads(OUT.read_text())
    problems = []
    names = {p.stem for p in RECIPES}
    if set(results["recipes"]) != names:
        problems.append(f"{OUT} covers {sorted(results['recipes'])}, configs have {sorted(names)}")
    for path in RECIPES:
        entry = results["recipes"].get(path.stem)
        if entry is None:
            continue
        import yaml

        steps = yaml.safe_load(path.read_text())["train"]["max_steps"]
        if entry["max_steps"] != steps:
            problems.append(f"{path.name}: max_steps {steps}, measured for {entry['max_steps']}")
        if rewrite_header(path, header_lines(entry, results["machine"])) != path.read_text():
            problems.append(f"{path.name}: its {MARK} comment is not the one {OUT.name} gives")
    for problem in problems:
        print(f"check: {problem}", file=sys.stderr)
    print("check: ok" if not problems else f"check: {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per recipe")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--check", action="store_true", help="compare headers with the JSON")
    args = parser.parse_args(argv)
    if args.check:
        return check()

    import torch

    import modelzoo.data.torchvision_datasets  # noqa: F401  (the torchvision/ datasets)

    torch.set_num_threads(args.threads)
    machine = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "date": date.today().isoformat(),
        "load_average": round(os.getloadavg()[0], 1),
    }
    results = {"machine": machine, "timed_steps": args.steps, "warmup": args.warmup}
    results["recipes"] = {}
    for path in RECIPES:
        import yaml

        cpu, wall = measure(path, args.steps, args.warmup)
        steps = yaml.safe_load(path.read_text())["train"]["max_steps"]
        results["recipes"][path.stem] = {
            "cpu_seconds_per_step": round(cpu, 3),
            "wall_seconds_per_step": round(wall, 3),
            "max_steps": steps,
        }
        print(f"{path.stem}: {cpu:.3f} s of CPU, {wall:.3f} s of wall time per step", flush=True)

    from modelzoo.utils.io import atomic_write_text

    atomic_write_text(OUT, json.dumps(results, indent=2) + "\n")
    for path in RECIPES:
        lines = header_lines(results["recipes"][path.stem], machine)
        atomic_write_text(path, rewrite_header(path, lines))
    print(f"wrote {OUT.relative_to(ROOT)} and the {MARK} line of {len(RECIPES)} recipes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
