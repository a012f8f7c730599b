"""Foundation benchmark: import overhead, time to the first model, resnet50 against torchvision's.

    python scripts/bench_foundation.py [--out benchmarks/foundation.md] [--repeats 5]
    python scripts/bench_foundation.py --check [--out benchmarks/foundation.md]

Measures, in one run on this machine, each side of a comparison alternately and with
the order rotated every repeat (modelzoo first on even repeats, the reference first on
odd ones), so drifting machine load hits both sides alike:

- ``import modelzoo`` beyond ``import torch`` (fresh interpreters);
- the time to a first model in a fresh interpreter: ``import modelzoo`` plus the first
  ``modelzoo.create("resnet50")`` (which imports the registry's model families), against
  ``import torchvision`` plus the first ``torchvision.models.resnet50()``; and that first
  ``create()`` on its own;
- ``modelzoo.create("resnet50")`` against ``torchvision.models.resnet50()``, warm;
- CPU forward+backward of both with the same weights and the same batch; their losses
  must agree (the script stops if they do not), then both are timed.

Every figure is reported as min / median / max over the repeats; verdicts compare the
medians with the goals: import overhead <= 0.2 s; import + first create within 0.2 s of
torchvision's; create and throughput ratios within 5%.

The raw numbers go to a JSON file next to the markdown (``foundation.json``), and the
markdown is rendered from it. ``--check`` renders the JSON again and fails when the
markdown differs from it, so every verdict in the file is the one its numbers give.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from _common import ROOT, cpu_name, spread, table  # noqa: E402

IMPORT_GOAL_S = 0.2  # import modelzoo beyond import torch
FIRST_MODEL_SLACK_S = 0.2  # import + first create, beyond torchvision's
RATIO_GOAL = 0.05  # create time and throughput within 5% of torchvision's
LOSS_RTOL = 1e-6

# Fresh interpreters: {"torch": s, "lib": s, "first": s} (import torch, import the library,
# build the first resnet50).
_PROBES = {
    "modelzoo": """
import time, json
t0 = time.perf_counter(); import torch
t1 = time.perf_counter(); import modelzoo
t2 = time.perf_counter(); modelzoo.create("resnet50")
t3 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "lib": t2 - t1, "first": t3 - t2}))
""",
    "torchvision": """
