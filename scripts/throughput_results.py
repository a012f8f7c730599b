"""CPU throughput of every native model, and the shared architectures beside torchvision and timm.

    OMP_NUM_THREADS=1 python scripts/throughput_results.py [--threads 1] [--budget-minutes 45]
    python scripts/throughput_results.py --check
    python scripts/throughput_results.py --mfu [--device cuda] [--peak-tflops T]

Measures with the library behind ``modelzoo benchmark`` (``modelzoo.benchmark``), in infer mode
and fp32, and writes ``benchmarks/throughput_cpu.csv`` (the command's columns, one row per model
and batch size) and ``benchmarks/throughput_cpu.md`` (the summary):

- every native model at batch 1 and 32: random weights (seed 0), the card's example inputs;
- resnet18, resnet50, vgg11, vit_tiny_patch16_224 and vit_base_patch16_224 side by side with
  ``torchvision.models.<x>`` and ``timm.create_model(<x>)`` given the native model's weights
  (the script stops if their outputs differ), in one process, steps interleaved and the side
  that goes first rotated every repeat (``modelzoo.benchmark.benchmark_side_by_side``). The
  ratio is zoo time / library time of the median process CPU time per step (one thread: other
  processes on a shared machine inflate wall-clock time far more than CPU time; both are in the
  CSV), and the goal is <= 1.02. Where a row misses it, the markdown says why with numbers: the
  two sides' ranges of step times, and the operators each spends its time in (a profiled step).

Batch 1 runs first; its step times give the projection of batch 32, and the script chooses the
timed steps and side-by-side repeats so that the projection fits ``--budget-minutes``; the
markdown states the budget, the projection and the time taken.

``--check`` re-reads the CSV: every native model has its two rows, every row's throughput is its
step time's, the side-by-side ratios recomputed from the CSV's numbers give the markdown's
verdicts (the markdown is rendered again from the CSV and the run facts it carries, and must be
the same text).

``--mfu`` measures gpt2_small training (bf16-mixed, fused AdamW, ``torch.compile``, SDPA, no
dropout, 1024 tokens per sequence) on CUDA and prints its model FLOPs utilisation: FLOPs of a
step as FlopCounterMode counts them (forward + backward), per second, over the GPU's dense bf16
peak (``modelzoo.benchmark.PEAK_BF16_DENSE_TFLOPS``: NVIDIA's data sheets, e.g. 989.4 TFLOP/s
for H100 SXM and H200) or ``--peak-tflops``. The same pipeline runs on the CPU with a small
model, ``--device cpu --peak-tflops T``, to check it end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from _common import ROOT, cpu_name, table  # noqa: E402

CSV_PATH = ROOT / "benchmarks" / "throughput_cpu.csv"
MD_PATH = ROOT / "benchmarks" / "throughput_cpu.md"
BATCH_SIZES = (1, 32)
RATIO_GOAL = 1.02  # zoo time / library time
OUTPUT_ATOL = 1e-4  # outputs of the two sides, same weights, same inputs
FAST_STEP_S = 0.5  # batch-32 rows projected faster than this are timed like batch 1
B32_PER_B1 = 0.8  # a batch-32 step, projected: this times 32 batch-1 steps
FAST_ROW_S = 1.0  # seconds of timed steps of the fast rows (batch 1, and batch 32's fast ones)
B1_SIDE_S = 8.0  # seconds of timed steps per side at batch 1, side by side
_RUN_MARK = (
    "<!-- run facts (scripts/throughput_results.py renders this file from them and the CSV): "
)


# --- the libraries' models, given the native model's weights ---------------------------------


def _loaded(make: Callable[[], Any], state: dict) -> Any:
    """``make()`` built on the meta device (no random init: minutes for VGG on this CPU), then
    given copies of ``state`` (copies: no side shares memory with another)."""
    import torch

    with torch.device("meta"):
        model = make()
    model.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True, assign=True)
    return model


def _torchvision(arch: str) -> Callable[[dict], Any]:
    def build(state: dict) -> Any:
        import torchvision

        return _loaded(getattr(torchvision.models, arch), state)

    return build


def _timm(arch: str, convert: Callable[[dict], dict] = lambda s: s) -> Callable[[dict], Any]:
    def build(state: dict) -> Any:
        import timm

        return _loaded(lambda: timm.create_model(arch, pretrained=False), convert(state))

    return build


def vgg_to_timm(state: dict) -> dict:
    """torchvision-layout VGG weights in timm's layout: its classifier is a conv MLP."""
    out = {}
    for key, value in state.items():
        if key.startswith("classifier.0."):
            key = "pre_logits.fc1." + key.rsplit(".", 1)[1]
            value = value.reshape(-1, 512, 7, 7) if value.ndim == 2 else value
        elif key.startswith("classifier.3."):
            key = "pre_logits.fc2." + key.rsplit(".", 1)[1]
            value = value.reshape(value.shape[0], -1, 1, 1) if value.ndim == 2 else value
        elif key.startswith("classifier.6."):
            key = "head.fc." + key.rsplit(".", 1)[1]
        out[key] = value
    return out


