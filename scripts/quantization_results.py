"""Int8 results for the shipped weight sets: the card's metric and CPU latency, before and after.

    OMP_NUM_THREADS=1 python scripts/quantization_results.py            # every row (minutes)
    python scripts/quantization_results.py --only mlp.digits:dynamic    # some rows (merged)
    python scripts/quantization_results.py --check [--no-latency]       # re-measure and compare
    python scripts/quantization_results.py --render [--check]           # the markdown from the JSON

For every row of :data:`ROWS` (a shipped weight set and the mode that fits it) the float
model is loaded (``modelzoo.create("arch.tag")``) and quantized with ``modelzoo.quantize``:
``static`` (torchao's PT2E flow, calibrated on the val split of the card's data, see
``modelzoo.quantize.calibration_data``) or ``dynamic`` (``torch.ao`` dynamic int8). Then,
in one process:

- the card's metric is measured on the TEST split for both models, the way the card was
  measured (the recipe's task through ``Trainer.evaluate``; policies by
  ``evaluate_policy`` on the card's seeded episodes);
- latency at batch 1 and 32 on the first test samples: both sides warmed up (the static
  side is lowered for the shape), then timed in rounds, the order of the two sides
  alternating every round, on one thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``).
  Each timing is the CPU time of this process for a block of calls (about
  ``BLOCK_SECONDS``), divided by the calls: on a shared machine other jobs stretch the
  wall clock but not the CPU time a side needs. Medians and quartiles are reported; the
  speed-up is the median of the per-round ratios float/int8 (paired rounds).

The results go to ``benchmarks/quantization.json`` (every number) and
``benchmarks/quantization.md`` (written from the JSON). ``--check`` re-measures the
selected rows and fails when a metric moves by more than ``METRIC_RTOL`` (quantization
and evaluation are deterministic on one machine) or when a latency ratio recorded clearly
away from 1 (outside ``[1/DIRECTION_BAND, DIRECTION_BAND]``) comes out on the other side
of 1; it also checks that the markdown file is the one the JSON renders.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads OpenMP

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_name, table  # noqa: E402

OUT_MD = ROOT / "benchmarks/quantization.md"
OUT_JSON = ROOT / "benchmarks/quantization.json"
BATCH_SIZES = (1, 32)
ROUNDS = 15
CHECK_ROUNDS = 7
BLOCK_SECONDS = 0.05  # CPU time per timed block of calls (one side, one round)
METRIC_RTOL = 1e-3
DIRECTION_BAND = 1.2
TARGET_DROP_POINTS = 1.0
TARGET_SPEEDUP = 1.5

_logger = logging.getLogger("quantization_results")


@dataclass(frozen=True)
class Row:
    """One weight set in one mode.

    Attributes:
        weights: the shipped weight set (``arch.tag``).
        mode: ``dynamic`` or ``static``.
        metric: the card's metric the table shows.
        higher_is_better: the metric's direction.
        target: whether the issue's targets (<= 1 point drop, >= 1.5x at batch 32) apply
            (the CNNs and MLPs).
    """

    weights: str
    mode: str
    metric: str
    higher_is_better: bool = True
    target: bool = False

    @property
    def key(self) -> str:
        return f"{self.weights}:{self.mode}"


ROWS = [
    Row("mlp.digits", "dynamic", "accuracy", target=True),
    Row("mlp.digits", "static", "accuracy", target=True),
    Row("cnn_small.digits", "static", "accuracy", target=True),
    Row("resnet20.digits", "static", "accuracy", target=True),
    Row("resnet20.digits_0to4", "static", "accuracy", target=True),
    Row("audio_cnn.tones", "static", "accuracy", target=True),
    Row("unet_tiny.shapes", "static", "miou", target=True),
    Row("vit_tiny_patch4_32.digits", "dynamic", "accuracy"),
    Row("gpt_nano.stdlib", "dynamic", "bits_per_byte", higher_is_better=False),
    Row("lstm_lm.stdlib", "dynamic", "bits_per_byte", higher_is_better=False),
    Row("gru_lm.stdlib", "dynamic", "bits_per_byte", higher_is_better=False),
    Row("vae.digits", "dynamic", "elbo", higher_is_better=False),
    Row("actor_critic.cartpole", "dynamic", "mean_return"),
    # Tried, and recorded with the reason when the flow refuses them.
    Row("conv_autoencoder.digits", "static", "mse", higher_is_better=False),
    Row("fcos_tiny.shapes", "static", "map"),
]
# Shipped weight sets that have no row, and why; every other shipped set without a row is
# listed as not measured yet (from the manifest, so a newly shipped set cannot be missed).
NOT_QUANTIZED = {
    "dcgan.digits": "its card measures the GAN game (the discriminator's accuracy) and a "
    "classifier's verdict on generated samples, not a prediction a deployment serves",
}
NOT_MEASURED = "shipped after this table's rows were chosen; not measured yet (add a Row and run "
NOT_MEASURED += "the script again)"


def not_attempted() -> dict[str, str]:
    """Every shipped weight set without a row: the reason it has none, or that it is not
    measured yet."""
    from modelzoo.weights import all_weight_sets

    with_rows = {row.weights for row in ROWS}
    # Shipped: trained here, its files in the repository's weights/ (not the published
    # torchvision and timm weight sets, which are fetched on first use).
    shipped = [
        ws.name
        for ws in all_weight_sets()
        if ws.files and all(f.path for f in ws.files) and ws.name not in with_rows
    ]
    unmeasured = sorted(n for n in shipped if n not in NOT_QUANTIZED)
    reasons = {n: why for n, why in NOT_QUANTIZED.items() if n in shipped}
    if unmeasured:
        reasons[", ".join(unmeasured)] = NOT_MEASURED
    return reasons


# --- measuring ---------------------------------------------------------------------------


def _recipe(weights: str) -> Any:
    from modelzoo.config import recipe_from_dict
    from modelzoo.registry import resolve_weight_set, split_name

    arch, tag = split_name(weights)
    ws = resolve_weight_set(arch, tag)
    recipe = recipe_from_dict(dict(ws.recipe))
    cfg = recipe.train
    cfg.device, cfg.precision, cfg.progress = "cpu", "32", False
    cfg.plots, cfg.tensorboard, cfg.dry_run, cfg.compile = False, False, False, False
    cfg.ema_decay = None  # the shipped file holds the evaluated weights
    return recipe


def evaluate(weights: str, model: torch.nn.Module) -> dict[str, float]:
    """The card's metrics of ``model`` on the test split, measured as the card was."""
    from modelzoo.train.recipes import build_run
    from modelzoo.train.rl import is_rl_recipe

    recipe = _recipe(weights)
    if is_rl_recipe(recipe):
        from modelzoo.train.rl.evaluation import evaluate_policy

        task, data = recipe.task, recipe.data
        result = evaluate_policy(model, data["env_id"], task["eval_episodes"], task["eval_seed"])
        return {k: float(result[k]) for k in ("mean_return", "std_return")}
    # A fresh run, as the card's measurement did: the same seeds before the evaluation.
    trainer, data = build_run(recipe, None)
    trainer.task.model = model
    metrics = dict(trainer.evaluate(data.test))
    if trainer.task.name == "lm" and "loss" in metrics:
        metrics["bits_per_byte"] = metrics["loss"] / math.log(2)  # bytes are the tokens
    return {k: float(v) for k, v in metrics.items()}


