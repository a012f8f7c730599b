"""``modelzoo train``, ``resume``, ``evaluate``, ``finetune``: runs and their directories."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_commands"]


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

    _print_result(resume_run(args.run_dir, args.overrides, args.checkpoint), args.json)
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


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``modelzoo`` parser."""
    p = commands.add_parser("train", help="train a YAML recipe")
    p.add_argument("config", help="a recipe, e.g. configs/resnet/resnet20_digits.yaml")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.lr=3e-4")
    p.add_argument("--run-dir", help="where the run goes (default runs/<recipe>-<time>)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=_cmd_train)

    p = commands.add_parser("resume", help="continue a run exactly from its last checkpoint")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*", help="e.g. train.max_steps=2000")
    p.add_argument(
        "--checkpoint",
        help="continue from this checkpoint instead of checkpoints/last.ckpt (e.g. an earlier "
        "checkpoints/step-<N>.ckpt when last.ckpt is damaged)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=_cmd_resume)

    p = commands.add_parser("evaluate", help="evaluate a run directory or a recipe + checkpoint")
    p.add_argument("target", help="a run directory, or a recipe with --checkpoint")
    p.add_argument("overrides", nargs="*", help="section.key=value")
    p.add_argument("--checkpoint", help="checkpoint file (default: the run's best, else last)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_cmd_evaluate)