def vit_to_torchvision(state: dict) -> dict:
    """timm-layout ViT weights (the zoo's) in torchvision's ``vit_b_16`` layout."""
    fixed = {
        "cls_token": "class_token",
        "pos_embed": "encoder.pos_embedding",
        "patch_embed.proj.weight": "conv_proj.weight",
        "patch_embed.proj.bias": "conv_proj.bias",
        "norm.weight": "encoder.ln.weight",
        "norm.bias": "encoder.ln.bias",
        "head.weight": "heads.head.weight",
        "head.bias": "heads.head.bias",
    }
    parts = {
        "norm1": "ln_1",
        "attn.qkv.weight": "self_attention.in_proj_weight",
        "attn.qkv.bias": "self_attention.in_proj_bias",
        "attn.proj": "self_attention.out_proj",
        "norm2": "ln_2",
        "mlp.fc1": "mlp.0",
        "mlp.fc2": "mlp.3",
    }
    out = {}
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value
            continue
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
        if m is None:
            raise KeyError(f"no torchvision name for ViT weight {key!r}")
        rest = m[2]
        for ours, theirs in parts.items():
            if rest.startswith(ours):
                rest = theirs + rest[len(ours) :]
                break
        out[f"encoder.layers.encoder_layer_{m[1]}.{rest}"] = value
    return out


def _torchvision_vit(state: dict) -> Any:
    import torchvision

    return _loaded(torchvision.models.vit_b_16, vit_to_torchvision(state))


# native name -> {row name -> build(native state dict)}
SHARED: dict[str, dict[str, Callable[[dict], Any]]] = {
    "resnet18": {
        "torchvision/resnet18": _torchvision("resnet18"),
        "timm/resnet18": _timm("resnet18"),
    },
    "resnet50": {
        "torchvision/resnet50": _torchvision("resnet50"),
        "timm/resnet50": _timm("resnet50"),
    },
    "vgg11": {
        "torchvision/vgg11": _torchvision("vgg11"),
        "timm/vgg11": _timm("vgg11", vgg_to_timm),
    },
    "vit_tiny_patch16_224": {"timm/vit_tiny_patch16_224": _timm("vit_tiny_patch16_224")},
    "vit_base_patch16_224": {
        "torchvision/vit_b_16": _torchvision_vit,
        "timm/vit_base_patch16_224": _timm("vit_base_patch16_224"),
    },
}


# --- measuring ---------------------------------------------------------------------------------


def _log(text: str) -> None:
    print(text, flush=True)


