"""What the translation and summarization results scripts share: training a recipe into a
run directory with its timing, and reading a run's final weights back.

A run is trained with the project's recipe runner (``train_recipe``, what ``modelzoo
train`` calls), so ``modelzoo train CONFIG --run-dir DIR train.progress=false`` gives
the same weights. Next to the run this writes ``timing.json``: wall-clock and CPU
seconds, torch threads and the machine's load average before and after, because the
machine these figures come from is shared (its wall-clock time says little by itself;
the process's CPU time is what an otherwise idle core would take).

The scripts import this module as ``_text_runs`` (they put ``scripts/`` on ``sys.path``).
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from modelzoo.config import load_recipe  # noqa: E402
from modelzoo.utils.io import atomic_write, atomic_write_text  # noqa: E402

__all__ = [
    "ROOT",
    "RUN_COLUMNS",
    "decoding",
    "final_model",
    "is_finished",
    "number",
    "results_parser",
    "run_cells",
    "write_published",
    "read_timing",
    "recipe_dict",
    "set_took_line",
    "took_line",
    "train_run",
    "val_curve",
]

TIMING = "timing.json"


def train_run(recipe_path: Path, run_dir: Path) -> dict[str, Any]:
    """Train ``recipe_path`` into ``run_dir`` and write its ``timing.json``; returns it."""
    from modelzoo.train.recipes import train_recipe

    if (run_dir / "checkpoints" / "last.ckpt").exists():
        raise SystemExit(f"{run_dir} holds a run already; remove it or choose another run root")
    recipe = load_recipe(recipe_path, ["train.progress=false"])
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    result = train_recipe(recipe, run_dir)
    timing = {
        "recipe": str(Path(recipe_path).resolve().relative_to(ROOT)),
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "steps": result.trainer.step,
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before[0],
        "load_average_after": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    atomic_write_text(run_dir / TIMING, json.dumps(timing, indent=1) + "\n")
    return timing


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run: its final checkpoint and the ``timing.json``
    written after training ended (a run stopped midway has neither, or no timing)."""
    return (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / TIMING).is_file()


def read_timing(run_dir: Path) -> dict[str, Any]:
    path = run_dir / TIMING
    if not path.is_file():
        raise SystemExit(f"{run_dir} has no {TIMING}: train it with this script's train command")
    return json.loads(path.read_text())


def final_model(run_dir: Path) -> Any:
    """The run's final weights (``checkpoints/last.ckpt``), with its tokenizer attached."""
    from modelzoo.translate import load_text_model

    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise SystemExit(f"{run_dir} has no checkpoints/last.ckpt: train it first")
    return load_text_model(run_dir, checkpoint=last)


def recipe_dict(recipe_path: Path) -> dict[str, Any]:
    """The recipe as a run records it (``config.yaml``, a weight card's ``recipe``)."""
    return load_recipe(recipe_path, ["train.progress=false"]).to_dict()


_TOOK = "# Took here: "


def took_line(timing: dict[str, Any]) -> str:
    """The recipe header line that says how long the run took on this machine."""
    return (
        f"{_TOOK}{timing['steps']} steps in {timing['wall_s'] / 60:.0f} min wall-clock on a "
        f"shared 2-core CPU (load average ~{timing['load_average_before']:.0f}), "
        f"{timing['cpu_s'] / 60:.0f} CPU-min ({timing['torch_threads']} torch thread)"
    )


def set_took_line(recipe_path: Path, line: str) -> None:
    """Replace the recipe's ``# Took here:`` comment line with ``line``."""
    from modelzoo.utils.io import atomic_write_text

    lines = Path(recipe_path).read_text().splitlines()
    index = next((i for i, x in enumerate(lines) if x.startswith(_TOOK)), None)
    if index is None:
        raise SystemExit(f"{recipe_path} has no '{_TOOK.strip()}' comment line to update")
    lines[index] = line
    atomic_write_text(recipe_path, "\n".join(lines) + "\n")


def val_curve(run_dir: Path) -> dict[str, float]:
    """The run's validation loss: final, lowest, and the step of the lowest."""
    import csv

    rows = []
    with open(run_dir / "metrics.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("val_loss"):
                rows.append((int(row["step"]), float(row["val_loss"])))
    if not rows:
        raise SystemExit(f"{run_dir}/metrics.csv has no val_loss rows")
    best_step, best = min(rows, key=lambda r: r[1])
    return {"final": rows[-1][1], "best": best, "best_step": best_step}


# --- what both results files publish -------------------------------------------------------

# The columns that describe a measured run in both results tables (cells: run_cells).
RUN_COLUMNS = ["model", "params", "steps", "CPU min", "wall min here", "decoding (chosen on val)"]


def number(value: float | None, digits: int = 1) -> str:
    """A figure with ``digits`` decimals; "n/a" for a missing or undefined one."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def decoding(chosen: dict[str, Any]) -> str:
    """The decoding setting chosen on val: "greedy" or "beam B, lp P"."""
    if chosen["beam"] == 1:
        return "greedy"
    return f"beam {chosen['beam']}, lp {chosen['length_penalty']}"


def run_cells(run: dict[str, Any]) -> list[str]:
    """The RUN_COLUMNS cells of a measured run (its family, params, timing and decoding)."""
    t = run["timing"]
    return [
        "Transformer" if run["family"] == "transformer" else "LSTM + attention",
        f"{run['params'] / 1e6:.1f}M",
        str(t["steps"]),
        f"{t['cpu_s'] / 60:.0f}",
        f"{t['wall_s'] / 60:.0f}",
        decoding(run["chosen"]),
    ]


def write_published(
    json_path: Path, outputs_path: Path, figures: dict[str, Any], outputs: dict[str, Any]
) -> None:
    """Write the figures (sorted JSON) and every decoded output (xz-compressed JSON)."""
    atomic_write_text(json_path, json.dumps(figures, indent=1, sort_keys=True) + "\n")
    packed = json.dumps(outputs, ensure_ascii=False, sort_keys=True).encode("utf-8")
    atomic_write(outputs_path, lzma.compress(packed, preset=9))


def results_parser(
    description: str, names_help: str, run_root: Path, out_dir: Path
) -> argparse.ArgumentParser:
    """The commands and options both results scripts take (each adds its own --check options)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("command", nargs="?", choices=["train", "measure", "render"])
    parser.add_argument("names", nargs="*", help=names_help)
    parser.add_argument("--run-root", type=Path, default=run_root)
    parser.add_argument("--check", action="store_true", help="re-score what is published")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=out_dir,
        help="where the results files are (default benchmarks/; elsewhere, the recipes' "
        "'Took here' lines are neither written nor checked)",
    )
    return parser
