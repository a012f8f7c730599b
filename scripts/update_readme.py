"""Regenerate the README's generated tables: the models (from the registry) and the
applications' headline figures (from the results files under benchmarks/, which their
scripts write and re-check).

python scripts/update_readme.py          # rewrite README.md in place
python scripts/update_readme.py --check  # exit 1 if a table is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCHMARKS = ROOT / "benchmarks"
if str(ROOT / "scripts") not in sys.path:  # the results scripts live next to this file
    sys.path.insert(0, str(ROOT / "scripts"))

import translation_results  # noqa: E402  (its summary of a run is the one the README shows)


def model_table() -> str:
    import modelzoo as mz
    from modelzoo.cli.models import model_table_markdown

    cards = [mz.model_card(name) for name in mz.list_models()]
    return f"{len(cards)} native models.\n\n" + model_table_markdown(cards)


def _results(name: str) -> dict[str, Any]:
    return json.loads((BENCHMARKS / f"{name}.json").read_text())


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _model_cell(arch: str, tag: str, shipped: set[str]) -> str:
    name = f"{arch}.{tag}"
    return f"`{name}`" if name in shipped else f"`{arch}` (not shipped)"


def applications_table() -> str:
    """One row per application: the headline figure on the test split, from its results file."""
    rows = []
    import modelzoo as mz

    shipped = set(mz.list_models(pretrained=True))
    translation = _results("translation")
    # Per pair (the multilingual model last), the Transformer first.
    for run in sorted(
        translation["runs"].values(),
        key=lambda r: (r["pair"] == "en-multi", r["pair"], r["family"] != "transformer"),
    ):
        # One row per model: a multilingual one shows its mean over its languages.
        langs = sorted(run["test"])
        mean = translation_results.test_summary(run)
        floor = translation_results.copy_floor(translation, run)
        target = langs[0] if len(langs) == 1 else f"{len(langs)} languages (mean)"
        rows.append(
            [
                f"translation en→{target}",
                "`po_translations` (Django, Sphinx, Wagtail, allauth catalogs)",
                _model_cell(run["arch"], "po_" + run["pair"].replace("-", "_"), shipped),
                "BLEU / chrF / placeholders kept",
                f"{mean['bleu']:.1f} / {mean['chrf']:.1f} / {_pct(mean['placeholder_rate'])} "
                f"(copying the source: {floor['bleu']:.1f} / {floor['chrf']:.1f})",
                f"{run['timing']['wall_s'] / 60:.0f} min",
                "[translation.md](benchmarks/translation.md)",
            ]
        )
    summaries = _results("summarization")
    measured = summaries["runs"] or {}
    for key, run in sorted(measured.items()):
        rows.append(
            [
                "code summarization",
                "`code_summaries`",
                f"`{run['config']['model']['name']}` ({key}, not shipped)",
                "ROUGE-L (naming the function)",
                f"{run['test']['rouge_l']:.3f} ({summaries['name_baseline']['rouge_l']:.3f})",
                f"{run['timing']['wall_s'] / 60:.0f} min",
                "[summarization.md](benchmarks/summarization.md)",
            ]
        )
    if not measured:
        base = summaries["name_baseline"]
        rows.append(
            [
                "code summarization",
                f"`code_summaries` (Python {summaries['corpus']['python_version']} stdlib)",
                "not trained yet",
                "ROUGE-L",
                f"no model yet; the function-name baseline scores {base['rouge_l']:.3f}",
                "-",
                "[summarization.md](benchmarks/summarization.md)",
            ]
        )
    speech = _results("speech")["runs"]
    kws = speech.get("audio_cnn_spoken_words")
    if kws:
        rows.append(
            [
                "keyword spotting (35 words)",
                "`spoken_words` (eSpeak NG, unseen voices)",
                "`audio_cnn.spoken_words`",
                "accuracy",
                _pct(kws["test"]["metrics"]["accuracy"]),
                f"{kws['run']['wall_minutes']:.0f} min",
                "[speech.md](benchmarks/speech.md)",
            ]
        )
    for key, arch in (
        ("ctc_lstm_spoken_digits", "ctc_lstm"),
        ("conformer_ctc_spoken_digits", "conformer_ctc"),
    ):
        ctc = speech.get(key)
        if not ctc:
            continue
        m = ctc["test"]["metrics"]
        rows.append(
            [
                "speech recognition (digit strings)",
                "`spoken_digits` (eSpeak NG, unseen voices)",
                _model_cell(arch, "spoken_digits", shipped),
                "WER greedy / beam",
                f"{_pct(m['wer_greedy'])} / {_pct(m['wer_beam'])}",
                f"{ctc['run']['wall_minutes']:.0f} min",
                "[speech.md](benchmarks/speech.md)",
            ]
        )
    style = _results("style_transfer")
    for task, label in (("edges2digits", "edges → digits"), ("masks2scenes", "masks → scenes")):
        p = style["paired"][task]
        gan = p[f"pix2pix_{task}"]
        rows.append(
            [
                f"paired style transfer ({label})",
                f"`{task}`",
                "`pix2pix`",
                "PSNR / SSIM (L1-only ablation)",
                f"{gan['psnr']:.1f} dB / {gan['ssim']:.3f} "
                f"({p[f'pix2pix_{task}_l1only']['psnr']:.1f} dB / "
                f"{p[f'pix2pix_{task}_l1only']['ssim']:.3f})",
                f"{style['runs'][f'pix2pix_{task}']['seconds'] / 60:.0f} min",
                "[style_transfer.md](benchmarks/style_transfer.md)",
            ]
        )
    c = style["unpaired"]["cyclegan"]
    rows.append(
        [
            "unpaired style transfer (chalk ↔ ink)",
            "`digit_styles`",
            "`cyclegan`",
            "judged target style and same digit",
            f"{_pct(c['ab']['both'])} / {_pct(c['ba']['both'])}",
            f"{style['runs']['cyclegan_digit_styles']['seconds'] / 60:.0f} min",
            "[style_transfer.md](benchmarks/style_transfer.md)",
        ]
    )
    k = _results("clustering")["kmeans"]
    mean: Callable[[str], float] = lambda key: sum(k[key]["nmi"]) / len(k[key]["nmi"])  # noqa: E731
    rows.append(
        [
            "clustering (k-means on codes)",
            "sklearn digits",
            "`conv_autoencoder.digits` (16-d)",
            "NMI (raw pixels, PCA-16)",
            f"{mean('ae16'):.3f} ({mean('raw'):.3f}, {mean('pca16'):.3f})",
            "-",
            "[clustering.md](benchmarks/clustering.md)",
        ]
    )
    header = ["task", "data", "model", "metric (test split)", "value", "training here", "results"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {"models": model_table, "applications": applications_table}


def render(text: str) -> str:
    for name, build in BLOCKS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no {start} ... {end} block")
        table = build()
        text = pattern.sub(lambda _, t=table, a=start, b=end: f"{a}\n{t}\n{b}", text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args()
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md's generated tables are stale: run python scripts/update_readme.py")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