def _shared_sides(name: str, batch: int) -> tuple[dict[str, Any], Any]:
    """The native model and its library counterparts, same weights, checked to agree."""
    import torch

    import modelzoo as mz

    torch.manual_seed(0)
    native = mz.create(name).eval()
    state = native.state_dict()
    sides = {name: native}
    for label, build in SHARED[name].items():
        sides[label] = build(state).eval()
    card = mz.model_card(name)
    probe = card.example_inputs(1, seed=1)  # batch 1: the check costs little at any batch
    with torch.no_grad():
        want = native(*probe)
        for label, model in sides.items():
            diff = (model(*probe) - want).abs().max().item()
            if diff > OUTPUT_ATOL:
                raise SystemExit(
                    f"{label} and {name} differ by {diff:.3g} (> {OUTPUT_ATOL}) on the same "
                    "inputs and weights: they do not compute the same function, so their "
                    "speeds cannot be compared"
                )
    return sides, card.example_inputs(batch)


def _measure_shared(name: str, batch: int, repeats: int, steps_per_repeat: int) -> list[Any]:
    from modelzoo.benchmark import BenchmarkSettings, benchmark_side_by_side

    sides, inputs = _shared_sides(name, batch)
    return benchmark_side_by_side(
        {label: (model, inputs) for label, model in sides.items()},
        BenchmarkSettings(batch_size=batch),
        group=name,
        unit="images/s",
        warmup_steps=2 if batch == 1 else 1,
        repeats=repeats,
        steps_per_repeat=steps_per_repeat,
    )


def _b1_repeats(name: str) -> int:
    """Repeats at batch 1: about B1_SIDE_S seconds of steps per side, projected from the card's
    GFLOPs at 10 GFLOP/s (what one thread of this machine gives under its usual load)."""
    from modelzoo.registry import model_card

    step_s = (model_card(name).gflops() or 1.0) / 10.0
    return max(6, min(30, round(B1_SIDE_S / step_s)))


def _measure_one(name: str, batch: int, row_seconds: float | None, fast: bool = True) -> Any:
    from modelzoo.benchmark import BenchmarkSettings, benchmark_model

    settings = BenchmarkSettings(batch_size=batch)
    if fast:  # batch 1, and the rows of batch 32 projected under FAST_STEP_S
        return benchmark_model(
            name,
            settings,
            warmup_steps=2,
            min_steps=3,
            max_steps=100,
            min_time=FAST_ROW_S,
        )
    return benchmark_model(
        name, settings, warmup_steps=1, min_steps=1, max_steps=100, min_time=row_seconds or 0.0
    )


def _plan(
    b1: dict[str, list[Any]], b1_seconds: dict[str, float], budget_s: float
) -> dict[str, Any]:
    """Seconds of timed steps per row and side-by-side repeats at batch 32 that fit the budget.

    A batch-32 step is projected as B32_PER_B1 x 32 batch-1 steps (per sample, CPU kernels at
    batch 32 ran 0.6 to 1.4 times their batch-1 time on this machine: the projection is rough).
    Each row runs one warm-up step, then timed steps until ``row_seconds`` have passed (at
    least one), so slow rows get one timed step and fast rows many.
    """
    step = {n: B32_PER_B1 * 32 * max(r.step_ms for r in rows) / 1e3 for n, rows in b1.items()}
    build = {
        n: max(
            0.0, b1_seconds[n] - sum(r.step_ms * (r.steps + r.warmup_steps) for r in b1[n]) / 1e3
        )
        for n in b1
    }

    def projected(row_seconds: float, repeats: int) -> float:
        sweep = sum(
            build[n] + FAST_ROW_S + 2 * step[n]
            if step[n] < FAST_STEP_S
            else build[n] + step[n] + max(row_seconds, step[n])
            for n in b1
            if n not in SHARED
        )
        shared = sum(build[n] + len(b1[n]) * (1 + repeats) * step[n] for n in b1 if n in SHARED)
        return sweep + shared

    for row_seconds, repeats in ((8.0, 3), (4.0, 3), (4.0, 2), (0.0, 2)):
        if projected(row_seconds, repeats) <= budget_s:
            break
    return {
        "row_seconds": row_seconds,
        "repeats": repeats,
        "projected_s": projected(row_seconds, repeats),
        "fast": {n for n in b1 if step[n] < FAST_STEP_S},
    }


