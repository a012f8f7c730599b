"""Section 7: audio classification of generated tones and CTC transcription of DTMF digits."""

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

KEY = "audio"
TITLE = "Audio classification and CTC"
SEEDS = (0,)
TOL = 1.0  # points (see the section text)

EXPERIMENTS = [
    # (name, recipe, metric key, shown as, higher is better)
    (
        "audio_cnn",
        "configs/audio/audio_cnn_tones.yaml",
        "accuracy",
        "audio classification accuracy %",
        True,
    ),
    ("ctc_lstm", "configs/audio/ctc_lstm_dtmf.yaml", "cer", "CTC character error rate %", False),
]


def run(ctx: Context) -> Section:
    timer = Timer()
    seeds = ctx.seeds_or(SEEDS)
    rows, device = [], "cpu"
    for name, config, key, shown, higher in EXPERIMENTS:
        rs = run_seeds(ctx, name, config, [], seeds)
        device = rs[0].device
        rows.append(
            [
                shown + (" (higher is better)" if higher else " (lower is better)"),
                fmt_checked([r.test[key] for r in rs], TOL, 1, 100),
                rs[0].recipe,
                fmt_seeds(rs),
                fmt_wall(rs),
            ]
        )
    body = "\n".join(
        [
            f"## 7. {TITLE} (`{KEY}`)",
            "",
            measured_line(ctx, KEY, timer, device),
            "",
            "Test-split figures of the audio recipes (generated tones and DTMF data; CTC "
            "character error rate = edit distance / reference length, greedy decoding).",
            "",
            f"Figures marked `[±t]` are re-checked by `--check {KEY}` within t: seeded "
            f"single-thread CPU runs that reproduce to the printed digit on the CPU named "
            f"here; t = {TOL:g} point allows for another CPU's rounding.",
            "",
            table(["measure", "test value", "recipe", "seeds", "wall-clock"], rows),
        ]
    )
    return Section(KEY, body)
