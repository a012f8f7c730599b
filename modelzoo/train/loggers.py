"""What a user sees of a run: metrics.csv always, TensorBoard when installed, and plots."""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from typing import Any

from modelzoo.utils.io import atomic_write, atomic_write_text

__all__ = ["CSVLogger", "TensorBoardLogger", "plot_metrics", "save_figure"]

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
        # The whole file each time, atomically: a reader (or a crash) never sees half a row.
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)  # round-trips exactly, so resumed and straight runs compare equal
    return value


class TensorBoardLogger:
    """TensorBoard scalars, when the tensorboard package is installed.

    Without it, one warning says so (and how to install it or turn the logs off), and
    logging is a no-op; metrics.csv holds the same numbers either way.
    """

    def __init__(self, log_dir: Path) -> None:
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # tensorboard is optional
            _logger.warning(
                "train.tensorboard is true but TensorBoard logs cannot be written (%s); "
                "metrics.csv has the same numbers. Install it (pip install tensorboard) or "
                "set train.tensorboard=false to silence this.",
                err,
            )
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
        written.append(save_figure(fig, out_dir / name))
    return written


def save_figure(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG through ``atomic_write``, then close it."""
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    return path