def _profile(name: str, batch: int) -> dict[str, list[list[Any]]]:
    """The five operators each side of a comparison spends most of one step in (self CPU)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    sides, inputs = _shared_sides(name, batch)
    out = {}
    for label, model in sides.items():
        with torch.no_grad():
            model(*inputs)  # warm
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model(*inputs)
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        out[label] = [
            [e.key, round(e.self_cpu_time_total / 1e3, 2), round(e.self_cpu_time_total / total, 3)]
            for e in events[:5]
        ]
    return out


def measure(args: argparse.Namespace) -> int:
    import timm
    import torch
    import torchvision

    from modelzoo.benchmark import read_csv, write_csv
    from modelzoo.registry import list_models

    torch.set_num_threads(args.threads)
    start, load_start = time.perf_counter(), os.getloadavg()
    names = list_models(args.models.split(","))
    rows: dict[tuple[str, int], list[Any]] = {}
    b1_seconds: dict[str, float] = {}
    _log(f"batch 1: {len(names)} models, {len(SHARED)} of them side by side")
    for name in names:
        t0 = time.perf_counter()
        if name in SHARED:
            rows[name, 1] = _measure_shared(name, 1, _b1_repeats(name), steps_per_repeat=1)
        else:
            rows[name, 1] = [_measure_one(name, 1, None)]
        b1_seconds[name] = time.perf_counter() - t0
        for r in rows[name, 1]:
            _log(f"  {r.model:32s} b1  {r.step_ms:9.2f} ms  cpu {r.cpu_ms:9.2f} ms")
    spent = time.perf_counter() - start
    plan = _plan({n: rows[n, 1] for n in names}, b1_seconds, args.budget_minutes * 60 - spent)
    _log(
        f"batch 32 plan: {plan['projected_s'] / 60:.1f} min projected (after {spent / 60:.1f} "
        f"min of batch 1); side-by-side repeats {plan['repeats']}; timed steps for "
        f"{plan['row_seconds']:g} s a row"
    )
    for name in names:
        if name in SHARED:
            rows[name, 32] = _measure_shared(name, 32, plan["repeats"], 1)
        else:
            fast = name in plan["fast"]
            rows[name, 32] = [_measure_one(name, 32, plan["row_seconds"], fast)]
        for r in rows[name, 32]:
            _log(f"  {r.model:32s} b32 {r.step_ms:9.1f} ms  cpu {r.cpu_ms:9.1f} ms")
    all_rows = [r for name in names for b in BATCH_SIZES for r in rows[name, b]]
    profiles = {}
    write_csv(all_rows, args.csv)
    all_rows = read_csv(args.csv)  # the report is rendered from the CSV's numbers, as --check does
    for miss in _misses(all_rows):
        key = f"{miss['group']} batch {miss['batch']}"
        group = [r for r in all_rows if r.group == miss["group"] and r.batch_size == miss["batch"]]
        cost = 2 * sum(r.step_ms for r in group) / 1e3  # a warm and a profiled step per side
        if time.perf_counter() - start + cost > args.budget_minutes * 60:
            _log(f"not profiling {key}: the budget is spent")
            continue
        _log(f"profiling {key}")
        profiles[key] = _profile(miss["group"], miss["batch"])
    facts = {
        "date": date.today().isoformat(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "threads": args.threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "budget_minutes": args.budget_minutes,
        "batch1_minutes": round(spent / 60, 1),
        "projected_batch32_minutes": round(plan["projected_s"] / 60, 1),
        "minutes": round((time.perf_counter() - start) / 60, 1),
        "repeats_b32": plan["repeats"],
        "row_seconds_b32": plan["row_seconds"],
        "b1_side_seconds": B1_SIDE_S,
        "fast_step_seconds": FAST_STEP_S,
        "fast_row_seconds": FAST_ROW_S,
        "profiles": profiles,
    }
    from modelzoo.utils.io import atomic_write_text

    atomic_write_text(args.md, render(all_rows, facts))
    _log(f"wrote {args.csv} and {args.md} in {facts['minutes']} min")
    return 0


# --- the report --------------------------------------------------------------------------------


def _shared_pairs(rows: list[Any]) -> list[dict[str, Any]]:
    """Each library row of a side-by-side group with its zoo row and their ratios."""
    pairs = []
    for lib in rows:
        if not lib.group or lib.model == lib.group:
            continue
        zoo = [r for r in rows if r.model == lib.group and r.batch_size == lib.batch_size]
        if len(zoo) != 1:
            raise ValueError(f"{lib.model} batch {lib.batch_size}: no single zoo row to compare")
        z = zoo[0]
        pairs.append(
            {
                "group": lib.group,
                "batch": lib.batch_size,
                "zoo": z,
                "lib": lib,
                "ratio_cpu": z.cpu_ms / lib.cpu_ms,
                "ratio_wall": z.step_ms / lib.step_ms,
            }
        )
    return pairs


def _misses(rows: list[Any]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for p in _shared_pairs(rows):
        if round(p["ratio_cpu"], 3) > RATIO_GOAL and (p["group"], p["batch"]) not in seen:
            seen.add((p["group"], p["batch"]))
            out.append(p)
    return out


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _rate(row: Any) -> str:
    return f"{row.throughput:.3g}"


def render(rows: list[Any], facts: dict[str, Any]) -> str:
    """The markdown of a run: the same rows and facts give the same text."""
    pairs = _shared_pairs(rows)
    shared_rows = []
    for p in pairs:
        ok = round(p["ratio_cpu"], 3) <= RATIO_GOAL
        shared_rows.append(
            [
                f"`{p['group']}`",
                p["batch"],
                f"`{p['lib'].model}`",
                f"{_ms(p['zoo'].cpu_ms)} ({_ms(p['zoo'].step_ms)})",
                f"{_ms(p['lib'].cpu_ms)} ({_ms(p['lib'].step_ms)})",
                f"{p['ratio_cpu']:.3f}",
                f"{p['ratio_wall']:.3f}",
                "meets" if ok else "**misses**",
            ]
        )
    met = sum(1 for p in pairs if round(p["ratio_cpu"], 3) <= RATIO_GOAL)
    why = []
    for p in pairs:
        if round(p["ratio_cpu"], 3) <= RATIO_GOAL:
            continue
        z, lib = p["zoo"], p["lib"]
        lo_z, hi_z = z.step_ms_min, z.step_ms_max
        lo_l, hi_l = lib.step_ms_min, lib.step_ms_max
        overlap = lo_z <= hi_l and lo_l <= hi_z
        text = (
            f"- **`{p['group']}` vs `{lib.model}`, batch {p['batch']}**: CPU time per step "
            f"{_ms(z.cpu_ms)} ms against {_ms(lib.cpu_ms)} ms (ratio {p['ratio_cpu']:.3f}) over "
            f"{z.steps} and {lib.steps} steps; wall-clock ranges {_ms(lo_z)}-{_ms(hi_z)} ms and "
            f"{_ms(lo_l)}-{_ms(hi_l)} ms "
            + (
                "overlap: the difference is within this machine's noise."
                if overlap
                else "do not overlap."
            )
        )
        why.append(text)
        profile = facts["profiles"].get(f"{p['group']} batch {p['batch']}")
        if profile is None:
            why.append("  Not profiled (the budget was spent).")
            continue
        for label in (p["group"], lib.model):
            ops = "; ".join(f"`{k}` {ms:g} ms ({share:.0%})" for k, ms, share in profile[label])
            why.append(f"  - `{label}`, one profiled step, top operators by self CPU time: {ops}")
    zoo_rows = {}
    for r in rows:
        if not r.group or r.model == r.group:
            zoo_rows.setdefault(r.model, {})[r.batch_size] = r
    every = []
    for name, by_batch in zoo_rows.items():
        b1, b32 = by_batch.get(1), by_batch.get(32)
        if b1 is None or b32 is None:
            continue
        mem = "-" if b32.peak_memory_mb is None else f"{b32.peak_memory_mb:,.0f}"
        every.append(
            [
                f"`{name}`",
                b1.unit,
                _rate(b1),
                _rate(b32),
                f"{_ms(b1.step_ms)} / {_ms(b1.cpu_ms)}",
                f"{_ms(b32.step_ms)} / {_ms(b32.cpu_ms)}",
                f"{b32.steps}",
                mem,
                f"{b1.gflops_per_sample:.3g}",
                f"{b1.num_params / 1e6:.2f}M",
            ]
        )
    one_step = ", ".join(f"`{r.model}`" for r in rows if r.batch_size == 32 and r.steps == 1)
    one_step = one_step or "none"
    lines = [
        "# CPU throughput",
        "",
        f"Measured by `OMP_NUM_THREADS={facts['omp_num_threads']} python "
        f"scripts/throughput_results.py --threads {facts['threads']}` on {facts['date']}: "
        f"{facts['cpu']} ({facts['cores']} cores, {facts['machine']}), {facts['threads']} torch "
        f"thread(s), CPU only, torch {facts['torch']}, torchvision {facts['torchvision']}, "
        f"timm {facts['timm']}. Load average (1, 5, 15 min) "
        f"{', '.join(map(str, facts['load_start']))} at the start and "
        f"{', '.join(map(str, facts['load_end']))} at the end: the machine's 2 cores are "
        "shared with other work, so absolute times are inflated (wall-clock more than CPU time); "
        "the side-by-side ratios, measured in one process with the steps interleaved, are the "
        "figure to read. Every number is in `benchmarks/throughput_cpu.csv` (the columns of "
        "`modelzoo benchmark --csv`).",
        "",
        f"Time: {facts['minutes']} min against a budget of {facts['budget_minutes']} min "
        f"(batch 1 took {facts['batch1_minutes']} min; batch 32 was projected from it at "
        f"{facts['projected_batch32_minutes']} min).",
        "",
        "## How it was measured",
        "",
        "- Each row is what `modelzoo benchmark NAME --batch-sizes 1,32 --threads 1` measures: "
        "infer mode (eval, `torch.no_grad`), fp32, random weights (seed 0), the card's example "
        f"inputs. Batch 1: 2 warm-up steps, then timed steps for at least "
        f"{facts['fast_row_seconds']:g} s (3 to 100). "
        f"Batch 32: 1 warm-up step, then timed steps until {facts['row_seconds_b32']:g} s have "
        "passed (at least 1, at most 100); rows projected under "
        f"{facts['fast_step_seconds']:g} s a step are timed as at batch 1. Rows timed on a "
        f"single step at batch 32 (no spread): {one_step}.",
        "- Step time: wall clock (median, min, max) and the median process CPU time per step. "
        "Throughput is at the median wall-clock step, in the row's unit: images/s; tokens/s "
        "(every input token, source and target of seq2seq models); env-steps/s for RL networks "
        "(one observation each); clips/s for audio; samples/s otherwise.",
        "- Peak memory: the resident set's high-water mark (`VmHWM`, reset through "
        "`/proc/self/clear_refs`) during the steps, above the resident size before them (the "
        "model and inputs). Approximate: the allocator keeps freed memory between rows.",
        "- GFLOPs per sample: `torch.utils.flop_counter.FlopCounterMode` over the first warm-up "
        "step (two FLOPs per multiply-add of matrix products, convolutions and attention).",
        "- Side by side: the native model and `torchvision.models.<x>` / "
        "`timm.create_model(<x>)` with the native model's weights (their outputs checked equal "
        f"within {OUTPUT_ATOL:g}), same inputs, same thread, in one process; each repeat runs a "
        "step of every side, the side that goes first rotating every repeat (batch 1: 2 warm-up "
        f"steps, then 6 to 30 repeats, about {facts['b1_side_seconds']:g} s a side; batch 32: "
        f"1 warm-up step, then {facts['repeats_b32']} repeats). "
        "Ratio = zoo / library of the median CPU time per step (wall-clock ratio beside it).",
        "- CUDA: no GPU was lent to this session. The CUDA table (fp32; bf16-mixed + "
        "channels_last; compile) and the gpt2_small training MFU (`--mfu`: bf16-mixed, fused "
        "AdamW, SDPA flash attention, `torch.compile`; peak 989.4 TFLOP/s dense bf16 for H100 "
        "SXM and H200 from NVIDIA's data sheets; goal >= 45%) wait for a GPU session.",
        "",
        "## Side by side with torchvision and timm",
        "",
        f"Step time in ms: CPU (wall). Goal: ratio <= {RATIO_GOAL} in every row; "
        f"{met} of {len(pairs)} rows meet it.",
        "",
        table(
            [
                "architecture",
                "batch",
                "library",
                "zoo ms",
                "library ms",
                "ratio (CPU)",
                "ratio (wall)",
                f"<= {RATIO_GOAL}",
            ],
            shared_rows,
        ),
        "",
    ]
    if why:
        lines += ["### Rows that miss the goal", "", *why, ""]
    lines += [
        "## Every native model (infer, fp32)",
        "",
        "Throughput in the row's unit per second; step ms as wall / CPU; steps timed at batch 32; "
        "peak MiB at batch 32; GFLOPs per sample of the forward.",
        "",
        table(
            [
                "model",
                "unit",
                "batch 1",
                "batch 32",
                "step ms b1",
                "step ms b32",
                "steps b32",
                "peak MiB b32",
                "GFLOPs",
                "params",
            ],
            every,
        ),
        "",
        _RUN_MARK + json.dumps(facts, sort_keys=True) + " -->",
        "",
    ]
    return "\n".join(lines)


# --- --check -----------------------------------------------------------------------------------


def _facts(md_path: Path) -> dict[str, Any] | None:
    """The run facts a report carries (None: not a report this script wrote)."""
    text = md_path.read_text()
    marker = text.rfind(_RUN_MARK)
    if marker < 0:
        return None
    return json.loads(text[marker + len(_RUN_MARK) :].rsplit(" -->", 1)[0])


def rerender(csv_path: Path, md_path: Path) -> int:
    """Write the report again from the CSV and its run facts (after a change of layout)."""
    from modelzoo.benchmark import read_csv
    from modelzoo.utils.io import atomic_write_text

    facts = _facts(md_path)
    if facts is None:
        raise SystemExit(f"{md_path} carries no run facts; measure with the script")
    atomic_write_text(md_path, render(read_csv(csv_path), facts))
    return 0


def check(csv_path: Path, md_path: Path) -> list[str]:
    """What is wrong with the committed files (empty: they hold)."""
    from modelzoo.benchmark import read_csv
    from modelzoo.registry import list_models

    problems = []
    rows = read_csv(csv_path)
    for name in list_models():
        for batch in BATCH_SIZES:
            found = [
                r
                for r in rows
                if r.model == name
                and r.batch_size == batch
                and r.mode == "infer"
                and r.precision == "32"
            ]
            if len(found) != 1:
                problems.append(f"{name}: {len(found)} infer fp32 rows at batch {batch}, want 1")
    for name, libs in SHARED.items():
        for batch in BATCH_SIZES:
            for label in libs:
                found = [
                    r
                    for r in rows
                    if r.model == label and r.batch_size == batch and r.group == name
                ]
                if len(found) != 1:
                    problems.append(f"{label} beside {name}: no row at batch {batch}")
    for r in rows:
        want = r.batch_size * r.items_per_sample / (r.step_ms / 1e3)
        if abs(r.throughput - want) > 1e-4 * want:
            problems.append(
                f"{r.model} batch {r.batch_size}: throughput {r.throughput:g} is not its median "
                f"step's {want:g}"
            )
    text = md_path.read_text()
    facts = _facts(md_path)
    if facts is None:
        return [*problems, f"{md_path}: no run facts; write it with the script"]
    try:
        rendered = render(rows, facts)
    except (ValueError, KeyError, ZeroDivisionError) as err:
        return [*problems, f"cannot render the report from the CSV: {err}"]
    ours, theirs = rendered.splitlines(), text.splitlines()
    for k, (a, b) in enumerate(zip(ours, theirs), start=1):
        if a != b:
            problems.append(
                f"{md_path}:{k} is not what the CSV gives (ratios and verdicts are recomputed "
                f"from its numbers):\n  file: {b}\n  CSV:  {a}"
            )
            break
    else:
        if len(ours) != len(theirs):
            problems.append(f"{md_path}: {len(theirs)} lines, the CSV renders {len(ours)}")
    return problems


# --- MFU ---------------------------------------------------------------------------------------


def measure_mfu(args: argparse.Namespace) -> int:
    import torch

    import modelzoo as mz
    from modelzoo.benchmark import (
        BenchmarkSettings,
        benchmark_module,
        mfu,
        peak_bf16_tflops,
    )
    from modelzoo.layers.specs import TensorSpec

    device = torch.device(args.device)
    peak = args.peak_tflops
    label = "--peak-tflops"
    if peak is None:
        if device.type != "cuda":
            raise SystemExit("--mfu on the CPU needs --peak-tflops (there is no bf16 peak table)")
        label = torch.cuda.get_device_name(device)
        peak = peak_bf16_tflops(label)
        if peak is None:
            raise SystemExit(f"no dense bf16 peak known for {label!r}; pass --peak-tflops")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    model = mz.create(args.mfu_model, drop_rate=0.0, attn_drop_rate=0.0)
    spec = TensorSpec((args.mfu_seq_len,), torch.long, 0, model.vocab_size, name="tokens")
    tokens = spec.example(args.mfu_batch, torch.Generator().manual_seed(0))
    settings = BenchmarkSettings(
        mode="train",
        batch_size=args.mfu_batch,
        precision="bf16-mixed",
        compile=not args.no_compile,
        device=str(device),
        optimizer="adamw",
    )
    row = benchmark_module(
        model,
        (tokens,),
        settings,
        name=args.mfu_model,
        unit="tokens/s",
        items_per_sample=args.mfu_seq_len,
        warmup_steps=args.mfu_warmup,
        min_steps=args.mfu_steps,
        max_steps=args.mfu_steps,
        min_time=0,
    )
    flops_per_step = row.gflops_per_sample * 1e9 * row.batch_size
    result = {
        **row.to_dict(),
        "flops_per_step": flops_per_step,
        "peak_tflops": peak,
        "peak_source": label,
        "mfu": mfu(flops_per_step, row.step_ms / 1e3, peak),
    }
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=CSV_PATH)
    parser.add_argument("--md", type=Path, default=MD_PATH)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--budget-minutes", type=float, default=45.0, help="the run's budget (default 45)"
    )
    parser.add_argument(
        "--models",
        default="*",
        help="comma-separated patterns: measure only these (a partial table, for trials)",
    )
    parser.add_argument("--check", action="store_true", help="check the committed files")
    parser.add_argument(
        "--render", action="store_true", help="write the report again from the CSV (no measuring)"
    )
    parser.add_argument("--mfu", action="store_true", help="gpt2_small training MFU on CUDA")
    parser.add_argument("--device", default="cuda", help="--mfu's device (default cuda)")
    parser.add_argument("--peak-tflops", type=float, help="--mfu's peak, TFLOP/s")
    parser.add_argument("--mfu-model", default="gpt2_small")
    parser.add_argument("--mfu-batch", type=int, default=16)
    parser.add_argument("--mfu-seq-len", type=int, default=1024)
    parser.add_argument("--mfu-warmup", type=int, default=3)
    parser.add_argument("--mfu-steps", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true", help="--mfu without torch.compile")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.csv, args.md)
        for p in problems:
            print(f"FAIL {p}")
        print("ok" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    if args.render:
        return rerender(args.csv, args.md)
    if args.mfu:
        return measure_mfu(args)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
