"""Speech recognition on synthesized speech: keyword spotting and digit strings.

    python scripts/speech_results.py train audio_cnn_spoken_words --runs-dir DIR  # modelzoo train
    python scripts/speech_results.py measure --runs-dir DIR  # test voices -> benchmarks/speech.*
    python scripts/speech_results.py ship --runs-dir DIR     # the keyword and digits models
    python scripts/speech_results.py render                  # the .md and recipe times again
    python scripts/speech_results.py --check                 # cheap: files agree with each other
    python scripts/speech_results.py --check --full          # also re-measure shipped weights

The data are eSpeak NG voices (``modelzoo.data.speech``), split **by voice**: the test
voices are never heard in training, and best.ckpt is chosen on the val voices alone (the
trainer monitors the val split). ``measure`` scores each run's best.ckpt on the test
voices, once: keyword spotting by accuracy (top-1, top-5, per word, a confusion matrix),
digit strings by word and character error rate (``jiwer``) and the share of strings
recognised exactly, with greedy (best-path) and prefix-beam CTC decoding side by side.
Training times are read from the run directories (config.yaml written at the start,
checkpoints/last.ckpt at the end) and the figures go to ``benchmarks/speech.json``;
``benchmarks/speech.md`` is rendered from that file alone, and each measured recipe's
"Took N min here" comment is set from it. Only finished runs (with checkpoints/last.ckpt)
are measured; every recipe without one is listed in the report as not run to completion.

``ship`` writes the keyword spotter (``audio_cnn.spoken_words``) and the digit-string
recognizer chosen on the **val** voices' WER (``<arch>.spoken_digits``) through
``modelzoo.weights.add_shipped_weight_set``; each card's metrics are measured from the
shipped file by the same function as ``measure`` (so they equal the results file), with
the recipe, the input spec (sample rate, clip length, labels or tokens) and the license.

``--check`` (tests/test_speech_app.py runs it): the markdown is what the JSON renders,
every recipe still is the one measured, and each shipped card states the results file's
test metrics. ``--full`` re-measures the shipped files on the test voices (generates the
data into MODELZOO_HOME on first use: a few minutes).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from modelzoo.config import Recipe, load_recipe, recipe_from_dict  # noqa: E402
from modelzoo.data import DataBundle, build_data  # noqa: E402

RESULTS = ROOT / "benchmarks" / "speech.json"
REPORT = ROOT / "benchmarks" / "speech.md"
FIGURES = ROOT / "benchmarks" / "speech"
LICENSE = "BSD-3-Clause"
BEAM_SIZE = 8
DECODERS = ("greedy", "beam")
EXAMPLES = 6  # decoded test strings shown per recognizer
PROVENANCE = (
    "Training data: speech synthesized offline with eSpeak NG {version} (GPL-3.0-or-later; "
    "voices and phoneme data from the espeakng-loader wheel), split by voice. The weights hold "
    "no eSpeak NG code or data; modelzoo releases them under BSD-3-Clause, like the zoo's "
    "other weights. The synthesized audio itself is not distributed (it is generated on the "
    "user's machine)."
)

_logger = logging.getLogger("speech_results")


@dataclass(frozen=True)
class Entry:
    """One recipe measured here.

    Attributes:
        key: the run's folder name under ``--runs-dir`` and the ``train`` argument.
        recipe: the YAML recipe, relative to the repository root.
        kind: ``"kws"`` (a keyword classifier) or ``"ctc"`` (a digit-string recognizer).
        title: the model's name in the report.
        tag: the weight set's tag when shipped.
    """

    key: str
    recipe: str
    kind: str
    title: str
    tag: str

    @property
    def arch(self) -> str:
        return str(self.load().model["name"])

    def load(self) -> Recipe:
        return load_recipe(ROOT / self.recipe, ["train.progress=false"])


ENTRIES = (
    Entry(
        "audio_cnn_spoken_words",
        "configs/audio/audio_cnn_spoken_words.yaml",
        "kws",
        "audio CNN (log-mel, 4 conv stages)",
        "spoken_words",
    ),
    Entry(
        "ctc_lstm_spoken_digits",
        "configs/audio/ctc_lstm_spoken_digits.yaml",
        "ctc",
        "CTC BiLSTM (2 x 128)",
        "spoken_digits",
    ),
    Entry(
        "conformer_ctc_spoken_digits",
        "configs/audio/conformer_ctc_spoken_digits.yaml",
        "ctc",
        "Conformer-CTC (4 x 96)",
        "spoken_digits",
    ),
)
BY_KEY = {e.key: e for e in ENTRIES}


# --- the data and the model of a recipe -------------------------------------------------------


def recipe_data(recipe: Recipe) -> DataBundle:
    """The recipe's data (generated into MODELZOO_HOME on first use, then read from there)."""
    kwargs = dict(recipe.data)
    name = kwargs.pop("name")
    kwargs.pop("batch_size", None)
    return build_data(name, **kwargs)


