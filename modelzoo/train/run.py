"""The run directory: what a training run leaves on disk, shared by both loops.

The supervised :class:`~modelzoo.train.Trainer` and the RL runner each keep their own
loop (rollouts don't fit a DataLoader) and hand everything they write to one
:class:`RunDir`::

    run = RunDir("runs/r20", keep_last=2)
    run.open(recipe, step=0, tensorboard=True)     # config.yaml, metrics.csv, TensorBoard
    run.log({"step": 10, "epoch": 0, "loss": 0.7})
    run.save_checkpoints(trainer.checkpoint_state, step=10, best=True, periodic=False)
    run.write_json("test_metrics.json", {"accuracy": 0.98})
    run.plot_metrics()
    run.close()

Layout::

    config.yaml          the resolved recipe (``modelzoo evaluate/resume`` rebuild from it)
    metrics.csv          one row per logged step: step, epoch, losses, lr, val_* metrics
    checkpoints/         last.ckpt, best.ckpt, step-<N>.ckpt (the newest ``keep_last``)
    plots/*.png          loss and metric curves, and each task's own figures
    tensorboard/         the same scalars, when tensorboard is installed
    test_metrics.json    the end-of-run test evaluation

Every file goes through :func:`modelzoo.utils.io.atomic_write`. Under torchrun only
rank 0 writes; every rank still calls :meth:`RunDir.save_checkpoints`, because
gathering a sharded model's state is a collective.

:func:`progress_bar` is the runs' progress display: a tqdm bar on a terminal, and on a
log file one plain line every ``LOG_INTERVAL_S`` seconds plus one at the end (a bar
redrawn with carriage returns would fill a log with thousands of partial lines).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from modelzoo.train.checkpoint import atomic_save
from modelzoo.train.loggers import CSVLogger, TensorBoardLogger, plot_metrics
from modelzoo.utils.io import atomic_write, atomic_write_text

__all__ = ["RunDir", "Progress", "progress_bar", "LOG_INTERVAL_S", "MISSING_PREFIX"]

_logger = logging.getLogger(__name__)

LOG_INTERVAL_S = 30.0  # seconds between progress lines when stderr is not a terminal
# config.yaml lines that say what a run could not record, read back by `modelzoo resume`.
MISSING_PREFIX = "# not recorded: "


class RunDir:
    """One run's directory: config, logs, the checkpoint policy, results and plots.

    Args:
        path: the directory (created on :meth:`open`).
        is_main: whether this process writes (rank 0 under torchrun).
        keep_last: how many ``step-<N>.ckpt`` files to keep.
    """

    def __init__(self, path: str | Path, *, is_main: bool = True, keep_last: int = 2) -> None:
        self.path = Path(path)
        self.is_main = is_main
        self.keep_last = keep_last
        self.csv: CSVLogger | None = None
        self.tensorboard: TensorBoardLogger | None = None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def rows(self) -> list[dict[str, Any]]:
        """metrics.csv's rows so far (empty before :meth:`open`)."""
        return self.csv.rows if self.csv is not None else []

    # --- config and logs -------------------------------------------------------------------

    def open(
        self,
        recipe: dict[str, Any],
        *,
        step: int,
        tensorboard: bool,
        missing: list[str] | None = None,
    ) -> None:
        """Write config.yaml and open metrics.csv (rows after ``step`` dropped) and TensorBoard.

        Args:
            recipe: the resolved recipe.
            step: the run's position; rows logged later by a run that died after its last
                checkpoint are dropped, so a resumed run appends where it continues.
            tensorboard: also write TensorBoard events (a warning when not installed).
            missing: what the recipe could not record, each with how to supply it; written
                as comments at the top of config.yaml.
        """
        if not self.is_main:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(recipe, missing)
        self.csv = CSVLogger(self.path / "metrics.csv")
        self.csv.truncate_after(step)
        if tensorboard and self.tensorboard is None:
            self.tensorboard = TensorBoardLogger(self.path / "tensorboard")

    def write_config(self, recipe: dict[str, Any], missing: list[str] | None = None) -> Path:
        """config.yaml: the recipe, after comment lines naming what it lacks."""
        import yaml

        lines = []
        if missing:
            lines.append(
                "# Written by modelzoo's Python Trainer. `modelzoo evaluate/resume` need what "
                "follows as section.key=value overrides:"
            )
            lines += [f"{MISSING_PREFIX}{m}" for m in missing]
        text = "\n".join(lines + [yaml.safe_dump(recipe, sort_keys=False)])
        return atomic_write_text(self.path / "config.yaml", text)

    def log(self, row: dict[str, Any]) -> None:
        """Add a row to metrics.csv (and TensorBoard); merged into the last row of its step."""
        if self.csv is not None:
            self.csv.log(row)
        if self.tensorboard is not None:
            self.tensorboard.log(row)

    def write_json(self, name: str, obj: Any) -> Path | None:
        """A JSON file in the run directory (e.g. ``test_metrics.json``)."""
        if not self.is_main:
            return None
        return atomic_write_text(self.path / name, json.dumps(obj, indent=2) + "\n")

    # --- checkpoints -----------------------------------------------------------------------

    def end_step(
        self,
        row: dict[str, Any] | None,
        state: Callable[[], dict[str, Any]],
        *,
        step: int,
        checkpoint_every: int | None,
        best: bool = False,
        last: bool = False,
    ) -> list[Path]:
        """Log a step's metrics row (when it has one) and apply the checkpoint policy.

        What the supervised trainer and the RL runner do at the end of every step.

        Args:
            row: the metrics to log (None or empty: nothing to log at this step).
            state: returns the checkpoint's contents.
            step: the step that ends.
            checkpoint_every: ``train.checkpoint_every`` (0 or None: no periodic files).
            best: the monitored metric improved at this step.
            last: the run ends here (or stops early).

        Returns:
            The checkpoint files written (see :meth:`save_checkpoints`).
        """
        if row:
            self.log(row)
        periodic = bool(checkpoint_every) and step % checkpoint_every == 0
        return self.save_checkpoints(state, step=step, best=best, periodic=periodic, last=last)

    def save_checkpoints(
        self,
        state: Callable[[], dict[str, Any]],
        *,
        step: int,
        best: bool = False,
        periodic: bool = False,
        last: bool = False,
    ) -> list[Path]:
        """Apply the checkpoint policy for one step.

        ``best.ckpt`` when the monitored metric improved; ``step-<N>.ckpt`` then
        ``last.ckpt`` when a periodic checkpoint is due (older step files beyond
        ``keep_last`` deleted); ``last.ckpt`` alone at the end of a run. The state is
        computed once (every rank calls this: gathering a sharded model is a collective)
        and serialized once; further files are byte copies.

        Args:
            state: returns the checkpoint's contents.
            step: the step the state belongs to.
            best: the monitored metric improved at this step.
            periodic: ``train.checkpoint_every`` divides the step.
            last: the run ends here (or stops early).

        Returns:
            The files written (none on other ranks).
        """
        names = ["best.ckpt"] if best else []
        if periodic:
            names += [f"step-{step}.ckpt", "last.ckpt"]
        elif last:
            names.append("last.ckpt")
        if not names:
            return []
        contents = state()
        if not self.is_main:
            return []
        written: list[Path] = []
        for name in names:
            target = self.checkpoints / name
            if written:
                written.append(self._copy(written[0], target))
            else:
                written.append(atomic_save(contents, target))
            if name.startswith("step-"):
                self.prune()
        return written

    @staticmethod
    def _copy(source: Path, target: Path) -> Path:
        import shutil

        def copy(out: IO[bytes]) -> None:
            with source.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)

        return atomic_write(target, copy)

    def prune(self) -> list[Path]:
        """Delete ``step-<N>.ckpt`` files beyond the newest ``keep_last``."""
        steps = []
        for path in self.checkpoints.glob("step-*.ckpt"):
            number = path.stem.split("-", 1)[1]
            if number.isdigit():  # a file someone named step-old.ckpt is not ours to delete
                steps.append((int(number), path))
        steps.sort()
        removed = [p for _, p in steps[: max(0, len(steps) - self.keep_last)]]
        for path in removed:
            path.unlink(missing_ok=True)
        return removed

    # --- the end ---------------------------------------------------------------------------

    def plot_metrics(self, skip: tuple[str, ...] = ()) -> list[Path]:
        """plots/loss.png and plots/metrics.png from metrics.csv (columns in ``skip`` left out)."""
        if not self.is_main or self.csv is None:
            return []
        rows = [{k: v for k, v in r.items() if k not in skip} for r in self.csv.rows]
        return plot_metrics(rows, self.path / "plots")

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None


