"""``modelzoo list``, ``modelzoo info``, ``modelzoo benchmark``: what the zoo holds."""

from __future__ import annotations

import argparse
import json
import sys

from modelzoo.cli.common import format_params, table

__all__ = ["add_commands", "model_table_markdown"]


def _cmd_list(args: argparse.Namespace) -> int:
    from modelzoo.registry import list_models, model_card

    names = list_models(
        args.pattern, family=args.family, task=args.task, include_external=args.external
    )
    cards = [model_card(n) for n in names]
    if args.json:
        rows = [
            {"name": c.name, "family": c.family, "task": c.task, "num_params": c.num_params}
            for c in cards
        ]
        print(json.dumps(rows))
        return 0
    if not cards:
        print("no models match; try `modelzoo list` with no filter", file=sys.stderr)
        return 1
    if args.markdown:
        print(model_table_markdown(cards))
        return 0
    rows = [[c.name, c.family, c.task, format_params(c.num_params)] for c in cards]
    print(table(rows, ["name", "family", "task", "params"]))
    return 0


def model_table_markdown(cards: list) -> str:
    """The README's model table: one row per model, grouped by family."""
    lines = ["| name | family | task | params | inputs |", "|---|---|---|---|---|"]
    for c in sorted(cards, key=lambda c: c.family):
        inputs = "; ".join(spec.describe() for spec in c.input_spec)
        lines.append(
            f"| `{c.name}` | {c.family} | {c.task} | {format_params(c.num_params)} | {inputs} |"
        )
    return "\n".join(lines)


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from modelzoo.benchmark import time_model
    from modelzoo.registry import list_models

    names = list_models(args.pattern, family=args.family, task=args.task)
    if not names:
        print("no models match; try `modelzoo list` to see the names", file=sys.stderr)
        return 1
    timings = []
    for name in names:
        timing = time_model(name, batch_size=args.batch_size, repeats=args.repeats)
        timings.append(timing)
        if not args.json:
            print(
                f"{name:<32} {format_params(timing.num_params):>7}  build {timing.build_s:6.2f} s"
                f"  forward {timing.forward_ms:8.1f} ms  train step {timing.train_step_ms:8.1f} ms"
                f"  -> {timing.output}",
                flush=True,
            )
    if args.json:
        print(json.dumps({"batch_size": args.batch_size, "models": [t.to_dict() for t in timings]}))
    else:
        total = sum(t.num_params for t in timings)
        print(f"{len(timings)} models, {format_params(total)} parameters, all ran forward+backward")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from modelzoo.registry import model_card

    card = model_card(args.name)
    info = card.to_dict()
    if args.json:
        print(json.dumps(info))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "num_params":
            value = f"{value:,} ({format_params(value)})"
        elif key == "output_shape" and value:
            value = "(" + ", ".join(["B", *map(str, value[1:])]) + ")"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value) or "-"
        print(f"{key.ljust(width)}  {value}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``modelzoo`` parser."""
    p = commands.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--family", help="only this family (mlp, cnn, resnet, vit, rnn, ...)")
    p.add_argument("--task", help="only this task (image_classification, seq2seq, ...)")
    p.add_argument("--external", action="store_true", help="include timm/ and torchvision/")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument("--markdown", action="store_true", help="print the README's model table")
    p.set_defaults(run=_cmd_list)

    p = commands.add_parser("info", help="show a model's card")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_cmd_info)

    p = commands.add_parser(
        "benchmark", help="build models and time a forward and a train step on example inputs"
    )
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vit*'")
    p.add_argument("--family", help="only this family")
    p.add_argument("--task", help="only this task")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_cmd_benchmark)
