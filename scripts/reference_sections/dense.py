"""Section 6: detection (FCOS-style, mAP@0.5) and segmentation (U-Net, mean IoU) on
generated shapes: the dense-prediction recipes reach useful test figures on a CPU."""

from __future__ import annotations

from _common import table

from reference_sections.harness import (
    Context,
    Section,
    Timer,
    fmt_checked,
    fmt_seeds,
    fmt_wall,
    measured_line,
    run_seeds,
)

KEY = "dense"
TITLE = "Detection and segmentation"
SEEDS = (0,)
TOL = 2.0  # points (see the section text)

EXPERIMENTS = [
    # (name, recipe, metric key, shown as); both higher-is-better
    ("fcos_tiny", "configs/detection/fcos_tiny_shapes.yaml", "map_50", "detection mAP@0.5 %"),
    ("unet_tiny", "configs/segmentation/unet_shapes.yaml", "miou", "segmentation mean IoU %"),
]


def run(ctx: Context) -> Section:
    timer = Timer()
    seeds = ctx.seeds_or(SEEDS)
    rows, device = [], "cpu"
    for name, config, key, shown in EXPERIMENTS:
        rs = run_seeds(ctx, name, config, [], seeds)
        device = rs[0].device
        rows.append(
            [
                f"{shown} (higher is better)",
                fmt_checked([r.test[key] for r in rs], TOL, 1, 100),
                rs[0].recipe,
                fmt_seeds(rs),
                fmt_wall(rs),
            ]
        )
    body = "\n".join(
        [
            f"## 6. {TITLE} (`{KEY}`)",
            "",
            measured_line(ctx, KEY, timer, device),
            "",
            "Test-split figures of the dense-prediction recipes on generated 64x64 shapes "
            "(detection mAP at IoU 0.5, segmentation IoU averaged over classes).",
            "",
            f"Figures marked `[±t]` are re-checked by `--check {KEY}` within t: seeded "
            f"single-thread CPU runs that reproduce to the printed digit on the CPU named "
            f"here; t = {TOL:g} points allows for another CPU's rounding.",
            "",
            table(["measure", "test value", "recipe", "seeds", "wall-clock"], rows),
        ]
    )
    return Section(KEY, body)
