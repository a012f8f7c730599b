"""``modelzoo list``, ``modelzoo info``: what the zoo holds (``benchmark``: cli/benchmark.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from modelzoo.cli.common import format_params, table

__all__ = ["add_commands", "model_table_markdown"]


def _cmd_list(args: argparse.Namespace) -> int:
    from modelzoo.registry import family_and_task, list_models, model_card

    names = list_models(
        args.pattern,
        family=args.family,
        task=args.task,
        pretrained=args.pretrained,
        include_external=args.external,
    )
    if not names:
        print("no models match; try `modelzoo list` with no filter", file=sys.stderr)
        return 1
    if args.markdown:
        print(model_table_markdown([model_card(n) for n in names]))
        return 0
    if args.pretrained:
        return _list_weight_sets(names, args.json)

    # Parameter counts need a (meta-device) build per model: cheap for the zoo's own models,
    # seconds per hundred for the bridges' 1,500, so those are counted only with --params.
    def params(name: str) -> int | None:
        external = "/" in name
        return model_card(name).num_params if args.params or not external else None

    if args.json:
        rows = []
        for name in names:
            family, task = family_and_task(name)
            rows.append({"name": name, "family": family, "task": task, "num_params": params(name)})
        print(json.dumps(rows))
        return 0
    facts = [(n, *family_and_task(n)) for n in names]
    widths = [max(len(f[i]) for f in facts) for i in range(3)]
    widths = [max(w, len(h)) for w, h in zip(widths, ("name", "family", "task"))]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "family", "task"), widths)) + "  params")
    print("  ".join("-" * w for w in widths) + "  ------")
    for name, family, task in facts:  # one row at a time: long listings show progress
        count = params(name)
        shown = format_params(count) if count is not None else "-"
        cells = (name.ljust(widths[0]), family.ljust(widths[1]), task.ljust(widths[2]))
        print("  ".join(cells) + "  " + shown, flush=True)
    return 0


def _list_weight_sets(names: list[str], as_json: bool) -> int:
    from modelzoo.weights import get_weight_set

    sets = [get_weight_set(*n.split(".", 1)) for n in names]
    if as_json:
        print(json.dumps([{"name": ws.name, **ws.to_dict()} for ws in sets]))
        return 0
    rows = []
    for ws in sets:
        data, values = next(iter(ws.metrics.items()), ("", {}))
        shown = ", ".join(f"{k} {v:.4g}" for k, v in list(values.items())[:3])
        rows.append([ws.name, "yes" if ws.default else "", ws.license, f"{data}: {shown}"[:70]])
    print(table(rows, ["weight set", "default", "license", "headline metrics"]))
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


def _cmd_info(args: argparse.Namespace) -> int:
    from modelzoo.registry import model_card, split_name

    card = model_card(args.name)
    _, tag = split_name(args.name)
    weights = [ws for ws in card.weights if tag is None or ws.tag == tag]
    if tag is not None and not weights:
        from modelzoo.weights import get_weight_set

        get_weight_set(card.name, tag)  # raises, naming the tags there are
    # Counted on demand (a forward on the meta device), as torchvision's _ops / _file_size.
    gflops = card.gflops()
    file_size = card.file_size(tag)
    if args.json:
        info = card.to_dict()
        info["weights"] = [ws.to_dict() for ws in weights]
        info["gflops"] = gflops
        info["file_size"] = file_size
        print(json.dumps(info))
        return 0
    facts = [
        ("name", card.name),
        ("family", card.family),
        ("task", card.task),
        ("defined in", card.builder or "-"),
        ("paper", card.paper or "-"),
        ("parameters", f"{card.num_params:,} ({format_params(card.num_params)})"),
        ("inputs", "; ".join(spec.describe() for spec in card.input_spec) or "-"),
        (
            "output",
            "(" + ", ".join(["B", *map(str, card.output_shape[1:])]) + ")"
            if card.output_shape
            else "-",
        ),
        ("defaults", ", ".join(f"{k}={v!r}" for k, v in card.defaults.items()) or "-"),
        (
            "GFLOPs",
            "-" if gflops is None else f"{gflops:.4g} per sample at the inputs above (forward)",
        ),
        ("file size", _file_size_text(file_size, card, tag)),
    ]
    width = max(len(k) for k, _ in facts)
    for key, value in facts:
        print(f"{key.ljust(width)}  {value}")
    if not card.weights:
        print(f"{'weights'.ljust(width)}  none (train some with `modelzoo train`)")
    elif tag is None:
        print(f"\nweight sets ({len(weights)}; `modelzoo info {card.name}.<tag>` shows one):")
    for ws in weights:
        print()
        print(ws.describe())
    return 0


def _file_size_text(size: int | None, card: Any, tag: str | None) -> str:
    if not card.weights:
        return "-"
    label = tag or next((w.tag for w in card.weights if w.default), card.weights[0].tag)
    if size is None:
        return f"not published (weight set {label})"
    return f"{size / 2**20:.1f} MiB ({size:,} bytes, weight set {label})"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``modelzoo`` parser."""
    p = commands.add_parser("list", help="list registered models (or weight sets)")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--family", help="only this family (mlp, cnn, resnet, vit, rnn, ...)")
    p.add_argument("--task", help="only this task (image_classification, seq2seq, ...)")
    p.add_argument("--external", action="store_true", help="include timm/ and torchvision/")
    p.add_argument("--pretrained", action="store_true", help="list weight sets (arch.tag) instead")
    p.add_argument(
        "--params", action="store_true", help="count parameters of external models too (slow)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.add_argument("--markdown", action="store_true", help="print the README's model table")
    p.set_defaults(run=_cmd_list)

    p = commands.add_parser("info", help="show a model's card")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_cmd_info)
