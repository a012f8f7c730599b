"""The ``modelzoo`` command.

modelzoo list [PATTERN] [--family F] [--task T] [--external] [--json]
modelzoo info NAME [--json]
modelzoo benchmark [PATTERN] --mode infer|train --batch-sizes 1,8,64 --precision 32,bf16-mixed
    [--csv FILE] [--json]
modelzoo train CONFIG [section.key=value ...] [--run-dir DIR]
modelzoo resume RUN_DIR [section.key=value ...] [--checkpoint PATH]
modelzoo evaluate RUN_DIR_OR_CONFIG [--checkpoint PATH] [--json]
modelzoo finetune NAME_OR_TAG --data DATA [--data-arg KEY=VALUE ...] [--epochs N] [--json]
modelzoo predict NAME_OR_RUN_DIR IMAGE_OR_FOLDER... [--top-k K] [--batch-size N] [--json]
modelzoo translate NAME_OR_RUN_DIR "text" ... [--to LANG] [--beam N] [--json]
modelzoo export NAME_OR_RUN_DIR --format onnx|pt2 --out FILE [--dynamic-batch] [--opset N]
modelzoo quantize NAME_OR_RUN_DIR --mode dynamic|static --out DIR [--json]
modelzoo play RUN_DIR_OR_WEIGHTS [--episodes N] [--seed S] [--video out.gif|out.mp4] [--json]
modelzoo download NAME... [--json]
modelzoo cache list|verify|clean [--all] [--dry-run] [--json]
modelzoo push RUN_DIR_OR_FOLDER REPO_ID [--revision R] [--private] [--commit-message M] [--json]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from modelzoo.errors import ModelzooError

__all__ = ["main", "build_parser"]


def _leave_process_group() -> None:
    """Under torchrun, leave the process group before exiting (see DistributedContext.close)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def build_parser() -> argparse.ArgumentParser:
    from modelzoo import __version__
    from modelzoo.cli import (
        benchmark,
        deploy,
        finetune,
        models,
        play,
        predict,
        push,
        runs,
        translate,
        weights,
    )

    parser = argparse.ArgumentParser(
        prog="modelzoo",
        description="Every classic deep-learning family behind one registry: list and inspect "
        "models, train and fine-tune them from recipes, evaluate runs, manage pretrained weights.",
    )
    parser.add_argument("--version", action="version", version=f"modelzoo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = (models, benchmark, runs, finetune, predict, translate, play, deploy, weights, push)
    for module in modules:
        module.add_commands(commands)
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
    except BrokenPipeError:  # `modelzoo list | head`: the reader left; that is not an error
        sys.stderr.close()
        return 0
    finally:
        _leave_process_group()


if __name__ == "__main__":
    sys.exit(main())