def build_model(recipe: Recipe, info: dict[str, Any], weights: Any) -> torch.nn.Module:
    """The recipe's model with ``weights`` (a checkpoint's state dict or a file) loaded strictly."""
    import modelzoo
    from modelzoo.train.recipes import model_kwargs

    name, kwargs = model_kwargs(recipe, info)
    model = modelzoo.create(name, **kwargs)
    if isinstance(weights, dict):
        model.load_state_dict(weights)
    else:
        from modelzoo.transfer import load_pretrained

        load_pretrained(model, weights, strict=True)
    return model.eval()


def checkpoint_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights a run chose on its val voices (best.ckpt, as ``modelzoo evaluate`` reads it)."""
    from modelzoo.train.checkpoint import evaluation_weights, load_checkpoint

    best = run_dir / "checkpoints" / "best.ckpt"
    if not best.is_file():
        raise SystemExit(f"{run_dir} has no checkpoints/best.ckpt; train it first")
    return evaluation_weights(load_checkpoint(best))


def text_tokens(recipe: Recipe, info: dict[str, Any]) -> tuple[list[str], str]:
    """The text of each token id and the separator: the recipe's task states them."""
    tokens = recipe.task.get("tokens")
    if tokens:
        return [str(t) for t in tokens], str(recipe.task.get("separator", ""))
    return ["" if i == info.get("blank_id", 0) else s for i, s in enumerate(info["itos"])], ""


# --- measuring --------------------------------------------------------------------------------


def _batches(dataset: Any, size: int, collate: Any = None):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=size, shuffle=False, collate_fn=collate)


@torch.inference_mode()
def measure_kws(model: torch.nn.Module, data: DataBundle, split: str) -> dict[str, Any]:
    """Top-1 and top-5 accuracy on a split, per-word accuracy and the confusion matrix."""
    dataset = getattr(data, split)
    classes = data.info["classes"]
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    top5 = 0
    for waves, labels in _batches(dataset, 64):
        logits = model(waves)
        best = logits.topk(5, dim=-1).indices
        top5 += int((best == labels[:, None]).any(-1).sum())
        for truth, guess in zip(labels.tolist(), best[:, 0].tolist(), strict=True):
            confusion[truth, guess] += 1
    n = int(confusion.sum())
    per_word = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    return {
        "metrics": {"accuracy": float(confusion.trace() / n), "top5": top5 / n},
        "clips": n,
        "per_word": {w: float(a) for w, a in zip(classes, per_word, strict=True)},
        "confusion": confusion.tolist(),
    }


