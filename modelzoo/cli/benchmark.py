"""``modelzoo benchmark``: throughput, step time, peak memory and FLOPs, one row per setting.

    modelzoo benchmark 'resnet*' --mode infer --batch-sizes 1,32 --precision 32,bf16-mixed
    modelzoo benchmark gpt2_small --mode train --optimizer adamw --device cuda --compile --csv t.csv

Every combination of the listed modes, batch sizes and precisions is one row per model (with
the channels_last and compile flags as given). ``--csv`` writes the table; ``--json`` prints
one JSON list of the rows on stdout (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelzoo.cli.common import format_params
from modelzoo.errors import ConfigError, ModelzooError

if TYPE_CHECKING:
    from modelzoo.benchmark import BenchmarkRow, BenchmarkSettings

__all__ = ["add_commands", "parse_list", "parse_batch_sizes"]


def parse_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    """``"32,bf16-mixed"`` -> ``["32", "bf16-mixed"]``, each checked against ``allowed``."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"--{what} needs at least one value, one of {', '.join(allowed)}")
    for item in items:
        if item not in allowed:
            raise ConfigError(f"--{what}: {item!r} is not one of {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def parse_batch_sizes(text: str) -> list[int]:
    """``"1,8,64"`` -> ``[1, 8, 64]``; each must be a whole number >= 1."""
    sizes = []
    for item in (t.strip() for t in text.split(",")):
        if not item.isdigit() or int(item) < 1:
            raise ConfigError(
                f"--batch-sizes takes whole numbers >= 1 separated by commas, like 1,8,64; "
                f"got {text!r}"
            )
        sizes.append(int(item))
    return list(dict.fromkeys(sizes))


def _names(args: argparse.Namespace) -> list[str]:
    from modelzoo.registry import EXTERNAL_PREFIXES, list_models

    external = args.external or args.pattern.startswith(EXTERNAL_PREFIXES)
    return list_models(args.pattern, family=args.family, task=args.task, include_external=external)


def _pristine(settings: BenchmarkSettings) -> bool:
    """Whether measuring in these settings leaves the model as it was built (reusable)."""
    return (
        settings.mode == "infer"
        and settings.precision != "bf16-true"
        and not settings.channels_last
        and not settings.compile
    )


def _show(row: BenchmarkRow) -> list[str]:
    r = row.to_dict()
    setting = r["precision"] + (" cl" if r["channels_last"] else "")
    setting += " compiled" if r["compile"] else ""
    memory = "-" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}"
    return [
        r["model"],
        r["mode"],
        str(r["batch_size"]),
        setting,
        f"{r['throughput']:.4g} {r['unit']}",
        f"{r['step_ms']:.4g} ({r['step_ms_min']:.4g}-{r['step_ms_max']:.4g})",
        memory,
        f"{r['gflops_per_sample']:.4g}",
        format_params(r["num_params"]),
    ]


_HEADER = ["model", "mode", "batch", "precision", "throughput", "step ms (min-max)", "peak MiB"]
_HEADER += ["GFLOPs/sample", "params"]
_WIDTHS = [30, 5, 5, 16, 24, 26, 8, 13, 6]  # rows print as they come: fixed columns


def _line(cells: list[str]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, _WIDTHS)).rstrip()


def _cmd_benchmark(args: argparse.Namespace) -> int:
    import torch

    from modelzoo.benchmark import (
        MODES,
        PRECISIONS,
        BenchmarkSettings,
        benchmark_module,
        throughput_unit,
        write_csv,
    )
    from modelzoo.registry import create, model_card

    modes = parse_list(args.mode, MODES, "mode")
    precisions = parse_list(args.precision, PRECISIONS, "precision")
    batch_sizes = parse_batch_sizes(args.batch_sizes)
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = [
        BenchmarkSettings(
            mode=mode,
            batch_size=batch,
            precision=precision,
            channels_last=args.channels_last,
            compile=args.compile,
            device=device,
            optimizer=args.optimizer,
        )
        for mode, batch, precision in itertools.product(modes, batch_sizes, precisions)
    ]
    names = _names(args)
    if not names:
        print("no models match; try `modelzoo list` to see the names", file=sys.stderr)
        return 1
    progress: Callable[[str], None] = (
        (lambda line: print(line, file=sys.stderr, flush=True))
        if args.json
        else (lambda line: print(line, flush=True))
    )
    rows, failures = [], []
    progress(_line(_HEADER))
    progress(_line(["-" * w for w in _WIDTHS]))
    for name in names:
        card = model_card(name)
        unit, items = throughput_unit(card.input_spec, card.family, card.task)
        model = None
        for setting in settings:
            try:
                if model is None:
                    torch.manual_seed(0)
                    model = create(name)
                row = benchmark_module(
                    model,
                    card.example_inputs(setting.batch_size),
                    setting,
                    name=name,
                    unit=unit,
                    items_per_sample=items,
                    warmup_steps=args.warmup_steps,
                    min_steps=args.min_steps,
                    max_steps=args.max_steps,
                    min_time=args.min_time,
                )
            except (ModelzooError, RuntimeError, NotImplementedError) as err:
                # One model that cannot run a setting (an op without bf16 kernels, a compile
                # failure) must not cost the rest of the table; the exit status reports it.
                failures.append(
                    f"{name} {setting.mode} batch {setting.batch_size} "
                    f"{setting.precision}: {type(err).__name__}: {err}"
                )
                print(f"modelzoo: {failures[-1]}", file=sys.stderr)
                model = None
                continue
            rows.append(row)
            progress(_line(_show(row)))
            if not _pristine(setting):
                model = None  # changed in place (cast, memory format, compiled, trained)
    if args.csv:
        path = write_csv(rows, args.csv)
        print(f"wrote {len(rows)} rows to {path}", file=sys.stderr)
    if args.json:
        print(json.dumps([row.to_dict() for row in rows]))
    if failures:
        print(
            f"{len(failures)} of {len(rows) + len(failures)} measurements failed (above)",
            file=sys.stderr,
        )
        return 1
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``benchmark`` to the ``modelzoo`` parser."""
    p = commands.add_parser(
        "benchmark",
        help="throughput, step time, peak memory and GFLOPs per model and setting",
        description="Warm-up steps, then timed steps (synchronised on CUDA) of every matching "
        "model in every combination of --mode, --batch-sizes and --precision; one row each. "
        "Train mode is forward + backward + optimizer step on the model's example inputs.",
    )
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vit*'")
    p.add_argument("--family", help="only this family")
    p.add_argument("--task", help="only this task")
    p.add_argument("--external", action="store_true", help="include timm/ and torchvision/ models")
    p.add_argument("--mode", default="infer", help="infer, train or both (infer,train)")
    p.add_argument("--batch-sizes", default="1", help="comma-separated, e.g. 1,8,64")
    p.add_argument(
        "--precision",
        default="32",
        help="comma-separated trainer precisions: 32, bf16-mixed, 16-mixed, bf16-true",
    )
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    p.add_argument(
        "--optimizer", default="sgd", choices=("sgd", "adamw"), help="train mode's optimizer"
    )
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed steps first")
    p.add_argument("--min-steps", type=int, default=3, help="timed steps, at least")
    p.add_argument("--max-steps", type=int, default=200, help="timed steps, at most")
    p.add_argument("--min-time", type=float, default=1.0, help="seconds of timed steps, at least")
    p.add_argument("--csv", metavar="FILE", help="write the rows to this CSV file")
    p.add_argument("--json", action="store_true", help="print one JSON list of the rows")
    p.set_defaults(run=_cmd_benchmark)
