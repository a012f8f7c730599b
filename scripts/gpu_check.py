"""CUDA and mixed-precision checks on a GPU machine, written up as markdown.

    python scripts/gpu_check.py --out benchmarks/gpu_check.md [--sections models,trainer,resnet50]

- models: every registered model forward (fp32 and bf16 autocast) and backward on CUDA.
- trainer: the Trainer on CUDA in every precision mode (plus channels_last and compile).
- resnet50: modelzoo's resnet50 against torchvision's, training throughput side by side.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

import modelzoo as mz
from modelzoo.utils import output_tensors


def _sync() -> None:
    torch.cuda.synchronize()


def check_models() -> list[str]:
    rows = [
        "| model | params | fp32 forward | bf16 forward | bf16 backward | result |",
        "|---|---|---|---|---|---|",
    ]
    for name in mz.list_models():
        try:
            torch.manual_seed(0)
            model = mz.create(name).cuda().eval()
            inputs = mz.example_inputs(model, 2)
            with torch.no_grad():
                _sync()
                t0 = time.perf_counter()
                out32 = model(*inputs)
                _sync()
                t1 = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out16 = model(*inputs)
                _sync()
                t2 = time.perf_counter()
            finite = all(
                torch.isfinite(t.float()).all()
                for t in output_tensors(out32) + output_tensors(out16)
                if t.is_floating_point()
            )
            model.train()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = sum(
                    t.float().sum() for t in output_tensors(model(*inputs)) if t.requires_grad
                )
            loss.backward()
            _sync()
            t3 = time.perf_counter()
            grads = all(p.grad is not None for p in model.parameters() if p.requires_grad)
            status = "ok" if finite and grads else f"finite={finite} grads={grads}"
            params = sum(p.numel() for p in model.parameters())
            rows.append(
                f"| `{name}` | {params:,} | {(t1 - t0) * 1e3:.1f} ms | {(t2 - t1) * 1e3:.1f} ms | "
                f"{(t3 - t2) * 1e3:.1f} ms | {status} |"
            )
            del model
        except Exception as err:  # report, keep going
            rows.append(
                f"| `{name}` | - | - | - | - | FAILED: {type(err).__name__}: {str(err)[:120]} |"
            )
        torch.cuda.empty_cache()
    return rows


def check_trainer() -> list[str]:
    from modelzoo.data import build_data
    from modelzoo.train import TrainConfig, Trainer
    from modelzoo.train.tasks import ClassificationTask

    data = build_data("digits", img_size=32)
    rows = [
        "| model | precision | options | epochs | val accuracy | wall s | skipped fp16 steps"
        " | param dtype |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cases = [
        (m, p, {})
        for m in ("resnet20", "vit_tiny_patch4_32")
        for p in ("32", "bf16-mixed", "16-mixed", "bf16-true")
    ]
    cases += [
        ("resnet20", "bf16-mixed", {"channels_last": True}),
        ("resnet20", "bf16-mixed", {"compile": True}),
    ]
    for name, precision, options in cases:
        torch.manual_seed(0)
        model = mz.create(
            name, num_classes=10, in_chans=1, **({"img_size": 32} if "vit" in name else {})
        )
        lr = 2e-3 if precision != "bf16-true" else 1e-3
        config = TrainConfig(
            epochs=6,
            lr=lr,
            device="cuda",
            precision=precision,
            progress=False,
            plots=False,
            tensorboard=False,
            scheduler="cosine",
            warmup_steps=20,
            **options,
        )
        trainer = Trainer(ClassificationTask(model), config, batch_size=64)
        start = time.perf_counter()
        trainer.fit(data.train)
        _sync()
        wall = time.perf_counter() - start
        metrics = trainer.evaluate(data.val)
        dtype = str(next(trainer.model.parameters()).dtype).removeprefix("torch.")
        opts = ", ".join(f"{k}={v}" for k, v in options.items()) or "-"
        rows.append(
            f"| `{name}` | {precision} | {opts} | 6 | {metrics['accuracy']:.3f} | {wall:.1f} | "
            f"{trainer.precision.skipped_steps} | {dtype} |"
        )
    return rows


def check_resnet50(repeats: int = 10, batch: int = 64) -> list[str]:
    import torchvision

    torch.backends.cuda.matmul.allow_tf32 = True  # as the Trainer sets it on CUDA
    torch.backends.cudnn.allow_tf32 = True
    rows = [
        "| precision | memory format | modelzoo img/s | torchvision img/s | ratio | same loss |",
        "|---|---|---|---|---|---|",
    ]
    torch.manual_seed(0)
    theirs = torchvision.models.resnet50().cuda()
    ours = mz.create("resnet50").cuda()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")
    for dtype in (None, torch.bfloat16):
        for fmt in (torch.contiguous_format, torch.channels_last):
            for m in (ours, theirs):
                m.to(memory_format=fmt)
            xf = x.to(memory_format=fmt)

            def step(model: torch.nn.Module, xf=xf, dtype=dtype) -> torch.Tensor:
                model.zero_grad(set_to_none=True)
                with torch.autocast(
                    "cuda", dtype=dtype or torch.float32, enabled=dtype is not None
                ):
                    loss = torch.nn.functional.cross_entropy(model(xf), y)
                loss.backward()
                return loss

            losses = [float(step(ours)), float(step(theirs))]
            times = {id(ours): [], id(theirs): []}
            for _ in range(repeats):
                for m in (ours, theirs):
                    _sync()
                    t = time.perf_counter()
                    step(m)
                    _sync()
                    times[id(m)].append(time.perf_counter() - t)
            a = batch / statistics.median(times[id(ours)])
            b = batch / statistics.median(times[id(theirs)])
            same = abs(losses[0] - losses[1]) < 1e-3
            rows.append(
                f"| {'bf16-mixed' if dtype else 'fp32 (TF32)'} | "
                f"{'channels_last' if fmt is torch.channels_last else 'contiguous'} | "
                f"{a:.0f} | {b:.0f} | {a / b:.3f} | {same} |"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sections", default="models,trainer,resnet50")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    sections = args.sections.split(",")
    parts = [
        f"# GPU check\n\nMeasured by `python scripts/gpu_check.py` on {date.today()}: "
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {platform.python_version()}.\n"
    ]
    if "models" in sections:
        parts += [
            "\n## Every registered model on CUDA (batch 2, example inputs)\n",
            *check_models(),
        ]
    if "trainer" in sections:
        parts += [
            "\n## The Trainer on CUDA, every precision mode (digits at 32x32, batch 64)\n",
            *check_trainer(),
        ]
    if "resnet50" in sections:
        parts += [
            "\n## resnet50 training step, modelzoo vs torchvision, same weights"
            " (batch 64, 224px)\n",
            *check_resnet50(),
        ]
    text = "\n".join(parts) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