def latency_inputs(weights: str, model: torch.nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    """The first ``batch`` test samples (the card's data and shapes), without targets."""
    from torch.utils.data import default_collate

    import modelzoo as mz
    from modelzoo.train.recipes import build_run
    from modelzoo.train.rl import is_rl_recipe

    recipe = _recipe(weights)
    if is_rl_recipe(recipe):
        return mz.example_inputs(model, batch)
    _, data = build_run(recipe, None)
    items = [data.test[i] for i in range(batch)]
    collated = (data.collate_fn or default_collate)(items)
    if isinstance(collated, (tuple, list)) and len(collated) > 1:
        return tuple(collated[:-1])
    return (collated,)


def _block(fn: Callable[[], Any], calls: int) -> tuple[float, float]:
    """CPU and wall seconds per call over ``calls`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls


def time_pair(
    float_fn: Callable[[], Any], int8_fn: Callable[[], Any], rounds: int
) -> dict[str, Any]:
    """Both sides timed in alternating order; per-side CPU/wall times and paired ratios."""
    for fn in (float_fn, int8_fn):  # warm-up (the static side is lowered here)
        fn()
        fn()
    once, _ = _block(float_fn, 3)
    calls = max(1, min(1000, round(BLOCK_SECONDS / max(once, 1e-6))))
    sides: dict[str, dict[str, list[float]]] = {
        "float": {"cpu": [], "wall": []},
        "int8": {"cpu": [], "wall": []},
    }
    order = [("float", float_fn), ("int8", int8_fn)]
    for r in range(rounds):
        for name, fn in order if r % 2 == 0 else order[::-1]:
            cpu, wall = _block(fn, calls)
            sides[name]["cpu"].append(cpu)
            sides[name]["wall"].append(wall)
    ratios = [f / q for f, q in zip(sides["float"]["cpu"], sides["int8"]["cpu"])]
    wall_ratios = [f / q for f, q in zip(sides["float"]["wall"], sides["int8"]["wall"])]
    return {
        "calls_per_block": calls,
        "rounds": rounds,
        "float_ms": _summary(sides["float"]["cpu"], 1e3),
        "int8_ms": _summary(sides["int8"]["cpu"], 1e3),
        "float_wall_ms": _summary(sides["float"]["wall"], 1e3),
        "int8_wall_ms": _summary(sides["int8"]["wall"], 1e3),
        "speedup": _summary(ratios),
        "wall_speedup": _summary(wall_ratios),
    }


def _summary(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles([v * scale for v in values], n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3}


def measure_row(row: Row, *, latency: bool, rounds: int) -> dict[str, Any]:
    """Quantize one row's weight set and measure both sides."""
    import modelzoo as mz
    from modelzoo.quantize import calibration_data, quantization_info, quantize

    torch.manual_seed(0)
    model = mz.create(row.weights).eval()
    out: dict[str, Any] = {"weights": row.weights, "mode": row.mode, "metric": row.metric}
    out["load_average"] = os.getloadavg()[0]  # the machine is shared: how busy it was
    start = time.perf_counter()
    try:
        calibration = calibration_data(row.weights) if row.mode == "static" else None
        qmodel = quantize(model, row.mode, calibration=calibration)
    except Exception as err:
        out["error"] = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
        _logger.info("%s: %s", row.key, out["error"])
        _logger.debug("%s", traceback.format_exc())
        return out
    out["quantize_seconds"] = time.perf_counter() - start
    out["path"] = quantization_info(qmodel)["path"]
    with torch.no_grad():
        out["before"] = evaluate(row.weights, model)
        out["after"] = evaluate(row.weights, qmodel)
    if latency:
        out["latency"] = {}
        for batch in BATCH_SIZES:
            inputs = latency_inputs(row.weights, model, batch)

            def run_float(inputs=inputs) -> Any:
                with torch.no_grad():
                    return model(*inputs)

            def run_int8(inputs=inputs) -> Any:
                with torch.no_grad():
                    return qmodel(*inputs)

            out["latency"][str(batch)] = time_pair(run_float, run_int8, rounds)
    _logger.info(
        "%s: %s -> %s", row.key, out["before"].get(row.metric), out["after"].get(row.metric)
    )
    return out


def machine() -> dict[str, Any]:
    import torchao

    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f" {f}" in flags]
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "isa": isa,
        "torch": torch.__version__,
        "torchao": torchao.__version__,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": sys.version.split()[0],
    }