# --- progress --------------------------------------------------------------------------------


class Progress:
    """Progress of a run, as plain lines: one every ``interval`` seconds and one at the end.

    What a log file should get instead of a redrawn bar. :func:`progress_bar` picks
    this or a tqdm bar.

    Args:
        total: units to reach (steps, environment steps).
        initial: units already done (a resumed run).
        unit: what is counted.
        desc: a label at the start of each line.
        interval: seconds between lines.
        stream: where lines go (default: ``sys.stderr``).
    """

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        unit: str = "step",
        desc: str = "",
        interval: float | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.total = total
        self.n = initial
        self.unit = unit
        self.desc = desc
        self.interval = LOG_INTERVAL_S if interval is None else interval
        self.stream = stream
        self.started = time.monotonic()
        self._start_n = initial
        self._last_line = self.started
        self._last_line_n = initial
        self.samples = 0  # counted by update(samples=...), shown as a rate
        self.values: dict[str, float] = {}

    def update(self, n: int = 1, *, samples: int = 0, **values: float) -> None:
        """Count ``n`` more units (and ``samples`` processed, shown as samples/s);
        ``values`` (e.g. the loss) are shown on the next line."""
        self.n += n
        self.samples += samples
        if values:
            self.values = values
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._write(now)

    def close(self) -> None:
        """Write the final line (unless the last line already showed this position)."""
        if self.n != self._last_line_n or self._last_line == self.started:
            self._write(time.monotonic())

    def _write(self, now: float) -> None:
        elapsed = now - self.started
        rate = (self.n - self._start_n) / max(elapsed, 1e-9)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        parts = [f"{self.n}/{self.total} {self.unit}s{share}", f"{rate:.3g} {self.unit}s/s"]
        if self.samples:
            parts.append(f"{self.samples / max(elapsed, 1e-9):.0f} samples/s")
        parts.append(f"elapsed {_clock(elapsed)}")
        if rate > 0 and self.total and self.n < self.total:
            parts.append(f"left {_clock((self.total - self.n) / rate)}")
        parts += [f"{k}={_fmt(v)}" for k, v in self.values.items()]
        label = f"{self.desc}: " if self.desc else ""
        stream = self.stream or sys.stderr
        stream.write(label + ", ".join(parts) + "\n")
        stream.flush()
        self._last_line = now
        self._last_line_n = self.n


