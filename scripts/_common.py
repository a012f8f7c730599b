"""What the scripts that publish figures share.

- the machine a figure was measured on (:func:`cpu_name`, :func:`machine_line`);
- markdown tables, verdicts and spreads (:func:`table`, :func:`yes_no`, :func:`spread`);
- files made of replaceable sections (:func:`merge_markdown`, :func:`write_section`),
  so that one part of a results file can be re-measured without touching the rest;
- results scripts that train recipes, write ``NAME.json`` and its rendering ``NAME.md``
  and re-check them (:func:`results_parser`, :func:`start_measuring`,
  :func:`rendering_problems`, :func:`report_check`, :func:`write_results`,
  :func:`run_seconds`);
- checked figures: a figure written as ``VALUE [±TOL]`` (:func:`checked`) states the
  tolerance within which a re-run must reproduce it, right next to it in the file.
  :func:`compare_sections` re-reads a published section and a re-measured one and
  says, figure by figure and verdict by verdict, whether the publication still holds.

The scripts import this module as ``_common`` (they put ``scripts/`` on ``sys.path``);
tests never import it: they run the scripts.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import re
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

__all__ = [
    "ROOT",
    "Comparison",
    "Figure",
    "checked",
    "checked_figures",
    "compare_sections",
    "cpu_name",
    "machine_line",
    "merge_markdown",
    "rendering_problems",
    "report_check",
    "results_parser",
    "run_seconds",
    "start_measuring",
    "write_results",
    "section_block",
    "sections_of",
    "spread",
    "table",
    "verdicts",
    "write_section",
    "yes_no",
]


# --- the machine -------------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(threads: int, device: str = "cpu") -> str:
    """``<cpu>, <device>, <n> torch thread(s), torch <version>`` for a "Measured by" line."""
    import torch

    return f"{cpu_name()}, {device}, {threads} torch thread(s), torch {torch.__version__}"


# --- tables and verdicts -----------------------------------------------------------------------


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def yes_no(flag: bool) -> str:
    """A verdict as the results files write it (``no`` in bold, so a failed claim stands out)."""
    return "yes" if flag else "**no**"


def spread(values: Sequence[float], fmt: str = ".3f", unit: str = "") -> str:
    """``min / median / max`` of repeated measurements (just the value for one)."""
    if not values:
        raise ValueError("spread of no values")
    if len(values) == 1:
        return f"{values[0]:{fmt}}{unit}"
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{lo:{fmt}} / {mid:{fmt}} / {hi:{fmt}}{unit}"


# --- files made of sections --------------------------------------------------------------------

_BLOCK = re.compile(
    r"<!-- section: (?P<key>[\w-]+) -->\n(?P<body>.*?)<!-- end section: (?P=key) -->\n?",
    re.DOTALL,
)


def section_block(key: str, body: str) -> str:
    """A section's text between its markers (what :func:`merge_markdown` replaces)."""
    return f"<!-- section: {key} -->\n{body.strip()}\n<!-- end section: {key} -->\n"


def sections_of(text: str | None) -> dict[str, str]:
    """The sections of a file: key -> body (without the markers), in file order."""
    return {m["key"]: m["body"].strip() for m in _BLOCK.finditer(text or "")}


def merge_markdown(
    existing: str | None, key: str, body: str, order: Sequence[str] = (), header: str = ""
) -> str:
    """The file with section ``key`` set to ``body``; every other section is kept as it was.

    Sections are laid out in ``order``; sections not in ``order`` (added by a later
    version of a script, or removed from it) follow, in the order the file had them.
    ``header`` is the text above the first section.
    """
    blocks = {m["key"]: m.group(0) for m in _BLOCK.finditer(existing or "")}
    blocks[key] = section_block(key, body)
    keys = [k for k in order if k in blocks] + [k for k in blocks if k not in order]
    return header + "".join("\n" + blocks[k].rstrip("\n") + "\n" for k in keys)


