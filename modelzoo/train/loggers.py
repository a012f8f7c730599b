"""What a user sees of a run: metrics.csv always, TensorBoard when installed, and plots."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

__all__ = ["CSVLogger", "TensorBoardLogger", "plot_metrics"]

_logger = logging.getLogger(__name__)

_FIRST_COLUMNS = ("step", "epoch")


class CSVLogger:
    """metrics.csv: one row per logged step; columns are added as new names appear.

    Args:
        path: the CSV file; existing rows are kept (a resumed run appends).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if path.is_file():
            with path.open(newline="") as f:
                self.rows = [dict(r) for r in csv.DictReader(f)]

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = dict.fromkeys(_FIRST_COLUMNS)
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (by a run that died after its last checkpoint)."""
        kept = [r for r in self.rows if int(float(r["step"])) <= step]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._write()

    def log(self, row: dict[str, Any]) -> None:
        """Add a row, or merge into the row of the same step (e.g. eval after train)."""
        row = {k: _fmt(v) for k, v in row.items()}
        if self.rows and self.rows[-1]["step"] == row["step"]:
            self.rows[-1].update(row)
        else:
            self.rows.append(row)
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly, so resumed and straight runs compare equal
    return value


class TensorBoardLogger:
    """TensorBoard scalars, when the tensorboard package is installed; otherwise nothing."""

    def __init__(self, log_dir: Path) -> None:
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            _logger.debug("tensorboard is not installed; skipping TensorBoard logs")
            return
        self.writer = SummaryWriter(str(log_dir))

    def log(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = int(row["step"])
        for key, value in row.items():
            if key not in _FIRST_COLUMNS and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def plot_metrics(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """loss.png (training losses) and metrics.png (evaluation metrics) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    columns = dict.fromkeys(k for r in rows for k in r)
    train_cols = [
        c for c in columns if c not in (*_FIRST_COLUMNS, "lr") and not c.startswith("val_")
    ]
    val_cols = [c for c in columns if c.startswith("val_")]
    written = []
    for name, cols in (("loss.png", train_cols), ("metrics.png", val_cols)):
        if not cols:
            continue
        fig, axes = plt.subplots(1, len(cols), figsize=(4 * len(cols), 3.2), squeeze=False)
        for ax, col in zip(axes[0], cols):
            points = [
                (float(r["step"]), float(r[col]))
                for r in rows
                if r.get(col) not in (None, "") and math.isfinite(float(r[col]))
            ]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="." if len(xs) < 30 else None)
            ax.set_title(col)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