# --- the markdown -----------------------------------------------------------------------


def _points(row: Row, before: float, after: float) -> str:
    if row.metric in ("accuracy", "miou"):
        return f"{100 * (after - before):+.2f} pt"
    return f"{after - before:+.4g}"


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def _ms(s: dict[str, float]) -> str:
    return f"{s['median']:.3g} ({s['q1']:.3g}–{s['q3']:.3g})"


def _verdict(row: Row, result: dict[str, Any]) -> str:
    if not row.target or "latency" not in result:
        return "–"
    before, after = result["before"][row.metric], result["after"][row.metric]
    drop = 100 * (before - after) if row.higher_is_better else 100 * (after - before)
    speed = result["latency"]["32"]["speedup"]["median"]
    ok_drop, ok_speed = drop <= TARGET_DROP_POINTS, speed >= TARGET_SPEEDUP
    parts = ["drop ok" if ok_drop else f"**drop {drop:.2f} pt**"]
    parts.append("speed ok" if ok_speed else f"**{speed:.2f}x < {TARGET_SPEEDUP}x**")
    return ", ".join(parts)


def render(results: dict[str, Any]) -> str:
    rows = {row.key: row for row in ROWS}
    m = results["machine"]
    loads = [r["load_average"] for r in results["rows"].values()]
    lines = [
        "# Int8 quantization of the shipped weight sets",
        "",
        "Written by `scripts/quantization_results.py` from `benchmarks/quantization.json`; "
        "`python scripts/quantization_results.py --check` re-measures it. Do not edit by hand.",
        "",
        f"Machine: {m['cpu']} ({m['cores']} cores; {', '.join(m['isa']) or 'no AVX2'}), "
        f"torch {m['torch']}, torchao {m['torchao']}, Python {m['python']}, "
        f"{m['threads']} torch thread, OMP_NUM_THREADS={m['omp_num_threads']}. "
        f"Load average (1 min) between {min(loads):.1f} and {max(loads):.1f} when the rows "
        "were measured: the machine is shared, so latency "
        "is the CPU time this process spent per batch, which other jobs disturb far less "
        "than the wall clock (the JSON keeps the wall-clock figures too).",
        "",
        "Paths:",
        "",
        "- **static**: torchao's PT2E flow (`torchao.quantization.pt2e`: `torch.export` with "
        "a dynamic batch, `X86InductorQuantizer`, `prepare_pt2e`, calibration on the val "
        "split of the card's data, `convert_pt2e`), lowered to oneDNN int8 kernels with "
        "`lower_pt2e_quantized_to_x86` for each input shape. "
        "`torch.ao.quantization.quantize_pt2e` is gone from torch 2.14.",
        "- **dynamic**: `torch.ao.quantization.quantize_dynamic` (fbgemm int8 Linear, LSTM "
        "and GRU; the zoo's `Recurrent` layers go through an adapter to torch's int8 LSTM/GRU). "
        "torch marks `torch.ao.quantization` deprecated for torchao, whose eager replacement "
        "has no LSTM/GRU and ran several times slower than float on this CPU without "
        "`torch.compile`.",
        "",
        f"Metrics: the card's metric on the TEST split, measured as the card was. Targets "
        f"(CNN and MLP rows): at most {TARGET_DROP_POINTS:g} point lost and at least "
        f"{TARGET_SPEEDUP}x faster at batch 32. Latency: ms of CPU time per batch, median "
        f"(quartiles) over {results['rounds']} alternating rounds; speed-up = median of the "
        "paired per-round ratios float/int8.",
        "",
    ]
    header = [
        "weight set",
        "mode",
        "metric",
        "float",
        "int8",
        "change",
        "b1 float ms",
        "b1 int8 ms",
        "b1 speed-up",
        "b32 float ms",
        "b32 int8 ms",
        "b32 speed-up",
        "targets",
    ]
    body, failed = [], []
    for key, result in results["rows"].items():
        row = rows[key]
        if "error" in result:
            failed.append((row, result["error"]))
            continue
        before, after = result["before"][row.metric], result["after"][row.metric]
        cells = [f"`{row.weights}`", row.mode, row.metric, _fmt(before), _fmt(after)]
        cells.append(_points(row, before, after))
        for batch in ("1", "32"):
            lat = result.get("latency", {}).get(batch)
            if lat is None:
                cells += ["–", "–", "–"]
                continue
            sp = lat["speedup"]
            cells += [
                _ms(lat["float_ms"]),
                _ms(lat["int8_ms"]),
                f"{sp['median']:.2f}x ({sp['q1']:.2f}–{sp['q3']:.2f})",
            ]
        cells.append(_verdict(row, result))
        body.append(cells)
    lines.append(table(header, body))
    lines.append("")
    if failed:
        lines += ["Not quantized (the flow refused them; the reason as it was raised):", ""]
        lines += [f"- `{r.weights}` ({r.mode}): {err}" for r, err in failed]
        lines.append("")
    lines += ["Not attempted:", ""]
    lines += [f"- `{name}`: {why}" for name, why in not_attempted().items()]
    lines += ["", _reading(results, rows), ""]
    return "\n".join(lines)


