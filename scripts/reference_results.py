"""Reference results: the field's classic claims, reproduced by modelzoo's own recipes.

    OMP_NUM_THREADS=1 python scripts/reference_results.py [SECTION ...] [--quick]
        [--threads 1] [--seeds 0,1,2] [--out benchmarks/reference_results.md]
    OMP_NUM_THREADS=1 python scripts/reference_results.py --check [SECTION ...]

Sections (all of them, in this order, when none is named), one module each in
scripts/reference_sections/:

- ``resnet``: resnet56 against plain56 (and resnet20 against plain20) on the digits:
  shortcuts make the deep net trainable; depth hurts only the plain net (He et al. 2016).
- ``recurrent``: LSTM and GRU against a tanh RNN on the adding problem at length 100,
  against the trivial predictor (Hochreiter & Schmidhuber 1997; Bengio et al. 1994).
- ``seq2seq``: a transformer against an attentional LSTM encoder-decoder on digit
  arithmetic: accuracy and training time per epoch (Vaswani et al. 2017).
- ``autoencoder``: reconstruction error against the mean image; the denoising gain
  (Vincent et al. 2008); anomaly detection AUROC on digit classes the AE never saw.
- ``generative``: DCGAN, cGAN and VAE samples judged by a digits classifier
  (confidence, class diversity; the cGAN's label accuracy), against real images and noise.
- ``dense``: detection mAP@0.5 and U-Net mean IoU on generated shapes (the longest).
- ``audio``: tone classification accuracy and CTC character error rate on DTMF.
- ``augmentation``: GAN augmentation of a few-label digits classifier.

Every run goes through ``train_recipe`` with a recipe from configs/ (overrides are
stated next to each figure) into runs/reference/<name>/seed<k>/; nothing in the
markdown is typed in by hand. Each section is written as soon as it is done and
replaces only its own part of benchmarks/reference_results.md (between its
``<!-- section: NAME -->`` markers). To add a section, write a module with ``KEY`` and
``run(ctx) -> Section`` and list it in SECTIONS. Plots go to benchmarks/reference/.

``--check`` re-runs the named sections (all by default) into runs/reference_check/,
leaving the published file and plots alone, and compares every figure written as
``VALUE [±TOL]`` and every yes/no verdict with the published file: it prints one line
per figure and exits 1, naming the figures, when one is not reproduced within its
tolerance. ``--quick`` trains a few steps per run (a smoke test) and writes under
runs/reference_quick/ instead, leaving the results alone.

Threads default to 1: on a shared 2-core machine, tiny models run far slower with two,
and one thread makes the sums (and so the seeded runs) reproducible.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:  # `_common` and `reference_sections` live next to this file
    sys.path.insert(0, str(SCRIPTS))

import torch  # noqa: E402
from _common import (  # noqa: E402
    ROOT,
    compare_sections,
    merge_markdown,
    section_block,
    sections_of,
)
from reference_sections import (  # noqa: E402
    audio,
    augmentation,
    autoencoder,
    dense,
    generative,
    recurrent,
    resnet,
    seq2seq,
)
from reference_sections.harness import Context, Section  # noqa: E402

from modelzoo.utils.io import atomic_write_text  # noqa: E402

_logger = logging.getLogger("reference_results")

DEFAULT_OUT = ROOT / "benchmarks" / "reference_results.md"
DEFAULT_RUNS = ROOT / "runs" / "reference"
QUICK_DIR = ROOT / "runs" / "reference_quick"
CHECK_DIR = ROOT / "runs" / "reference_check"

MODULES: list[ModuleType] = [
    resnet,
    recurrent,
    seq2seq,
    autoencoder,
    generative,
    dense,
    audio,
    augmentation,
]
SECTIONS: dict[str, Callable[[Context], Section]] = {m.KEY: m.run for m in MODULES}
# Sections an earlier version of this script wrote, and what replaced them: dropped
# from the file when it is next written.
RETIRED = {"dense_audio": "dense, audio and augmentation"}

HEADER = """# Reference results

Classic claims of the field, reproduced with modelzoo's own recipes and measured by
`scripts/reference_results.py`: every figure below comes from the runs that script
made (recipe, overrides, seeds and wall-clock are stated beside it); none is typed in.
Re-run one part with `OMP_NUM_THREADS=1 python scripts/reference_results.py SECTION`;
it replaces only that part of this file. Plots are in [reference/](reference/).