class _Bar:
    """A tqdm bar with the same ``update(n, **values)`` as :class:`Progress`."""

    REFRESH_S = 0.5

    def __init__(self, total: int, *, initial: int, unit: str, desc: str, **tqdm_kwargs: Any):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total,
            initial=initial,
            unit=unit,
            desc=desc or None,
            mininterval=self.REFRESH_S,
            **tqdm_kwargs,
        )
        self._shown = time.monotonic()
        self._samples = 0

    def update(self, n: int = 1, *, samples: int = 0, **values: float) -> None:
        self.bar.update(n)
        self._samples += samples
        now = time.monotonic()
        # Formatting the values costs more than the step of a small model: only as often
        # as the bar is redrawn.
        if now - self._shown >= self.REFRESH_S:
            shown = {k: _fmt(v) for k, v in values.items()}
            if self._samples:
                shown["samples/s"] = f"{self._samples / (now - self._shown):.0f}"
            self.bar.set_postfix(shown, refresh=False)
            self._shown = now
            self._samples = 0

    def close(self) -> None:
        self.bar.close()


def progress_bar(
    total: int,
    *,
    initial: int = 0,
    unit: str = "step",
    desc: str = "",
    stream: IO[str] | None = None,
    unit_scale: bool = False,
) -> Progress | _Bar:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else a :class:`Progress`."""
    target = stream or sys.stderr
    isatty = getattr(target, "isatty", None)
    if callable(isatty) and isatty():
        return _Bar(total, initial=initial, unit=unit, desc=desc, unit_scale=unit_scale)
    return Progress(total, initial=initial, unit=unit, desc=desc, stream=stream)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
