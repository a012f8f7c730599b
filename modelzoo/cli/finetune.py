"""``modelzoo finetune``: a pretrained model, new data, one command."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_commands"]


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


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``finetune`` to the ``modelzoo`` parser."""
    p = commands.add_parser(
        "finetune",
        help="fine-tune a model or weight set on a dataset, an image folder or a CSV file",
    )
    p.add_argument(
        "model",
        help="arch.tag (weights), arch, timm/<name>[.<tag>], torchvision/<name>[.<tag>], a "
        "save_pretrained folder (e.g. an earlier fine-tune's model/) or a run directory",
    )
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
        "--pretrained",
        help="for a name without a tag: true (the default weights), a tag, a file or a URL "
        "(default: none, a fresh model)",
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
    p.add_argument(
        "--run-dir",
        help="where the run goes, a new or empty folder (default runs/finetune-<name>-<time>); "
        "a failed fine-tune leaves nothing there",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=_cmd_finetune)
