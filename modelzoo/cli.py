"""The ``modelzoo`` command.

modelzoo list [PATTERN] [--family F] [--task T] [--external] [--json]
modelzoo info NAME [--json]
modelzoo benchmark [PATTERN] [--family F] [--batch-size N] [--json]
modelzoo train CONFIG [section.key=value ...] [--run-dir DIR]
modelzoo resume RUN_DIR [section.key=value ...]
modelzoo evaluate RUN_DIR_OR_CONFIG [--checkpoint PATH] [--json]
modelzoo finetune NAME_OR_TAG --data DATA [--data-arg KEY=VALUE ...] [--epochs N] [--json]
modelzoo download NAME... [--json]
modelzoo cache list|verify|clean [--all] [--dry-run] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from modelzoo.errors import ModelzooError

__all__ = ["main", "format_params"]


def format_params(count: int) -> str:
    """A parameter count as people write it: 25.6M, 85.0K, 124.4M, 1.2B."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
    print(_table(rows, ["name", "family", "task", "params"]))
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


def _default_run_dir(config: str) -> str:
    import time
    from pathlib import Path

    return str(Path("runs") / f"{Path(config).stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def _print_result(result, as_json: bool) -> None:
    if not result.trainer.dist.is_main:
        return  # under torchrun, one report
    summary = {
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "step": result.trainer.step,
        "val": result.val_metrics,
        "test": result.test_metrics,
    }
    if as_json:
        print(json.dumps(summary))
        return
    for split in ("val", "test"):
        if summary[split]:
            print(f"{split:<5} " + "  ".join(f"{k}={v:.4f}" for k, v in summary[split].items()))
    if result.run_dir:
        print(f"run directory: {result.run_dir} (metrics.csv, checkpoints/, plots/)")


def _cmd_train(args: argparse.Namespace) -> int:
    from modelzoo.config import load_recipe
    from modelzoo.train.recipes import train_recipe

    recipe = load_recipe(args.config, args.overrides)
    run_dir = args.run_dir or _default_run_dir(args.config)
    _print_result(train_recipe(recipe, run_dir), args.json)
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from modelzoo.train.recipes import resume_run

    _print_result(resume_run(args.run_dir, args.overrides), args.json)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from modelzoo.train.recipes import evaluate_run

    results = evaluate_run(args.target, args.checkpoint, args.overrides)
    if args.json:
        print(json.dumps(results))
    elif not any(isinstance(v, dict) for v in results.values()):  # RL: one flat report
        print(
            "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in results.items()
            )
        )
    else:
        for split, metrics in results.items():
            print(f"{split:<5} " + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    import re
    import time
    from pathlib import Path

    from modelzoo.finetune import finetune, parse_key_values

    run_dir = args.run_dir
    if run_dir is None:
        stem = re.sub(r"[^\w.-]+", "_", args.model)
        run_dir = str(Path("runs") / f"finetune-{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    pretrained = args.pretrained
    if pretrained is not None and pretrained.lower() in ("true", "false"):
        pretrained = pretrained.lower() == "true"
    result = finetune(
        args.model,
        args.data,
        data_kwargs=parse_key_values(args.data_arg, "--data-arg"),
        model_kwargs=parse_key_values(args.model_arg, "--model-arg"),
        pretrained=pretrained,
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=args.weight_decay,
        freeze_epochs=args.freeze_epochs,
        layer_decay=args.layer_decay,
        batch_size=args.batch_size,
        run_dir=run_dir,
        seed=args.seed,
        precision=args.precision,
        device=args.device,
        progress=not args.json,
    )
    if not result.trainer.dist.is_main:
        return 0
    summary = {
        "model": result.card["model_name"],
        "source": result.source,
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "model_dir": str(result.model_dir) if result.model_dir else None,
        "metrics": result.metrics,
        "num_params": result.card["num_params"],
        "steps": result.trainer.step,
        "seconds": result.card["finetune"]["seconds"],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"fine-tuned {summary['model']} from {result.source or 'scratch'} "
        f"({summary['steps']} steps, {summary['seconds']:.0f} s)"
    )
    for dataset, metrics in result.metrics.items():
        print(f"{dataset:<28} " + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    print(f"run directory: {result.run_dir} (metrics.csv, checkpoints/, plots/)")
    print(f"model + card:  {result.model_dir} (model_card.md; load with modelzoo.from_pretrained)")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from modelzoo.weights import fetch_weight_set, get_weight_set

    results = {}
    for name in args.names:
        arch, _, tag = name.partition(".")
        ws = get_weight_set(arch, tag or None)
        results[ws.name] = [str(p) for p in fetch_weight_set(ws, progress=not args.json)]
        if not args.json:
            print(f"{ws.name}: {', '.join(results[ws.name])}")
    if args.json:
        print(json.dumps(results))
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from modelzoo.weights import cache_dir, cache_entries, clean_cache, verify_cache

    if args.action == "list":
        entries = cache_entries()
        if args.json:
            print(json.dumps({"cache": str(cache_dir()), "files": [e.to_dict() for e in entries]}))
            return 0
        rows = [[e.name, format_params(e.size) + "B", e.sha256[:16], e.source] for e in entries]
        print(f"cache: {cache_dir()} (MODELZOO_HOME)")
        print(_table(rows, ["name", "size", "sha256", "source"]) if rows else "(empty)")
        return 0
    if args.action == "verify":
        results = verify_cache()
        if args.json:
            print(json.dumps([{**e.to_dict(), "problem": p} for e, p in results]))
        else:
            for entry, problem in results:
                print(f"BAD  {entry.path}: {problem}" if problem else f"ok   {entry.path}")
            print(f"{len(results)} files checked, {sum(bool(p) for _, p in results)} bad")
        return 1 if any(p for _, p in results) else 0
    removed = clean_cache(everything=args.all, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, _ in removed:
        print(f"{verb} {path}")
    total = format_params(sum(size for _, size in removed))
    print(f"{verb} {len(removed)} items, {total}B")
    return 0


def _leave_process_group() -> None:
    """Under torchrun, leave the process group before exiting (see DistributedContext.close)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelzoo", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

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

    p = commands.add_parser("train", help="train a YAML recipe")
    p.add_argument("config", help="a recipe, e.g. configs/resnet/resnet20_digits.yaml")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.lr=3e-4")
    p.add_argument("--run-dir", help="where the run goes (default runs/<recipe>-<time>)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=_cmd_train)

    p = commands.add_parser("resume", help="continue a run exactly from its last checkpoint")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*", help="e.g. train.max_steps=2000")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=_cmd_resume)

    p = commands.add_parser("evaluate", help="evaluate a run directory or a recipe + checkpoint")
    p.add_argument("target", help="a run directory, or a recipe with --checkpoint")
    p.add_argument("overrides", nargs="*", help="section.key=value")
    p.add_argument("--checkpoint", help="checkpoint file (default: the run's best, else last)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_cmd_evaluate)

    p = commands.add_parser(
        "finetune",
        help="fine-tune a model or weight set on a dataset, an image folder or a CSV file",
    )
    p.add_argument("model", help="arch.tag (weights), arch, timm/<name> or torchvision/<name>")
    p.add_argument(
        "--data", required=True, help="a dataset name (digits), an image folder or a .csv file"
    )
    p.add_argument(
        "--data-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dataset option, repeatable: classes=[5,6,7,8,9], train_per_class=10",
    )
    p.add_argument(
        "--model-arg", action="append", default=[], metavar="KEY=VALUE", help="a builder argument"
    )
    p.add_argument(
        "--pretrained", help="for an arch name: true, a tag, a file or URL (default: none)"
    )
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument(
        "--freeze-epochs", type=int, default=0, help="epochs with the backbone frozen first"
    )
    p.add_argument(
        "--layer-decay", type=float, help="learning-rate factor per layer away from the head"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="32", help="32, bf16-mixed, 16-mixed or bf16-true")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--run-dir", help="where the run goes (default runs/finetune-<name>-<time>)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=_cmd_finetune)

    p = commands.add_parser("download", help="fetch weight sets into the cache (verified)")
    p.add_argument("names", nargs="+", help="arch.tag, or arch for its default weight set")
    p.add_argument("--json", action="store_true", help="print {name: [paths]}")
    p.set_defaults(run=_cmd_download)

    p = commands.add_parser("cache", help="list, verify or clean the weights cache")
    p.add_argument("action", choices=["list", "verify", "clean"])
    p.add_argument("--all", action="store_true", help="clean: empty the whole cache")
    p.add_argument("--dry-run", action="store_true", help="clean: only say what would go")
    p.add_argument("--json", action="store_true", help="list/verify: print JSON")
    p.set_defaults(run=_cmd_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # section.key=value overrides may also follow the options (e.g. after --json).
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    if len(overrides) != len(extra) or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except ModelzooError as err:
        print(f"modelzoo: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    finally:
        _leave_process_group()


if __name__ == "__main__":
    sys.exit(main())