@torch.inference_mode()
def measure_ctc(
    model: torch.nn.Module, data: DataBundle, split: str, tokens: list[str], separator: str
) -> dict[str, Any]:
    """WER, CER and exact-match rate of greedy and beam decoding on a split (jiwer)."""
    from modelzoo.models.audio import greedy_decode
    from modelzoo.train.tasks.ctc import beam_decode, error_rates, tokens_to_text

    dataset = getattr(data, split)
    references: list[str] = []
    found: dict[str, list[str]] = {d: [] for d in DECODERS}
    seconds = dict.fromkeys(DECODERS, 0.0)
    for waves, lengths, targets, target_lengths in _batches(dataset, 32, data.collate_fn):
        out = model(waves, lengths)
        for target, n in zip(targets, target_lengths, strict=True):
            references.append(tokens_to_text(target[:n].tolist(), tokens, separator))
        for decoder in DECODERS:
            start = time.perf_counter()
            if decoder == "greedy":
                ids = greedy_decode(out.log_probs, out.lengths)
            else:
                ids = beam_decode(out.log_probs, out.lengths, beam_size=BEAM_SIZE)
            seconds[decoder] += time.perf_counter() - start
            found[decoder] += [tokens_to_text(h, tokens, separator) for h in ids]
    metrics: dict[str, float] = {}
    for decoder in DECODERS:
        for name, value in error_rates(found[decoder], references).items():
            metrics[f"{name}_{decoder}"] = value
    examples = [
        {"reference": r, **{d: found[d][i] for d in DECODERS}}
        for i, r in enumerate(references)
        if i % max(1, len(references) // EXAMPLES) == 0
    ][:EXAMPLES]
    return {
        "metrics": metrics,
        "utterances": len(references),
        "decode_ms_per_utterance": {
            d: round(1000 * s / max(len(references), 1), 3) for d, s in seconds.items()
        },
        "beams_differ": sum(a != b for a, b in zip(found["greedy"], found["beam"], strict=True)),
        "examples": examples,
    }


def measure(entry: Entry, weights: Any, split: str = "test") -> tuple[dict[str, Any], Any]:
    """What the results file and the card state about ``weights`` on a split of the recipe's data.

    Returns:
        The measurements (``metrics`` and details) and the loaded model.
    """
    recipe = entry.load()
    data = recipe_data(recipe)
    model = build_model(recipe, data.info, weights)
    if entry.kind == "kws":
        return measure_kws(model, data, split), model
    tokens, separator = text_tokens(recipe, data.info)
    return measure_ctc(model, data, split, tokens, separator), model


def card_metrics(entry: Entry, measured: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The card's metrics: dataset/split -> metric -> value."""
    data = entry.load().data["name"]
    return {f"{data}/test (voices unseen in training)": dict(measured["metrics"])}


# --- the runs ---------------------------------------------------------------------------------


def run_facts(entry: Entry, run_dir: Path) -> dict[str, Any]:
    """Wall time, steps and the epoch best.ckpt was chosen at, from the run directory."""
    import csv

    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    recipe = entry.load()
    monitor = "val_accuracy" if entry.kind == "kws" else "val_cer"
    evaluated = [r for r in rows if r.get(monitor)]
    pick = max if entry.kind == "kws" else min
    best = pick(evaluated, key=lambda r: float(r[monitor])) if evaluated else None
    start = (run_dir / "config.yaml").stat().st_mtime
    end = (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime
    return {
        "wall_minutes": round((end - start) / 60, 1),
        "steps": int(rows[-1]["step"]) if rows else 0,
        "epochs": recipe.train.epochs,
        "best_epoch": int(best["epoch"]) + 1 if best else None,
        "val_at_best": {
            k[4:]: float(v) for k, v in (best or {}).items() if k.startswith("val_") and v
        },
    }


def train(entry: Entry, runs_dir: Path) -> Path:
    """Train ``entry``'s recipe into ``runs_dir/<key>``, as ``modelzoo train`` does."""
    from modelzoo.train.recipes import train_recipe

    run_dir = runs_dir / entry.key
    started = time.perf_counter()
    train_recipe(entry.load(), run_dir)
    print(f"[{entry.key}] trained in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return run_dir


def _data_facts(entry: Entry) -> dict[str, Any]:
    info = recipe_data(entry.load()).info
    return {
        "sizes": info["sizes"],
        "voices": {s: len(v) for s, v in info["voices"].items()},
        "test_voices": info["voices"]["test"],
        "espeak_ng": info["espeak_ng"],
    }


_TOOK = re.compile(r"Took (?:TBD|\d+) min here")


def took_text(run: dict[str, Any]) -> str:
    """What a measured recipe's header says about its training time."""
    return f"Took {run['run']['wall_minutes']:.0f} min here"


def set_took(results: dict[str, Any]) -> None:
    """Write each measured run's training time into its recipe's header comment."""
    from modelzoo.utils.io import atomic_write_text

    for key, run in results["runs"].items():
        path = ROOT / BY_KEY[key].recipe
        text = path.read_text()
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        if not _TOOK.search(header):
            raise SystemExit(f"{path} has no 'Took N min here' in its header comment to set")
        new = _TOOK.sub(took_text(run), text, count=1)
        if new != text:
            atomic_write_text(path, new)


def measure_runs(runs_dir: Path, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Score every finished run's best.ckpt on the test (and val) voices; write the results."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"runs": {}}
    for entry in ENTRIES:
        if keys and entry.key not in keys:
            continue
        run_dir = runs_dir / entry.key
        if not (run_dir / "checkpoints" / "last.ckpt").is_file():
            print(f"[{entry.key}] no finished run in {run_dir}; skipped", flush=True)
            continue
        weights = checkpoint_weights(run_dir)
        test, model = measure(entry, weights, "test")
        val, _ = measure(entry, weights, "val")
        recipe = entry.load()
        results["runs"][entry.key] = {
            "title": entry.title,
            "kind": entry.kind,
            "recipe": entry.recipe,
            "recipe_dict": recipe.to_dict(),
            "params": sum(p.numel() for p in model.parameters()),
            "run": run_facts(entry, run_dir),
            "data": _data_facts(entry),
            "test": test,
            "val": {"metrics": val["metrics"]},
        }
        print(f"[{entry.key}] test {test['metrics']}", flush=True)
        if entry.kind == "kws":
            _confusion_figure(entry, test)
        else:
            _emission_figure(entry, model)
    results["machine"] = f"{platform.machine()}, Python {platform.python_version()}"
    results["torch"] = torch.__version__
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    from modelzoo.utils.io import atomic_write_text

    atomic_write_text(RESULTS, json.dumps(results, indent=1, sort_keys=True) + "\n")
    atomic_write_text(REPORT, render(results))
    set_took(results)
    return results


# --- figures ----------------------------------------------------------------------------------


def _confusion_figure(entry: Entry, test: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from modelzoo.train.loggers import save_figure

    words = list(test["per_word"])
    confusion = np.asarray(test["confusion"], dtype=np.float64)
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(words)), words, rotation=90, fontsize=7)
    ax.set_yticks(range(len(words)), words, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("spoken")
    ax.set_title(f"{entry.title}: test voices (share of each spoken word)")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    return save_figure(fig, FIGURES / f"{entry.key}_confusion.png")


@torch.inference_mode()
def _emission_figure(entry: Entry, model: torch.nn.Module) -> Path:
    """Per-frame token probabilities of the first test utterance: where CTC fires."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from modelzoo.train.loggers import save_figure

    recipe = entry.load()
    data = recipe_data(recipe)
    tokens, _ = text_tokens(recipe, data.info)
    wave, target = data.test[0]
    out = model(wave[None], torch.tensor([len(wave)]))
    probs = out.log_probs[0].exp().numpy()  # (T', V)
    fig, ax = plt.subplots(figsize=(9, 3))
    for v in range(probs.shape[1]):
        label = "blank" if v == 0 else tokens[v]
        ax.plot(probs[:, v], label=label, lw=1.2 if v else 0.8, ls="-" if v else ":")
    truth = " ".join(tokens[t] for t in target.tolist())
    ax.set_title(f"{entry.title}: test utterance 0, '{truth}'")
    ax.set_xlabel("output frame")
    ax.set_ylabel("probability")
    ax.legend(ncol=6, fontsize=7, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, FIGURES / f"{entry.key}_emissions.png")


# --- the report -------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render(results: dict[str, Any]) -> str:
    """benchmarks/speech.md from the results alone."""
    runs = results.get("runs", {})
    lines = [
        "# Speech recognition on synthesized speech",
        "",
        "Written by `python scripts/speech_results.py measure` from `benchmarks/speech.json`; "
        "`python scripts/speech_results.py --check` re-checks it (tests/test_speech_app.py).",
        "",
        "Data: speech synthesized offline by eSpeak NG through the `espeakng-loader` wheel "
        "(`modelzoo.data.speech`): each utterance by one of 81 voice variants in one of 8 "
        "English accents, at a random rate, pitch and pitch range, with noise (5-30 dB SNR) "
        "and, for half of them, synthetic room reverberation. **Split by voice**: the test "
        "voices are never heard in training; best.ckpt is chosen on the val voices only, and "
        "the test voices are scored once, afterwards. Times are wall-clock minutes of "
        "`modelzoo train` on 2 CPU cores shared with other jobs (`OMP_NUM_THREADS=1`), "
        "under whatever load those jobs made at the time: compare the models' errors, not "
        "their times.",
        "",
    ]
    kws = {k: r for k, r in runs.items() if r["kind"] == "kws"}
    ctc = {k: r for k, r in runs.items() if r["kind"] == "ctc"}
    for key, r in kws.items():
        m = r["test"]["metrics"]
        d = r["data"]
        lines += [
            "## Keyword spotting: 35 Speech-Commands words",
            "",
            f"`spoken_words`: one-second clips, {d['sizes']['train']:,} train / "
            f"{d['sizes']['val']:,} val / {d['sizes']['test']:,} test clips from "
            f"{d['voices']['train']} / {d['voices']['val']} / {d['voices']['test']} voices "
            f"(test voices: {', '.join(d['test_voices'])}); eSpeak NG {d['espeak_ng']}.",
            "",
            "| model | params | test accuracy | test top-5 | val accuracy (chose best.ckpt) "
            "| best epoch | time | command |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
            f"| {r['title']} | {r['params']:,} | **{_pct(m['accuracy'])}** | {_pct(m['top5'])} "
            f"| {_pct(r['val']['metrics']['accuracy'])} | {r['run']['best_epoch']} of "
            f"{r['run']['epochs']} | {r['run']['wall_minutes']:.0f} min "
            f"| `modelzoo train {r['recipe']}` |",
            "",
        ]
        per_word = sorted(r["test"]["per_word"].items(), key=lambda kv: kv[1])
        lines += [
            "Hardest words on the test voices: "
            + ", ".join(f"{w} {_pct(a)}" for w, a in per_word[:6])
            + "; easiest: "
            + ", ".join(f"{w} {_pct(a)}" for w, a in per_word[-4:])
            + ".",
            "",
            f"![confusion matrix](speech/{key}_confusion.png)",
            "",
        ]
    if ctc:
        first = next(iter(ctc.values()))
        d = first["data"]
        lines += [
            "## Continuous digit strings: CTC BiLSTM vs Conformer",
            "",
            *(
                []
                if len(ctc) == sum(e.kind == "ctc" for e in ENTRIES)
                else [
                    "**The comparison is not measured yet**: only "
                    + ", ".join(r["title"] for r in ctc.values())
                    + " ran to completion (see *Not run to completion*).",
                    "",
                ]
            ),
            f'`spoken_digits`: strings of 1-5 digits read as words ("four one seven"), '
            f"{d['sizes']['train']:,} train / {d['sizes']['val']:,} val / "
            f"{d['sizes']['test']:,} test utterances from {d['voices']['train']} / "
            f"{d['voices']['val']} / {d['voices']['test']} voices. CTC over the ten digit "
            "tokens; the transcript is written as words and scored with `jiwer` against the "
            "words spoken: WER and CER (characters, spaces included) summed over the test set, "
            "and the share of strings recognised exactly. Decoding is greedy (best path) or "
            f"prefix beam search (beam {BEAM_SIZE}, no language model).",
            "",
            "| model | params | decoding | test WER | test CER | strings exact | val WER "
            "| best epoch | time | command |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in ctc.values():
            m, v = r["test"]["metrics"], r["val"]["metrics"]
            for decoder in DECODERS:
                lines.append(
                    f"| {r['title']} | {r['params']:,} | {decoder} "
                    f"| **{_pct(m[f'wer_{decoder}'])}** | {_pct(m[f'cer_{decoder}'])} "
                    f"| {_pct(m[f'exact_match_{decoder}'])} | {_pct(v[f'wer_{decoder}'])} "
                    f"| {r['run']['best_epoch']} of {r['run']['epochs']} "
                    f"| {r['run']['wall_minutes']:.0f} min | `modelzoo train {r['recipe']}` |"
                )
        lines.append("")
        for r in ctc.values():
            ms = r["test"]["decode_ms_per_utterance"]
            lines.append(
                f"- {r['title']}: beam search changed {r['test']['beams_differ']} of "
                f"{r['test']['utterances']} test transcripts; decoding took "
                f"{ms['greedy']:.2f} ms (greedy) and {ms['beam']:.2f} ms (beam, in Python) "
                "per utterance."
            )
        lines += [
            "",
            "Without a language model, and with whole words as tokens, beam search can only "
            "re-rank transcripts whose probability is spread over several alignments; when the "
            "model's frames are confident the best path already is the most probable "
            "transcript, and the two decoders agree (a negative result where it happens).",
            "",
        ]
        for key, r in ctc.items():
            lines += [f"Examples, {r['title']} (test voices):", ""]
            lines += ["| spoken | greedy | beam |", "|---|---|---|"]
            for ex in r["test"]["examples"]:
                lines.append(f"| {ex['reference']} | {ex['greedy']} | {ex['beam']} |")
            lines += ["", f"![CTC emissions](speech/{key}_emissions.png)", ""]
    missing = [e for e in ENTRIES if e.key not in runs]
    if missing:
        lines += [
            "## Not run to completion",
            "",
            "These recipes have no finished run (training did not fit in the CPU time this "
            "machine had), so nothing of theirs is measured or published:",
            "",
        ]
        for e in missing:
            lines.append(
                f"- {e.title} (`{e.key}`): `python scripts/speech_results.py train {e.key}` "
                f"then `python scripts/speech_results.py measure {e.key}` (the recipe alone: "
                f"`modelzoo train {e.recipe}`)"
            )
        lines.append("")
    shipped = results.get("shipped", {})
    if shipped:
        lines += ["## Shipped weights", ""]
        for name, key in sorted(shipped.items()):
            lines.append(
                f"- `{name}` from `{runs[key]['recipe']}` (best.ckpt on the val voices): "
                f"`modelzoo predict {name} clip.wav`"
            )
        lines += [
            "",
            PROVENANCE.format(version=next(iter(runs.values()))["data"]["espeak_ng"]),
            "",
        ]
    lines += [
        f"Measured on {results.get('machine', '?')}, torch {results.get('torch', '?')}.",
        "",
    ]
    return "\n".join(lines)


# --- shipping ---------------------------------------------------------------------------------


def chosen_recognizer(results: dict[str, Any]) -> str:
    """The digit-string run with the lower greedy WER on the **val** voices (never test)."""
    ctc = {k: r for k, r in results["runs"].items() if r["kind"] == "ctc"}
    if not ctc:
        raise SystemExit("measure the digit-string runs first")
    return min(ctc, key=lambda k: (ctc[k]["val"]["metrics"]["wer_greedy"], k))


def input_spec(entry: Entry, info: dict[str, Any]) -> dict[str, Any]:
    """How audio is prepared for the weights, and what their outputs mean."""
    recipe = entry.load()
    data = dict(recipe.data)
    name = data.pop("name")
    data.pop("batch_size", None)
    spec: dict[str, Any] = {
        "dataset": name,
        "data_kwargs": data,
        "sample_rate": int(info["sample_rate"]),
        "espeak_ng": info["espeak_ng"],
    }
    if entry.kind == "kws":
        spec["num_samples"] = int(info["num_samples"])
        spec["clip_seconds"] = info["num_samples"] / info["sample_rate"]
        spec["labels"] = list(info["classes"])
    else:
        tokens, separator = text_tokens(recipe, info)
        spec.update(itos=list(info["itos"]), tokens=tokens, separator=separator, blank_id=0)
    return spec


def same_recipe(measured: dict[str, Any], recipe: Recipe) -> bool:
    """Whether a recipe recorded at measuring time is ``recipe``; settings added to the
    schema since then compare as their defaults."""
    return recipe_from_dict(measured).to_dict() == recipe.to_dict()


def ship(runs_dir: Path) -> dict[str, str]:
    """Ship the keyword spotter and the val-chosen digit recognizer; returns name -> run key."""
    from modelzoo.weights import WeightSet, add_shipped_weight_set, save_weights

    results = json.loads(RESULTS.read_text())
    keys = ["audio_cnn_spoken_words", chosen_recognizer(results)]
    shipped: dict[str, str] = {}
    for key in keys:
        entry = BY_KEY[key]
        recipe = entry.load()
        if not same_recipe(results["runs"][key]["recipe_dict"], recipe):
            raise SystemExit(f"{entry.recipe} changed since it was measured; measure it again")
        info = recipe_data(recipe).info
        model = build_model(recipe, info, checkpoint_weights(runs_dir / key))
        name = f"{entry.arch}.{entry.tag}"
        with tempfile.TemporaryDirectory() as tmp:
            file = save_weights(model.state_dict(), Path(tmp) / f"{name}.safetensors")
            measured, _ = measure(entry, file)  # what ships is what was scored
            if measured["metrics"] != results["runs"][key]["test"]["metrics"]:
                raise SystemExit(f"{name}: the file measures {measured['metrics']}, not the run's")
            run = results["runs"][key]["run"]
            card = WeightSet(
                arch=entry.arch,
                tag=entry.tag,
                files=(),
                model_kwargs=dict(model.init_kwargs),
                metrics=card_metrics(entry, measured),
                license=LICENSE,
                recipe=recipe.to_dict(),
                input_spec=input_spec(entry, info),
                num_params=sum(p.numel() for p in model.parameters()),
                default=True,
                description=(
                    f"{entry.title} trained by `modelzoo train {entry.recipe}` "
                    f"({run['wall_minutes']:.0f} min on 2 CPU cores), best.ckpt chosen on the val "
                    "voices; shipped by scripts/speech_results.py ship. "
                    + PROVENANCE.format(version=info["espeak_ng"])
                ),
            )
            card = add_shipped_weight_set(card, file)
        shipped[card.name] = key
        print(f"shipped {card.name}: {card.metrics}", flush=True)
    results["shipped"] = shipped
    from modelzoo.utils.io import atomic_write_text

    atomic_write_text(RESULTS, json.dumps(results, indent=1, sort_keys=True) + "\n")
    atomic_write_text(REPORT, render(results))
    return shipped


# --- checking ---------------------------------------------------------------------------------


def check(full: bool = False) -> list[str]:
    """What no longer agrees: the report, the recipes, the cards (and with ``full`` the
    shipped files' measurements). Empty when all is well."""
    from modelzoo.weights import get_weight_set

    problems: list[str] = []
    if not RESULTS.is_file():
        return [f"{RESULTS} is missing; run `python scripts/speech_results.py measure`"]
    results = json.loads(RESULTS.read_text())
    if REPORT.read_text() != render(results):
        problems.append(f"{REPORT} is not what {RESULTS.name} renders; run measure again")
    for key, r in results["runs"].items():
        entry = BY_KEY[key]
        if not same_recipe(r["recipe_dict"], entry.load()):
            problems.append(f"{entry.recipe} changed since it was measured")
        if took_text(r) not in (ROOT / entry.recipe).read_text():
            problems.append(f"{entry.recipe} does not say '{took_text(r)}'; run render")
        figure = FIGURES / f"{key}_{'confusion' if entry.kind == 'kws' else 'emissions'}.png"
        if not figure.is_file():
            problems.append(f"{figure} is missing")
    for name, key in results.get("shipped", {}).items():
        arch, tag = name.split(".", 1)
        ws = get_weight_set(arch, tag)
        entry = BY_KEY[key]
        claimed = card_metrics(entry, results["runs"][key]["test"])
        if ws.metrics != claimed:
            problems.append(f"{name}: card metrics {ws.metrics} but results {claimed}")
        if not same_recipe(results["runs"][key]["recipe_dict"], recipe_from_dict(ws.recipe)):
            problems.append(f"{name}: the card's recipe is not the measured one")
        if full:
            measured, _ = measure(entry, ws)
            for metric, value in claimed[next(iter(claimed))].items():
                got = measured["metrics"][metric]
                if not math.isclose(value, got, rel_tol=1e-6, abs_tol=1e-9):
                    problems.append(f"{name} {metric}: card {value}, measured again {got}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("train", "measure", "ship", "render"))
    parser.add_argument("keys", nargs="*", help=f"runs ({', '.join(BY_KEY)}; default all)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "speech")
    parser.add_argument("--check", action="store_true", help="re-check the committed results")
    parser.add_argument("--full", action="store_true", help="with --check: re-measure the weights")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    unknown = [k for k in args.keys if k not in BY_KEY]
    if unknown:
        raise SystemExit(f"unknown runs {unknown}; known: {', '.join(BY_KEY)}")
    if args.check:
        problems = check(full=args.full)
        for problem in problems:
            print(problem)
        print("speech results: " + ("OK" if not problems else f"{len(problems)} problems"))
        return 1 if problems else 0
    if args.command == "train":
        for key in args.keys or list(BY_KEY):
            train(BY_KEY[key], args.runs_dir)
    elif args.command == "measure":
        measure_runs(args.runs_dir, args.keys)
    elif args.command == "ship":
        ship(args.runs_dir)
    elif args.command == "render":
        from modelzoo.utils.io import atomic_write_text

        results = json.loads(RESULTS.read_text())
        atomic_write_text(REPORT, render(results))
        set_took(results)
    else:
        parser.error("give a command (train, measure, ship, render) or --check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