def write_section(
    path: Path, key: str, body: str, order: Sequence[str] = (), header: str = ""
) -> None:
    """Replace (or add) section ``key`` of the file at ``path``, atomically."""
    from modelzoo.utils.io import atomic_write_text  # here: the module stays free of torch

    existing = path.read_text() if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, merge_markdown(existing, key, body, order, header))


# --- checked figures ---------------------------------------------------------------------------

_NUMBER = r"[-+−]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# A checked figure: a number, optionally "± spread" and a unit, then " [±tolerance]".
_CHECKED = re.compile(
    rf"(?P<value>{_NUMBER})(?P<rest>(?: ± {_NUMBER})?\s?[%×]?) \[±(?P<tol>{_NUMBER})\]"
)
_VERDICT = re.compile(r": (?P<word>yes|\*\*no\*\*)(?=[.;,)\s]|$)")
_BOLD = re.compile(r"\*\*(?P<text>[^*]+)\*\*")


def checked(text: str, tolerance: float) -> str:
    """``text`` (which starts with the figure) marked as re-checked within ``tolerance``.

    ``checked("95.4 ± 1.4", 1.0)`` gives ``95.4 ± 1.4 [±1]``: a re-run must give a first
    number within 1 of 95.4 (the spread after ``±`` is not checked).
    """
    if not re.match(_NUMBER, text.strip()):
        raise ValueError(f"a checked figure starts with its number; got {text!r}")
    if not tolerance >= 0 or not math.isfinite(tolerance):
        raise ValueError(f"a tolerance is a finite number >= 0; got {tolerance!r}")
    return f"{text.strip()} [±{tolerance:g}]"


@dataclass(frozen=True)
class Figure:
    """A checked figure read back from a results file.

    Attributes:
        name: where it stands (``row / column`` of a table, or the text before it).
        value: the number as published.
        tolerance: how far a re-run may land from it.
        text: the figure as printed (with its spread and unit).
    """

    name: str
    value: float
    tolerance: float
    text: str


def _number(text: str) -> float:
    return float(text.replace("−", "-"))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _plain(text: str) -> str:
    return re.sub(r"[`*]", "", text).strip()


def checked_figures(text: str) -> list[Figure]:
    """Every ``VALUE [±TOL]`` figure of a section, in order, named by where it stands."""
    figures: list[Figure] = []
    lines = text.splitlines()
    header: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("|"):
            if i + 1 < len(lines) and re.match(r"^\|(?:\s*:?-+:?\s*\|)+\s*$", lines[i + 1]):
                header = _cells(line)
                continue
            if re.match(r"^\|(?:\s*:?-+:?\s*\|)+\s*$", line):
                continue
            cells = _cells(line)
            for col, cell in enumerate(cells):
                for m in _CHECKED.finditer(cell):
                    column = header[col] if col < len(header) else f"column {col + 1}"
                    name = f"{_plain(cells[0])} / {_plain(column)}"
                    figures.append(_figure(name, m))
            continue
        bold = _BOLD.search(line)
        for k, m in enumerate(_CHECKED.finditer(line)):
            lead = _plain(bold["text"]) if bold else _plain(line[: m.start()])[-60:]
            figures.append(_figure(f"{lead} (figure {k + 1})", m))
    return figures


def _figure(name: str, m: re.Match[str]) -> Figure:
    return Figure(name, _number(m["value"]), _number(m["tol"]), (m["value"] + m["rest"]).strip())


def verdicts(text: str) -> list[tuple[str, bool]]:
    """The yes/no verdicts of a section's bullet lines, named by the bullet's bold lead."""
    out = []
    for line in text.splitlines():
        if not line.startswith("- "):
            continue
        bold = _BOLD.search(line)
        lead = _plain(bold["text"]) if bold else _plain(line)[:60]
        for k, m in enumerate(_VERDICT.finditer(line)):
            out.append((f"{lead} (verdict {k + 1})", m["word"] == "yes"))
    return out


