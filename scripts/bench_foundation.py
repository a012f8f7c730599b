"""Foundation benchmark: import overhead, and resnet50 against torchvision's, side by side.

    python scripts/bench_foundation.py [--out benchmarks/foundation.md] [--repeats 7]

Measures, in one run on this machine:
- ``import modelzoo`` time beyond ``import torch`` (fresh interpreters, median);
- the first registry query, which imports the model families;
- ``modelzoo.create("resnet50")`` against ``torchvision.models.resnet50()``;
- CPU forward+backward throughput of both with the same weights (their losses
  must agree), timed alternately so that machine noise hits both alike.
Goals: import overhead <= 0.2 s; create and throughput ratios within 5%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

_IMPORT_PROBE = """
import time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import modelzoo
t2 = time.perf_counter()
modelzoo.list_models()
t3 = time.perf_counter()
import json
print(json.dumps({"torch": t1 - t0, "modelzoo": t2 - t1, "families": t3 - t2}))
"""


def measure_import(repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_create(repeats: int) -> dict[str, float]:
    import torchvision

    import modelzoo as mz

    mz.create("resnet50")  # warm-up: family import, allocator
    torchvision.models.resnet50()
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(_timed(lambda: mz.create("resnet50")))
        theirs.append(_timed(lambda: torchvision.models.resnet50()))
    return {"modelzoo_s": statistics.median(ours), "torchvision_s": statistics.median(theirs)}


def measure_train_step(repeats: int, batch_size: int, size: int) -> dict[str, float]:
    import torchvision

    import modelzoo as mz

    torch.manual_seed(0)
    theirs = torchvision.models.resnet50()
    ours = mz.create("resnet50")
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(batch_size, 3, size, size)
    y = torch.randint(0, 1000, (batch_size,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(model: torch.nn.Module) -> float:
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss.item()

    losses = {"modelzoo": step(ours), "torchvision": step(theirs)}  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        t_ours.append(_timed(lambda: step(ours)))
        t_theirs.append(_timed(lambda: step(theirs)))
    return {
        "modelzoo_img_s": batch_size / statistics.median(t_ours),
        "torchvision_img_s": batch_size / statistics.median(t_theirs),
        "loss_modelzoo": losses["modelzoo"],
        "loss_torchvision": losses["torchvision"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/foundation.md")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    load = os.getloadavg()[0]
    imp = measure_import(args.repeats)
    create = measure_create(args.repeats)
    train = measure_train_step(args.repeats, args.batch_size, args.size)
    create_ratio = create["modelzoo_s"] / create["torchvision_s"]
    speed_ratio = train["modelzoo_img_s"] / train["torchvision_img_s"]
    verdict = lambda ok: "meets goal" if ok else "misses goal"  # noqa: E731

    report = f"""# Foundation benchmark

Measured by `python scripts/bench_foundation.py` on {date.today()}: {
        platform.processor() or platform.machine()
    }, {torch.get_num_threads()} torch threads, CPU only, torch {torch.__version__}.
Medians of {args.repeats} runs; the two sides of each comparison alternate within one run.
Load average when the run started: {load:.2f} (other work on the machine slows both sides alike).

| measure | modelzoo | reference | ratio | goal |
|---|---|---|---|---|
| `import modelzoo` beyond `import torch` | {imp["modelzoo"]:.3f} s | `import torch` {
        imp["torch"]:.3f} s | - | <= 0.2 s: {verdict(imp["modelzoo"] <= 0.2)} |
| first registry query (imports the families) | {imp["families"]:.3f} s | - | - | - |
| `create("resnet50")` vs `torchvision.models.resnet50()` | {create["modelzoo_s"]:.3f} s | {
        create["torchvision_s"]:.3f} s | {create_ratio:.3f} | within 5%: {
        verdict(create_ratio <= 1.05)
    } |
| resnet50 forward+backward, batch {args.batch_size} at {args.size}px | {
        train["modelzoo_img_s"]:.2f} img/s | {train["torchvision_img_s"]:.2f} img/s | {
        speed_ratio:.3f} | within 5%: {verdict(speed_ratio >= 0.95)} |

Same weights, same batch: loss {train["loss_modelzoo"]:.6f} (modelzoo) vs {
        train["loss_torchvision"]:.6f} (torchvision).
A ratio is modelzoo / torchvision for time, and modelzoo / torchvision for throughput.
"""  # noqa: E501
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