A figure followed by `[±t]` is re-checked: `python scripts/reference_results.py --check
[SECTION ...]` re-runs the section and fails, naming the figure, when the re-run lands
further than t from it; yes/no verdicts must read the same. The `autoencoder` section is
re-checked by the default test suite, the others by `pytest -m slow
tests/test_reference_results.py`; the output of the last full check is in
[reference_check.txt](reference_check.txt). The runs are seeded and single-threaded, so on
the machine named in a section's "Measured by" line they reproduce to the printed digit;
another CPU model rounds differently, and where that moves a figure by more than its
tolerance the section says so.
"""


def _write(path: Path, section: Section) -> None:
    """Replace ``section`` in the file at ``path`` (atomically), dropping retired sections."""
    existing = sections_of(path.read_text() if path.is_file() else "")
    for key in RETIRED:
        if key in existing:
            _logger.info("dropping the retired section %s (now %s)", key, RETIRED[key])
    kept = "".join(section_block(k, body) for k, body in existing.items() if k not in RETIRED)
    text = merge_markdown(kept, section.key, section.body, list(SECTIONS), HEADER)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def check(ctx: Context, names: list[str], published_file: Path) -> int:
    """Re-run ``names`` and compare with ``published_file``; 0 when every figure holds."""
    published = sections_of(published_file.read_text() if published_file.is_file() else "")
    missing = [n for n in names if n not in published]
    if missing:
        print(f"FAIL: {published_file} has no section(s) {', '.join(missing)}; publish them first")
        return 1
    failed: list[str] = []
    for name in names:
        started = time.perf_counter()
        section = SECTIONS[name](ctx)
        _write(ctx.out, section)  # the re-run, for a diff against the published file
        results = compare_sections(name, published[name], section.body)
        for r in results:
            print(r.line(), flush=True)
        bad = [f"{name}: {r.name}" for r in results if not r.ok]
        failed += bad
        print(
            f"{name}: {len(results) - len(bad)}/{len(results)} figures and verdicts reproduced "
            f"({(time.perf_counter() - started) / 60:.1f} min)",
            flush=True,
        )
    if failed:
        print(f"\nNOT reproduced ({len(failed)}):\n  " + "\n  ".join(failed))
        print(f"the re-run is in {ctx.out}; publish it with the same command without --check")
        return 1
    print(f"\nevery checked figure of {', '.join(names)} reproduced within its tolerance")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"any of {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="re-run and compare with the published file instead of publishing",
    )
    parser.add_argument("--quick", action="store_true", help="a few steps per run (smoke test)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seeds", default=None, help="train seeds for every section, e.g. 0,1")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"the results file (default {DEFAULT_OUT.relative_to(ROOT)}); with --check, the "
        "published file to compare with",
    )
    parser.add_argument("--runs-dir", type=Path, default=None, help=f"default {DEFAULT_RUNS}")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="with --check or --quick: where the runs, the re-run markdown and its plots go "
        f"(default {CHECK_DIR.relative_to(ROOT)} or {QUICK_DIR.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.check and (args.quick or args.seeds):
        parser.error("--check re-runs the published recipes and seeds: drop --quick and --seeds")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    names = args.sections or list(SECTIONS)
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None

    if args.check:
        published = args.out or DEFAULT_OUT
        work = args.work_dir or CHECK_DIR
        out = work / "reference_results.md"
        ctx = Context(
            runs_dir=args.runs_dir or work / "runs",
            plots_dir=out.parent / "reference",
            out=out,
            threads=args.threads,
        )
        return check(ctx, names, published)

    base = (args.work_dir or QUICK_DIR) if args.quick else None
    out = args.out or (base / "reference_results.md" if base else DEFAULT_OUT)
    ctx = Context(
        runs_dir=args.runs_dir or (base / "runs" if base else DEFAULT_RUNS),
        plots_dir=out.parent / "reference",
        out=out,
        quick=args.quick,
        seeds=seeds,
        threads=args.threads,
    )
    for name in names:
        _logger.info("section %s", name)
        _write(ctx.out, SECTIONS[name](ctx))
        _logger.info("wrote section %s to %s", name, ctx.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
