"""Peak activation memory of one training step, with and without gradient checkpointing.

    OMP_NUM_THREADS=1 python scripts/grad_checkpointing_memory.py        # measure, write files
    python scripts/grad_checkpointing_memory.py --device cuda            # add the CUDA rows
    python scripts/grad_checkpointing_memory.py --check                  # re-measure and compare
    python scripts/grad_checkpointing_memory.py --tiny --print           # tiny models, JSON out

For each model of :data:`MODELS` (``gpt2_small`` on 2 x 256 tokens, ``vit_base_patch16_224``
on 4 images of 224x224) one training step, forward + loss + backward, is run twice on the
same weights and batch: as built, and after ``model.set_grad_checkpointing(True)``. What is
measured is the step's peak memory above what was allocated when it started: the
parameters, and their gradients (allocated before the step, as after a first step), are
not counted, so the peak is the activations saved for backward plus the temporaries of
the moment. On the CPU the allocations and frees of the step are recorded by the PyTorch
profiler (``profile_memory=True``) and the peak is the highest point of their running sum;
on CUDA it is ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``,
minus ``memory_allocated()`` at the start. Both are exact byte counts of the allocator,
so a re-run with the same torch gives the same figures.

``benchmarks/grad_checkpointing.json`` holds every number, per device;
``benchmarks/grad_checkpointing.md`` is written from it. ``--check`` re-measures the
devices of the JSON that this machine has and fails when a ratio (plain / checkpointed)
moves by more than ``RATIO_RTOL`` (relative), or when the markdown is not the one the JSON
renders. ``--tiny --print`` measures small deep models (the default test suite's check)
and prints the JSON rows without writing anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads OpenMP

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_name, table  # noqa: E402

import modelzoo as mz  # noqa: E402
from modelzoo.utils.io import atomic_write_text  # noqa: E402

OUT_JSON = ROOT / "benchmarks/grad_checkpointing.json"
OUT_MD = ROOT / "benchmarks/grad_checkpointing.md"
# The allocator's byte counts are deterministic for one torch build; across builds kernels
# may keep other buffers (e.g. SDPA's saved statistics), hence a tolerance.
RATIO_RTOL = 0.05
MIB = 2**20

Step = Callable[[nn.Module], torch.Tensor]


def _gpt_step(batch: int, seq: int, vocab: int) -> Step:
    tokens = torch.randint(0, vocab, (batch, seq + 1), generator=torch.Generator().manual_seed(0))

    def step(model: nn.Module) -> torch.Tensor:
        t = tokens.to(next(model.parameters()).device)
        return model(t[:, :-1], t[:, 1:]).loss

    return step


def _vit_step(batch: int, size: int, num_classes: int) -> Step:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=g)
    labels = torch.randint(0, num_classes, (batch,), generator=g)

    def step(model: nn.Module) -> torch.Tensor:
        device = next(model.parameters()).device
        return F.cross_entropy(model(images.to(device)), labels.to(device))

    return step


# name -> (create() arguments, what one step is, its description)
MODELS: dict[str, tuple[dict[str, Any], Callable[[], Step], str]] = {
    "gpt2_small": (
        dict(name="gpt2_small"),
        lambda: _gpt_step(2, 256, 50257),
        "batch 2 x 256 tokens, next-token loss",
    ),
    "vit_base_patch16_224": (
        dict(name="vit_base_patch16_224"),
        lambda: _vit_step(4, 224, 1000),
        "batch 4 x 3 x 224 x 224, cross-entropy",
    ),
}
# Small and deep (8 blocks), for the default test suite: seconds, not minutes.
TINY: dict[str, tuple[dict[str, Any], Callable[[], Step], str]] = {
    "gpt_tiny": (
        dict(name="gpt_nano", vocab_size=64, max_len=64, num_layers=8, d_model=64, num_heads=4),
        lambda: _gpt_step(4, 64, 64),
        "gpt_nano with 8 layers of width 64, batch 4 x 64 tokens",
    ),
    "vit_tiny": (
        dict(name="vit_tiny_patch4_32", embed_dim=64, depth=8, num_heads=4, mlp_ratio=4.0),
        lambda: _vit_step(4, 32, 10),
        "vit_tiny_patch4_32 with 8 blocks of width 64, batch 4 x 3 x 32 x 32",
    ),
}


def _cpu_peak(run: Callable[[], None]) -> int:
    """Highest running sum of the CPU allocations and frees ``run`` makes, in bytes."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    if not events:
        raise RuntimeError("the profiler recorded no memory events (profile_memory=True)")
    events.sort(key=lambda e: e.start_ns())
    total = peak = 0
    for event in events:
        total += event.nbytes()
        peak = max(peak, total)
    return peak