def _reading(results: dict[str, Any], rows: dict[str, Row]) -> str:
    """What the numbers say, computed from them (no figure typed by hand)."""
    missed = []
    for key, result in results["rows"].items():
        row = rows[key]
        if row.target and "latency" in result:
            speed = result["latency"]["32"]["speedup"]["median"]
            if speed < TARGET_SPEEDUP:
                ms = result["latency"]["32"]["float_ms"]["median"]
                missed.append(f"`{row.weights}` {row.mode} ({speed:.2f}x; float {ms:.3g} ms)")
    text = (
        "Reading: int8 pays where convolutions or large matrix products dominate the time. "
        "On models this small (8x8 and 16x16 digits, a 64-feature MLP, tiny transformers) "
        "a batch takes well under a millisecond to a few milliseconds in float, and the "
        "int8 side adds a fixed cost per layer (quantizing activations, the oneDNN/fbgemm "
        "call, dequantizing), so it can be slower."
    )
    if missed:
        text += " Speed target missed at batch 32: " + "; ".join(missed) + "."
    return text


# --- main ----------------------------------------------------------------------------------


def _selected(only: Sequence[str] | None) -> list[Row]:
    if not only:
        return list(ROWS)
    keys = {row.key: row for row in ROWS}
    unknown = [k for k in only if k not in keys]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows are {', '.join(keys)}")
    return [keys[k] for k in only]