@dataclass(frozen=True)
class Comparison:
    """One published figure or verdict against its re-measurement."""

    section: str
    name: str
    published: str
    measured: str
    tolerance: str
    ok: bool

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        return (
            f"{status} {self.section}: {self.name}: published {self.published}, "
            f"measured {self.measured}{self.tolerance}"
        )


def compare_sections(key: str, published: str, measured: str) -> list[Comparison]:
    """Each checked figure and verdict of ``published`` against the same one in ``measured``.

    Figures are matched by position and name; a figure within its tolerance (plus
    the rounding of the last printed digit, which both sides share) passes, and a
    verdict passes when it reads the same. A section whose figures no longer line
    up (a changed layout) fails as a whole: publish it again.
    """
    old, new = checked_figures(published), checked_figures(measured)
    out: list[Comparison] = []
    if [f.name for f in old] != [f.name for f in new]:
        out.append(
            Comparison(
                key,
                "layout",
                f"{len(old)} checked figures",
                f"{len(new)} (or other names)",
                "; re-publish the section",
                False,
            )
        )
        return out
    if not old:
        out.append(Comparison(key, "layout", "no checked figures", "-", "", False))
    for a, b in zip(old, new):
        ok = abs(b.value - a.value) <= a.tolerance + 1e-9 * max(1.0, abs(a.value))
        out.append(Comparison(key, a.name, a.text, b.text, f" (tolerance ±{a.tolerance:g})", ok))
    old_v, new_v = verdicts(published), verdicts(measured)
    if [n for n, _ in old_v] != [n for n, _ in new_v]:
        out.append(Comparison(key, "verdicts", str(len(old_v)), str(len(new_v)), "", False))
        return out
    for (name, a), (_, b) in zip(old_v, new_v):
        out.append(Comparison(key, name, "yes" if a else "no", "yes" if b else "no", "", a == b))
    return out


# --- results scripts that train recipes ---------------------------------------------------------


def run_seconds(run_dir: Path) -> float:
    """Wall-clock of a run: from its config.yaml (written at the start) to its last checkpoint."""
    start = (run_dir / "config.yaml").stat().st_mtime
    return (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime - start


def results_parser(
    description: str, default_out: Path, default_runs: Path, cheap_help: str
) -> argparse.ArgumentParser:
    """The options every such script takes: where to write, which runs, check, cheap, quick."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default_out, help="the markdown file")
    parser.add_argument("--runs-dir", type=Path, default=default_runs)
    parser.add_argument("--reuse-runs", action="store_true", help="use finished runs in --runs-dir")
    parser.add_argument("--check", action="store_true", help="re-measure and compare")
    parser.add_argument("--cheap", action="store_true", help=cheap_help)
    parser.add_argument("--quick", action="store_true", help="train a few steps (smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def start_measuring(threads: int) -> None:
    """Timestamped progress logs and the torch thread count the figures are measured with."""
    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(threads)


def rendering_problems(out: Path, json_path: Path, render: Any) -> tuple[dict[str, Any], list[str]]:
    """The published figures and, when the markdown is not ``render`` of them, that problem."""
    published = json.loads(json_path.read_text())
    problems = []
    if out.read_text() != render(published):
        problems.append(f"{out} is not the rendering of {json_path}: re-run the script")
    return published, problems


def report_check(problems: list[str]) -> int:
    """Print each mismatch and the verdict; the exit status (1 when anything failed)."""
    for p in problems:
        print(f"MISMATCH {p}")
    print("check passed" if not problems else f"check failed: {len(problems)} problem(s)")
    return 1 if problems else 0


def write_results(out: Path, json_path: Path, result: dict[str, Any], render: Any) -> None:
    """Write the figures' JSON and their markdown rendering."""
    from modelzoo.utils.io import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json_path, json.dumps(result, indent=1) + "\n")
    atomic_write_text(out, render(result))
    print(f"wrote {out} and {json_path}")