def _cuda_peak(run: Callable[[], None], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - start


def step_peak(model: nn.Module, step: Step, device: torch.device) -> int:
    """Peak bytes of one forward + backward above the memory allocated before it."""
    model.train()
    for p in model.parameters():  # gradients exist already, as from the second step on
        if p.requires_grad and p.grad is None:
            p.grad = torch.zeros_like(p)

    def run() -> None:
        step(model).backward()

    if device.type == "cuda":
        return _cuda_peak(run, device)
    return _cpu_peak(run)


def measure(
    models: dict[str, tuple[dict[str, Any], Callable[[], Step], str]], device: torch.device
) -> list[dict[str, Any]]:
    """One row per model: the peaks without and with checkpointing, and their ratio."""
    rows = []
    for label, (args, make_step, what) in models.items():
        torch.manual_seed(0)
        args = dict(args)
        model = mz.create(args.pop("name"), **args).to(device)
        step = make_step()
        plain = step_peak(model, step, device)
        model.set_grad_checkpointing(True)
        ckpt = step_peak(model, step, device)
        rows.append(
            dict(
                model=label,
                setting=what,
                params=sum(p.numel() for p in model.parameters()),
                peak_bytes_plain=plain,
                peak_bytes_checkpointed=ckpt,
                ratio=plain / ckpt,
            )
        )
        print(
            f"{label} ({device.type}): {plain / MIB:.1f} MiB -> {ckpt / MIB:.1f} MiB "
            f"({plain / ckpt:.2f}x)",
            file=sys.stderr,
        )
        del model
    return rows


def device_record(device: torch.device, rows: list[dict[str, Any]]) -> dict[str, Any]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        method = "torch.cuda.max_memory_allocated() after reset_peak_memory_stats()"
    else:
        name = cpu_name()
        method = "torch.profiler memory events (profile_memory=True), peak of the running sum"
    return dict(
        device=device.type,
        device_name=name,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        date=datetime.date.today().isoformat(),
        method=method,
        ratio_rtol=RATIO_RTOL,
        rows=rows,
    )


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Gradient checkpointing: peak activation memory of one training step",
        "",
        "Written by `scripts/grad_checkpointing_memory.py` from `grad_checkpointing.json`; "
        "`--check` re-measures and fails when a ratio moves by more than its stated "
        "tolerance.",
        "",
        "One forward + loss + backward on the same weights and batch, as built and after "
        "`model.set_grad_checkpointing(True)`. The peak is counted above the memory allocated "
        "when the step starts (parameters and their already allocated gradients are not "
        "counted): the activations saved for backward plus the temporaries of the moment. "
        "Checkpointing keeps each block's input and recomputes the block in backward, for "
        "about one extra forward pass of compute. What lies outside the blocks stays: most of "
        "`gpt2_small`'s checkpointed peak is its 50257-token output (the logits, their "
        "log-softmax and its gradient) and the gradient of its tied 50257 x 768 embedding "
        "matrix, computed before it is added into `.grad`.",
    ]
    for key in sorted(results):
        rec = results[key]
        lines += [
            "",
            f"## {rec['device']}: {rec['device_name']}",
            "",
            f"torch {rec['torch']}, {rec['threads']} thread(s), measured {rec['date']}; "
            f"method: {rec['method']}.",
            "",
            table(
                (
                    "model",
                    "step",
                    "parameters",
                    "peak, plain (MiB)",
                    "peak, checkpointed (MiB)",
                    "plain / checkpointed [--check tolerance]",
                ),
                (
                    (
                        f"`{r['model']}`",
                        r["setting"],
                        f"{r['params'] / 1e6:.1f}M",
                        f"{r['peak_bytes_plain'] / MIB:.1f}",
                        f"{r['peak_bytes_checkpointed'] / MIB:.1f}",
                        f"{r['ratio']:.2f}x [±{rec['ratio_rtol']:.0%}]",
                    )
                    for r in rec["rows"]
                ),
            ),
        ]
    return "\n".join(lines) + "\n"


def _devices(arg: str) -> list[torch.device]:
    if arg == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    return [torch.device(arg)]


def check(results: dict[str, Any]) -> int:
    """Re-measure the recorded devices this machine has; 0 when every ratio holds."""
    failures = []
    if OUT_MD.read_text() != render(results):
        failures.append(f"{OUT_MD} is not what {OUT_JSON.name} renders: run the script again")
    for key, rec in results.items():
        if key == "cuda" and not torch.cuda.is_available():
            print("cuda: no CUDA device here; its rows are not re-measured", file=sys.stderr)
            continue
        rows = measure({r["model"]: MODELS[r["model"]] for r in rec["rows"]}, torch.device(key))
        for old, new in zip(rec["rows"], rows, strict=True):
            moved = abs(new["ratio"] / old["ratio"] - 1)
            status = "ok" if moved <= rec["ratio_rtol"] else "MOVED"
            print(
                f"{key} {old['model']}: published {old['ratio']:.3f}x, now {new['ratio']:.3f}x "
                f"({moved:.1%} off, tolerance {rec['ratio_rtol']:.0%}): {status}"
            )
            if status != "ok":
                failures.append(
                    f"{key} {old['model']}: ratio {old['ratio']:.3f} -> {new['ratio']:.3f}"
                )
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--check", action="store_true", help="re-measure and compare")
    parser.add_argument("--tiny", action="store_true", help="the small deep models instead")
    parser.add_argument("--print", action="store_true", help="print JSON, write no file")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    if args.check:
        return check(json.loads(OUT_JSON.read_text()))
    models = TINY if args.tiny else MODELS
    (device,) = _devices(args.device)
    record = device_record(device, measure(models, device))
    if args.print or args.tiny:
        print(json.dumps(record, indent=2))
        return 0
    results = json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() else {}
    results[device.type] = record
    atomic_write_text(OUT_JSON, json.dumps(results, indent=2) + "\n")
    atomic_write_text(OUT_MD, render(results))
    print(f"wrote {OUT_JSON} and {OUT_MD}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