def _check(rows: list[Row], published: dict[str, Any], *, latency: bool) -> int:
    problems = 0
    if OUT_MD.read_text() != render(published):
        print(f"{OUT_MD.relative_to(ROOT)} is not what {OUT_JSON.name} renders: re-run the script")
        problems += 1
    for row in rows:
        old = published["rows"].get(row.key)
        if old is None:
            print(f"{row.key}: not in {OUT_JSON.name}")
            problems += 1
            continue
        new = measure_row(row, latency=latency, rounds=CHECK_ROUNDS)
        label = f"{row.weights} {row.mode}"
        if "error" in old or "error" in new:
            same = ("error" in old) == ("error" in new)
            print(f"{label}: " + ("still refused" if same else f"now {new.get('error', 'works')}"))
            problems += not same
            continue
        bad = [
            f"{side} {name}: published {old[side][name]:.6g}, measured {new[side][name]:.6g}"
            for side in ("before", "after")
            for name in old[side]
            if not math.isclose(old[side][name], new[side][name], rel_tol=METRIC_RTOL, abs_tol=1e-9)
        ]
        print(f"{label}: " + ("metrics reproduced" if not bad else "; ".join(bad)))
        problems += bool(bad)
        if latency:
            for batch, lat in old.get("latency", {}).items():
                was = lat["speedup"]["median"]
                now = new["latency"][batch]["speedup"]["median"]
                clear = was >= DIRECTION_BAND or was <= 1 / DIRECTION_BAND
                flipped = clear and (was > 1) != (now > 1)
                verdict = "direction changed" if flipped else "direction holds"
                figures = f"speed-up {was:.2f}x published, {now:.2f}x now"
                print(f"{label} batch {batch}: {figures}: {verdict}")
                problems += flipped
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="+", metavar="WEIGHTS:MODE", help="rows to measure")
    parser.add_argument("--check", action="store_true", help="re-measure and compare")
    parser.add_argument("--no-latency", action="store_true", help="metrics only")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timed rounds per side")
    parser.add_argument(
        "--render",
        action="store_true",
        help="rewrite the markdown from the JSON (with --check: exit 1 if it is stale)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("onnx_ir", "torch._export", "torch.export", "modelzoo.transfer.loading"):
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.set_num_threads(1)
    if args.render:
        from modelzoo.utils.io import atomic_write_text

        text = render(json.loads(OUT_JSON.read_text()))
        if args.check:
            stale = OUT_MD.read_text() != text
            print(f"{OUT_MD.name}: {'STALE: run --render' if stale else 'up to date'}")
            return 1 if stale else 0
        atomic_write_text(OUT_MD, text)
        return 0
    rows = _selected(args.only)
    if args.check:
        return _check(rows, json.loads(OUT_JSON.read_text()), latency=not args.no_latency)
    from modelzoo.utils.io import atomic_write_text

    published = json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() and args.only else None
    measured = {
        row.key: measure_row(row, latency=not args.no_latency, rounds=args.rounds) for row in rows
    }
    results = {
        "machine": machine(),
        "rounds": args.rounds,
        "rows": {},
    }
    for row in ROWS:  # table order, merged with the published rows not re-measured
        if row.key in measured:
            results["rows"][row.key] = measured[row.key]
        elif published and row.key in published["rows"]:
            results["rows"][row.key] = published["rows"][row.key]
    atomic_write_text(OUT_JSON, json.dumps(results, indent=1, sort_keys=False) + "\n")
    atomic_write_text(OUT_MD, render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
