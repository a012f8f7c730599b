"""``modelzoo export`` and ``modelzoo quantize``: models out of Python training code.

modelzoo export resnet20.digits --format onnx --out resnet20.onnx
modelzoo export runs/r20 --format pt2 --out r20.pt2          # a run's evaluated weights
modelzoo quantize resnet20.digits --mode static --out resnet20-int8
modelzoo quantize lstm_lm.stdlib --mode dynamic --out lstm-int8
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from modelzoo.cli.common import positive_int

__all__ = ["add_commands"]

SOURCE_HELP = (
    "a model name (its default weights; its random initialization when it has none), a weight "
    "set (resnet20.digits), a run directory (the weights its best/last checkpoint evaluated), a "
    "save_pretrained folder or an hf-hub: id"
)


def _quiet_exporters() -> None:
    # The ONNX exporter's passes log every step at INFO; the command prints its own summary.
    for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch._export", "torch.export"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    suffix = Path(args.out).suffix.lower()
    if suffix in (".onnx", ".pt2"):
        return suffix[1:]
    from modelzoo.errors import ConfigError

    raise ConfigError(
        f"--format is not given and {args.out} ends neither in .onnx nor in .pt2; pass "
        "--format onnx or --format pt2"
    )


def _cmd_export(args: argparse.Namespace) -> int:
    from modelzoo.export import export_model

    _quiet_exporters()
    result = export_model(
        args.model,
        _format(args),
        args.out,
        dynamic_batch=args.dynamic_batch,
        opset=args.opset,
        check=not args.no_check,
        batch_size=args.batch_size,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    batch = "dynamic" if result.dynamic_batch else f"fixed at {result.export_batch_size}"
    print(f"wrote {result.path} ({result.format}, {result.num_bytes / 1e6:.2f} MB, batch {batch})")
    if result.opset is not None:
        print(f"  opset {result.opset}")
    print(f"  inputs:  {', '.join(result.input_names)}")
    print(f"  outputs: {', '.join(result.output_names)}")
    if result.max_abs_diff is not None:
        runner = "onnxruntime" if result.format == "onnx" else "torch.export.load"
        print(
            f"  checked in {runner} at batch {result.check_batch_size}: max abs diff "
            f"{result.max_abs_diff:.3g} vs eager PyTorch (tolerance {result.tolerance:.3g})"
        )
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    import torch

    from modelzoo.export import load_export_source
    from modelzoo.quantize import calibration_data, quantize, save_quantized

    _quiet_exporters()
    model = load_export_source(args.model)
    calibration = None
    if args.mode == "static":
        calibration = calibration_data(args.calibration_from or args.model, split=args.split)
    qmodel = quantize(model, args.mode, calibration=calibration, max_samples=args.max_samples)
    out = save_quantized(qmodel, args.out)
    info = dict(qmodel.quantization)
    size = sum(f.stat().st_size for f in Path(out).iterdir() if f.is_file())
    if args.json:
        print(json.dumps({"out": str(out), "bytes": size, **info}, default=str))
        return 0
    print(f"wrote {out} ({size / 1e6:.2f} MB): {info['model']} as {args.mode} int8")
    print(f"  path: {info['path']}")
    if "calibration_samples" in info:
        print(f"  calibrated on {info['calibration_samples']} samples of the {args.split} split")
    print(f"  torch {torch.__version__}; load with modelzoo.quantize.load_quantized('{out}')")
    return 0


def _add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME_OR_RUN_DIR", help=SOURCE_HELP)
    p.add_argument(
        "--format",
        choices=("onnx", "pt2"),
        help="onnx (torch.onnx.export with dynamo=True, checked in onnxruntime) or pt2 "
        "(torch.export.save, reloaded and checked); default: from --out's suffix",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument(
        "--dynamic-batch",
        dest="dynamic_batch",
        action="store_true",
        default=True,
        help="keep the batch dimension symbolic (the default)",
    )
    batch.add_argument(
        "--static-batch",
        dest="dynamic_batch",
        action="store_false",
        help="fix the batch size at --batch-size",
    )
    p.add_argument("--batch-size", type=positive_int, default=2, help="batch size at capture")
    p.add_argument("--opset", type=positive_int, help="ONNX opset (default: the exporter's)")
    p.add_argument(
        "--no-check", action="store_true", help="skip running the file against eager PyTorch"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with the result")
    p.set_defaults(run=_cmd_export)


def _add_quantize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME_OR_RUN_DIR", help=SOURCE_HELP)
    p.add_argument(
        "--mode",
        choices=("dynamic", "static"),
        required=True,
        help="dynamic: int8 Linear/LSTM/GRU weights, no calibration; static: int8 convolutions "
        "and linear layers through torchao's PT2E flow, calibrated on the card's data",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    p.add_argument(
        "--calibration-from",
        metavar="NAME_OR_RUN_DIR",
        help="take the calibration data from this weight set's or run's recipe (default: the "
        "model's own)",
    )
    p.add_argument(
        "--split",
        choices=("val", "train"),
        default="val",
        help="calibration split (default val; never the test split)",
    )
    p.add_argument(
        "--max-samples", type=positive_int, default=512, help="calibration samples at most"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with the result")
    p.set_defaults(run=_cmd_quantize)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``export`` and ``quantize`` to the ``modelzoo`` parser."""
    p = commands.add_parser(
        "export",
        help="export a model to ONNX or a torch.export program, checked against eager PyTorch",
        description="Export a model (name, weight set, run directory or folder) to ONNX or to "
        "a torch.export program, run the file on the card's example inputs and compare it "
        "with eager PyTorch; nothing is written when the outputs differ.",
    )
    _add_export_arguments(p)
    p = commands.add_parser(
        "quantize",
        help="int8 copy of a model for the CPU (dynamic or static post-training)",
        description="Quantize a model to int8: dynamic (Linear/LSTM/GRU weights) or static "
        "(convolutions too, calibrated on the validation split of the card's data). The "
        "folder loads with modelzoo.quantize.load_quantized.",
    )
    _add_quantize_arguments(p)
