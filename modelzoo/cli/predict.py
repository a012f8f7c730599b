"""``modelzoo predict``: the classes a model sees in images, prepared as its card says.

modelzoo predict resnet50.tv2_in1k cat.jpg
modelzoo predict resnet20.digits digits/ --top-k 3 --json
modelzoo predict runs/r20 scan.png            # a run's best checkpoint
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modelzoo.cli.common import positive_int

__all__ = ["add_commands"]


def _cmd_predict(args: argparse.Namespace) -> int:
    from modelzoo.predict import iter_predictions, load_model

    model = load_model(args.model, device=args.device)
    # A bar (on stderr) when folders may hold many images; single files need none.
    progress = any(Path(p).expanduser().is_dir() for p in args.inputs)
    results = iter_predictions(
        model,
        list(args.inputs),
        args.top_k,
        batch_size=args.batch_size,
        progress=progress,
    )
    if args.json:
        document = [
            {
                "file": name,
                "predictions": [{"label": label, "probability": p} for label, p in preds],
            }
            for name, preds in results
        ]
        print(json.dumps(document))
        return 0
    for name, preds in results:
        print(name)
        for label, p in preds:
            print(f"  {p:7.2%}  {label}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``predict`` to the ``modelzoo`` parser."""
    p = commands.add_parser(
        "predict",
        help="the top classes of images (files or folders), with probabilities",
        description="Load a model, prepare each image as its card says (size, crop, "
        "interpolation, mean/std) and print its most probable classes.",
    )
    _add_arguments(p)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        help="a weight set (resnet50.tv2_in1k, resnet20.digits), an architecture (its default "
        "weights), timm/<name> or torchvision/<name>, a save_pretrained folder or a run directory",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders")
    p.add_argument("--top-k", type=positive_int, default=5, help="classes per image (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON list of {"file", "predictions": [{"label", "probability"}]}',
    )
    p.set_defaults(run=_cmd_predict)