import time, json
t0 = time.perf_counter(); import torch
t1 = time.perf_counter(); import torchvision
t2 = time.perf_counter(); torchvision.models.resnet50()
t3 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "lib": t2 - t1, "first": t3 - t2}))
""",
}


def _order(k: int) -> list[str]:
    """Which side goes first in repeat ``k``: modelzoo on even repeats, the reference on odd."""
    return ["modelzoo", "torchvision"] if k % 2 == 0 else ["torchvision", "modelzoo"]


def measure_fresh_imports(repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per side, per phase (``torch``, ``lib``, ``first``): seconds in each fresh interpreter."""
    out: dict[str, dict[str, list[float]]] = {s: {} for s in _PROBES}
    for k in range(repeats):
        for side in _order(k):
            proc = subprocess.run(
                [sys.executable, "-c", _PROBES[side]],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            for phase, seconds in json.loads(proc.stdout).items():
                out[side].setdefault(phase, []).append(seconds)
    return out


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_create(repeats: int) -> dict[str, list[float]]:
    import torchvision

    import modelzoo as mz

    mz.create("resnet50")  # warm-up: family import, allocator
    torchvision.models.resnet50()
    build = {"modelzoo": lambda: mz.create("resnet50"), "torchvision": torchvision.models.resnet50}
    times: dict[str, list[float]] = {"modelzoo": [], "torchvision": []}
    for k in range(repeats):
        for side in _order(k):
            times[side].append(_timed(build[side]))
    return times


def measure_train_step(repeats: int, batch_size: int, size: int) -> dict[str, Any]:
    import torch
    import torchvision

    import modelzoo as mz

    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    ours = mz.create("resnet50")
    ours.load_state_dict(reference.state_dict())
    models = {"modelzoo": ours, "torchvision": reference}
    x = torch.randn(batch_size, 3, size, size)
    y = torch.randint(0, 1000, (batch_size,))
    loss_fn = torch.nn.CrossEntropyLoss()
    losses: dict[str, list[float]] = {"modelzoo": [], "torchvision": []}
    times: dict[str, list[float]] = {"modelzoo": [], "torchvision": []}

    def step(side: str) -> None:
        model = models[side]
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        losses[side].append(loss.item())

    for side in _order(0):  # warm-up (allocator, kernels); its losses are checked too
        step(side)
    for k in range(repeats):
        for side in _order(k):
            times[side].append(_timed(lambda side=side: step(side)))
    # Same weights, same batch, train mode (batch statistics, no update): same loss, every time.
    for a, b in zip(losses["modelzoo"], losses["torchvision"]):
        if abs(a - b) > LOSS_RTOL * abs(b):
            raise SystemExit(
                f"resnet50 losses differ: modelzoo {a!r}, torchvision {b!r}; the two models do "
                "not compute the same function, so their speeds cannot be compared"
            )
    return {
        "seconds": times,
        "img_per_s": {s: [batch_size / t for t in ts] for s, ts in times.items()},
        "loss": {s: ls[0] for s, ls in losses.items()},
        "losses_compared": len(losses["modelzoo"]),
    }


# --- the report: rendered from the raw numbers -------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def verdicts(raw: dict[str, Any]) -> dict[str, bool]:
    """Each goal, from the medians of the raw numbers."""
    imp = raw["imports"]
    first = {s: _median([a + b for a, b in zip(v["lib"], v["first"])]) for s, v in imp.items()}
    create = {s: _median(v) for s, v in raw["create"].items()}
    speed = {s: _median(v) for s, v in raw["train"]["img_per_s"].items()}
    return {
        "import": _median(imp["modelzoo"]["lib"]) <= IMPORT_GOAL_S,
        "first_model": first["modelzoo"] <= first["torchvision"] + FIRST_MODEL_SLACK_S,
        "create": create["modelzoo"] / create["torchvision"] <= 1 + RATIO_GOAL,
        "train": speed["modelzoo"] / speed["torchvision"] >= 1 - RATIO_GOAL,
    }


def render(raw: dict[str, Any]) -> str:
    """The markdown report of a run's raw numbers (the same numbers give the same text)."""
    imp, create, train = raw["imports"], raw["create"], raw["train"]
    ok = verdicts(raw)

    def verdict(flag: bool) -> str:
        return "meets goal" if flag else "**misses goal**"

    def sums(side: str) -> list[float]:
        return [a + b for a, b in zip(imp[side]["lib"], imp[side]["first"])]

    first = {s: _median(sums(s)) for s in imp}
    create_ratio = _median(create["modelzoo"]) / _median(create["torchvision"])
    speed = {s: _median(v) for s, v in train["img_per_s"].items()}
    rows = [
        [
            "`import modelzoo` beyond `import torch` (fresh interpreter)",
            spread(imp["modelzoo"]["lib"], ".3f", " s"),
            f"`import torch` {spread(imp['modelzoo']['torch'], '.2f', ' s')}",
            "-",
            f"<= {IMPORT_GOAL_S:g} s: {verdict(ok['import'])}",
        ],
        [
            '`import modelzoo` + first `create("resnet50")` vs `import torchvision` + first '
            "`resnet50()` (fresh interpreter)",
            spread(sums("modelzoo"), ".3f", " s"),
            spread(sums("torchvision"), ".3f", " s"),
            f"{first['modelzoo'] / first['torchvision']:.3f}",
            f"<= torchvision's + {FIRST_MODEL_SLACK_S:g} s: {verdict(ok['first_model'])}",
        ],
        [
            'of which the first `create("resnet50")` (imports the model families) vs the first '
            "`resnet50()`",
            spread(imp["modelzoo"]["first"], ".3f", " s"),
            spread(imp["torchvision"]["first"], ".3f", " s"),
            f"{_median(imp['modelzoo']['first']) / _median(imp['torchvision']['first']):.3f}",
            "-",
        ],
        [
            '`create("resnet50")` vs `torchvision.models.resnet50()`, warm',
            spread(create["modelzoo"], ".3f", " s"),
            spread(create["torchvision"], ".3f", " s"),
            f"{create_ratio:.3f}",
            f"within {RATIO_GOAL:.0%}: {verdict(ok['create'])}",
        ],
        [
            f"resnet50 forward+backward, batch {raw['batch_size']} at {raw['size']}px",
            spread(train["img_per_s"]["modelzoo"], ".2f", " img/s"),
            spread(train["img_per_s"]["torchvision"], ".2f", " img/s"),
            f"{speed['modelzoo'] / speed['torchvision']:.3f}",
            f"within {RATIO_GOAL:.0%}: {verdict(ok['train'])}",
        ],
    ]
    return "\n".join(
        [
            "# Foundation benchmark",
            "",
            f"Measured by `python scripts/bench_foundation.py` on {raw['date']}: {raw['cpu']}, "
            f"{raw['threads']} torch threads, CPU only, torch {raw['torch']}, torchvision "
            f"{raw['torchvision']}. {raw['repeats']} repeats; the two sides of each comparison "
            "alternate, and the side that goes first rotates every repeat. Load average "
            f"{raw['load'][0]:.2f} at the start, {raw['load'][1]:.2f} at the end (other work on "
            "the machine slows both sides alike).",
            "",
            "Each cell is min / median / max over the repeats; ratios (modelzoo / reference, "
            "for time and for throughput alike) and verdicts use the medians.",
            "",
            table(["measure", "modelzoo", "reference", "ratio", "goal"], rows),
            "",
            f"Same weights, same batch: loss {train['loss']['modelzoo']:.6f} (modelzoo) vs "
            f"{train['loss']['torchvision']:.6f} (torchvision), equal to a relative "
            f"{LOSS_RTOL:g} in all {train['losses_compared']} steps (the script stops "
            "otherwise).",
            "",
            "The raw numbers are in [foundation.json](foundation.json); `python "
            "scripts/bench_foundation.py --check` re-renders this file from them and fails "
            "if a figure or verdict differs.",
            "",
        ]
    )


def check(out: Path) -> int:
    raw_path = out.with_suffix(".json")
    if not raw_path.is_file() or not out.is_file():
        print(f"FAIL: {out} or {raw_path} is missing; run scripts/bench_foundation.py")
        return 1
    expected = render(json.loads(raw_path.read_text()))
    if out.read_text() != expected:
        print(f"FAIL: {out} is not what its numbers in {raw_path.name} give; re-run the script")
        import difflib

        diff = difflib.unified_diff(
            out.read_text().splitlines(), expected.splitlines(), "published", "from the numbers"
        )
        print("\n".join(diff))
        return 1
    print(f"ok: every figure and verdict of {out} follows from {raw_path.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/foundation.md")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument(
        "--check", action="store_true", help="re-render the report from its JSON and compare"
    )
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    import torch
    import torchvision

    load_start = os.getloadavg()[0]
    raw: dict[str, Any] = {
        "date": str(date.today()),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "size": args.size,
    }
    raw["imports"] = measure_fresh_imports(args.repeats)
    raw["create"] = measure_create(args.repeats)
    raw["train"] = measure_train_step(args.repeats, args.batch_size, args.size)
    raw["load"] = [load_start, os.getloadavg()[0]]
    from modelzoo.utils.io import atomic_write_text

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(raw, indent=1) + "\n")
    report = render(raw)
    atomic_write_text(args.out, report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
