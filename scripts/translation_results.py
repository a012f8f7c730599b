"""Machine translation on software-localisation catalogs: Transformer vs LSTM, measured.

    python scripts/translation_results.py train [NAME ...] --run-root DIR    # train the recipes
    python scripts/translation_results.py measure [NAME ...] --run-root DIR  # decode, score, write
    python scripts/translation_results.py render                             # rewrite the .md
    python scripts/translation_results.py --check           # re-score the published outputs
    python scripts/translation_results.py --check --decode  # also re-decode with shipped weights

Protocol (what benchmarks/translation.md states):

- Data: ``po_translations`` (human translations of the Django, Sphinx, Wagtail and
  django-allauth user interfaces), split by English source string so no source of the
  test split was seen in training. The recipes train on pairs of at most 32 tokens
  (``data.max_len``); every test source is translated, long ones included.
- Same budget: the Transformer and the LSTM of one language pair train on the same data
  for the same number of optimizer steps, with the same batch, optimizer, learning rate,
  schedule, label smoothing (0.1) and dropout; wall-clock and CPU time are reported too.
- Selection on val only: the *final* weights of each run are measured (no checkpoint is
  picked by anything); the decoding setting (greedy, or beam 4 with length penalty 0.6 or
  1.0) is chosen per run by BLEU on the validation split; the test split is then decoded
  once with that setting. Test figures choose nothing.
- Scores: sacrebleu corpus BLEU and chrF against every human reference of a source (its
  signature is printed), and the placeholder preservation rate: the share of test sources
  with format placeholders (``%(count)d``, ``{0}``) whose translation keeps exactly the
  same ones (a translation that drops one breaks the program).

``measure`` writes ``benchmarks/translation.json`` (figures), ``translation_outputs.json.xz``
(every test translation) and ``translation.md``, and the "Took here" line of each recipe.
Without names it measures the runs of ``--run-root`` that finished (``checkpoints/last.ckpt``
and ``timing.json``) and says which it skipped. Only finished runs are published; the
results file lists every recipe of the protocol that has no measured run under "Not run
yet", with its command, and states a Transformer-vs-LSTM comparison only for the pairs
where both ran.
``--check`` re-scores the stored translations against the corpus, re-renders the results
file and the recipe headers and compares them with what is published; ``--decode`` also
translates the test split again with the shipped weight sets of the runs that have one and
requires the same translations.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:  # `_text_runs` and `_common` live next to this file
    sys.path.insert(0, str(SCRIPTS))

from _common import machine_line, table  # noqa: E402
from _text_runs import (  # noqa: E402
    ROOT,
    RUN_COLUMNS,
    final_model,
    is_finished,
    number,
    read_timing,
    recipe_dict,
    results_parser,
    run_cells,
    set_took_line,
    took_line,
    train_run,
    val_curve,
    write_published,
)

BENCHMARKS = ROOT / "benchmarks"
OUT_JSON = BENCHMARKS / "translation.json"
OUT_MD = BENCHMARKS / "translation.md"
OUT_OUTPUTS = BENCHMARKS / "translation_outputs.json.xz"
# The decoding settings tried on the validation split: (beam size, length penalty).
GRID = ((1, 1.0), (4, 0.6), (4, 1.0))
TOL = 1e-9  # re-scored figures must come out the same (same text, same sacrebleu)


@dataclass(frozen=True)
class Run:
    """One training run of the comparison."""

    name: str  # e.g. "transformer-en-de"
    family: str  # "transformer" or "lstm"
    recipe: str  # relative to the repository root
    pair: str  # "en-de", ..., "en-multi"

    @property
    def label(self) -> str:
        return "Transformer" if self.family == "transformer" else "LSTM + attention"


def _runs() -> list[Run]:
    runs = []
    for pair, stem in (
        ("en-de", "en_de"),
        ("en-fr", "en_fr"),
        ("en-es", "en_es"),
        ("en-multi", "multi"),
    ):
        for family, folder in (("transformer", "transformer"), ("lstm", "rnn")):
            name = f"{family}-multi" if pair == "en-multi" else f"{family}-{pair}"
            runs.append(Run(name, family, f"configs/{folder}/{family}_translate_{stem}.yaml", pair))
    return runs


RUNS = _runs()


def _select(names: list[str]) -> list[Run]:
    known = {r.name: r for r in RUNS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown runs {unknown}; known: {', '.join(known)}")
    return [r for r in RUNS if not names or r.name in names]


# --- measuring -------------------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    return float(statistics.fmean(values))


def measure_run(run: Run, run_dir: Path) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Decode val with every GRID setting, pick one by mean val BLEU, decode test once."""
    from modelzoo.translate import evaluate_translation

    model = final_model(run_dir)
    spec = model.text_spec
    languages = list(spec.target_languages)
    val = []
    for beam, penalty in GRID:
        scores = [
            evaluate_translation(model, lang, "val", beam_size=beam, length_penalty=penalty)
            for lang in languages
        ]
        val.append(
            {
                "beam": beam,
                "length_penalty": penalty,
                "bleu": _mean([s.bleu for s in scores]),
                "chrf": _mean([s.chrf for s in scores]),
                "bleu_by_language": {s.language: s.bleu for s in scores},
            }
        )
        print(f"  {run.name} val beam {beam} lp {penalty}: BLEU {val[-1]['bleu']:.2f}", flush=True)
    # The best mean val BLEU; on a tie the cheaper search.
    chosen = max(val, key=lambda v: (round(v["bleu"], 9), -v["beam"], -v["length_penalty"]))
    test, outputs, signatures = {}, {}, {}
    for lang in languages:
        scores = evaluate_translation(
            model,
            lang,
            "test",
            beam_size=chosen["beam"],
            length_penalty=chosen["length_penalty"],
        )
        test[lang] = scores.metrics()
        outputs[lang] = scores.outputs
        signatures[lang] = {"bleu": scores.bleu_signature, "chrf": scores.chrf_signature}
    timing = read_timing(run_dir)
    result = {
        "name": run.name,
        "family": run.family,
        "arch": spec.arch,
        "pair": run.pair,
        "recipe": run.recipe,
        "recipe_sha256": _recipe_hash(run.recipe),
        "config": recipe_dict(ROOT / run.recipe),
        "params": sum(p.numel() for p in model.parameters()),
        "vocab_size": spec.tokenizer.vocab_size,
        "languages": languages,
        "timing": timing,
        "val_curve": val_curve(run_dir),
        "val": val,
        "chosen": {"beam": chosen["beam"], "length_penalty": chosen["length_penalty"]},
        "test": test,
        "signatures": signatures,
    }
    return result, outputs


def _recipe_hash(recipe: str) -> str:
    text = json.dumps(recipe_dict(ROOT / recipe), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def copy_baseline(languages: list[str]) -> dict[str, dict[str, float]]:
    """Scores of "translations" that are the English sources themselves: what a model gets
    for copying names, placeholders and markup through (every placeholder is kept)."""
    from modelzoo.data.po_translations import reference_sets
    from modelzoo.translate import score_translations

    out = {}
    for lang in languages:
        sources, _ = reference_sets(f"en-{lang}", "test")
        out[lang] = score_translations(lang, "test", sources, sources).metrics()
    return out


def _load() -> tuple[dict[str, Any], dict[str, dict[str, list[str]]]]:
    data = json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() else {"runs": {}}
    outputs = json.loads(lzma.decompress(OUT_OUTPUTS.read_bytes())) if OUT_OUTPUTS.is_file() else {}
    return data, outputs


def finished_runs(runs: list[Run], run_root: Path) -> list[Run]:
    """The runs of ``runs`` whose directory under ``run_root`` holds a finished training run
    (``checkpoints/last.ckpt`` and ``timing.json``, written when training ends)."""
    done = []
    for run in runs:
        if is_finished(run_root / run.name):
            done.append(run)
        else:
            print(f"{run.name}: no finished run in {run_root / run.name}; skipped", flush=True)
    return done


def measure(runs: list[Run], run_root: Path) -> None:
    import sacrebleu
    import torch

    from modelzoo.data.po_translations import load_corpus
    from modelzoo.utils.io import atomic_write_text

    data, outputs = _load()
    for run in runs:
        print(f"measuring {run.name}", flush=True)
        data["runs"][run.name], outputs[run.name] = measure_run(run, run_root / run.name)
    languages = sorted({lang for r in data["runs"].values() for lang in r["languages"]})
    data.update(
        {
            "format": 1,
            "grid": [list(g) for g in GRID],
            "corpus_sha256": load_corpus()["meta"]["sha256"],
            "sacrebleu": sacrebleu.__version__,
            "machine": machine_line(torch.get_num_threads()),
            "copy_baseline": copy_baseline(languages),
        }
    )
    data["runs"] = {r.name: data["runs"][r.name] for r in RUNS if r.name in data["runs"]}
    write_published(OUT_JSON, OUT_OUTPUTS, data, outputs)
    for run in runs if _recipes_too() else []:
        set_took_line(ROOT / run.recipe, took_line(data["runs"][run.name]["timing"]))
    atomic_write_text(OUT_MD, render(*_load()))  # what --check will compare with
    print(f"wrote {OUT_MD}", flush=True)


def _set_out_dir(folder: Path) -> None:
    global OUT_JSON, OUT_MD, OUT_OUTPUTS
    OUT_JSON, OUT_MD, OUT_OUTPUTS = (folder / p.name for p in (OUT_JSON, OUT_MD, OUT_OUTPUTS))


def _recipes_too() -> bool:
    """Whether the recipes' "Took here" lines go with these results (the published ones)."""
    return OUT_JSON.parent.resolve() == BENCHMARKS.resolve()


# --- the results file ----------------------------------------------------------------------


def _kept(m: dict[str, float]) -> str:
    n = int(m["sentences_with_placeholders"])
    kept = round(m["placeholder_rate"] * n) if n else 0
    return f"{number(100 * m['placeholder_rate'])}% ({kept}/{n})"


def test_summary(run: dict[str, Any]) -> dict[str, float]:
    """A measured run's test figures over its languages (one for a bilingual model): mean
    BLEU and chrF, and the placeholders kept, pooled over the sources that have any."""
    tests = [run["test"][lang] for lang in run["languages"]]
    kept = sum(
        round(t["placeholder_rate"] * t["sentences_with_placeholders"])
        for t in tests
        if t["sentences_with_placeholders"]
    )
    with_p = sum(int(t["sentences_with_placeholders"]) for t in tests)
    return {
        "bleu": _mean([t["bleu"] for t in tests]),
        "chrf": _mean([t["chrf"] for t in tests]),
        "placeholders_kept": kept,
        "sentences_with_placeholders": with_p,
        "placeholder_rate": kept / with_p if with_p else 0.0,
    }


def copy_floor(data: dict[str, Any], run: dict[str, Any]) -> dict[str, float]:
    """Copying the English source as the translation: mean BLEU and chrF over the run's
    languages (the floor a model must beat)."""
    copy = data["copy_baseline"]
    return {k: _mean([copy[lang][k] for lang in run["languages"]]) for k in ("bleu", "chrf")}


def _pair_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in data["runs"].values():
        langs = r["languages"]
        summary = test_summary(r)
        kept, with_p = summary["placeholders_kept"], summary["sentences_with_placeholders"]
        val = max(
            v["bleu"]
            for v in r["val"]
            if v["beam"] == r["chosen"]["beam"]
            and v["length_penalty"] == r["chosen"]["length_penalty"]
        )
        pair = r["pair"] if r["pair"] != "en-multi" else f"en-multi ({len(langs)}), mean"
        rows.append(
            [
                pair,
                *run_cells(r),
                number(val),
                f"**{number(summary['bleu'])}**",
                number(summary["chrf"]),
                f"{number(100 * kept / with_p) if with_p else 'n/a'}% ({kept}/{with_p})",
            ]
        )
    return rows


def _verdicts(data: dict[str, Any]) -> list[str]:
    """Per pair, the Transformer-vs-LSTM verdict where both ran (and that it is not measured
    where one or both did not); per measured run, how it compares with copying the source."""
    lines = []
    runs = data["runs"]
    for pair in ("en-de", "en-fr", "en-es", "multi"):
        what = "en-multi (mean over its languages)" if pair == "multi" else pair
        t, lstm = runs.get(f"transformer-{pair}"), runs.get(f"lstm-{pair}")
        if not t or not lstm:
            ran = [label for label, r in (("Transformer", t), ("LSTM", lstm)) if r]
            lines.append(
                f"- {what}: Transformer vs LSTM **not measured yet** ("
                + (f"only the {ran[0]} ran to the end" if ran else "neither model ran")
                + "; see *Not run yet*)."
            )
            continue
        ts, ls = test_summary(t), test_summary(lstm)
        tb, lb, tc, lc = ts["bleu"], ls["bleu"], ts["chrf"], ls["chrf"]
        winner = "the Transformer" if tb > lb else "the LSTM"
        both = (tb > lb) == (tc > lc)
        agree = "chrF agrees" if both else "**chrF disagrees**"
        lines.append(
            f"- {what}: {winner} is ahead by {abs(tb - lb):.1f} BLEU "
            f"({number(tb)} vs {number(lb)}); {agree} ({number(tc)} vs {number(lc)})."
        )
    base = data.get("copy_baseline", {})
    for name, r in runs.items():
        langs = [x for x in r["languages"] if x in base]
        if not langs:
            continue
        rb = _mean([r["test"][x]["bleu"] for x in langs])
        rc = _mean([r["test"][x]["chrf"] for x in langs])
        cb = _mean([base[x]["bleu"] for x in langs])
        cc = _mean([base[x]["chrf"] for x in langs])
        bleu = "above" if rb > cb else "**below**"
        chrf = "above" if rc > cc else "**below**"
        lines.append(
            f"- {name} against copying the source: BLEU {bleu} it ({number(rb)} vs {number(cb)}), "
            f"chrF {chrf} it ({number(rc)} vs {number(cc)})"
            + (
                f"; a negative result on {'BLEU and chrF' if rc <= cc else 'BLEU'}: the English "
                "source itself matches the human translations better (names, placeholders and "
                "markup are shared)."
                if rb <= cb
                else "."
            )
        )
    return lines


def _not_run(data: dict[str, Any]) -> list[str]:
    """Every recipe of the protocol without a measured run, with the commands that make it."""
    missing = [r for r in RUNS if r.name not in data["runs"]]
    if not missing:
        return []
    lines = [
        "## Not run yet",
        "",
        "These recipes of the protocol have no finished, measured run (training them did not "
        "fit in the CPU time this machine had), so no figure of theirs is published and no "
        "comparison that needs them is made:",
        "",
    ]
    for r in missing:
        lines.append(
            f"- {r.name} ({r.label}, {r.pair}): `python scripts/translation_results.py train "
            f"{r.name}` then `python scripts/translation_results.py measure {r.name}` "
            f"(the recipe alone: `modelzoo train {r.recipe}`)"
        )
    lines.append("")
    return lines


def _language_rows(data: dict[str, Any]) -> list[list[str]]:
    runs = data["runs"]
    langs = sorted({x for r in runs.values() for x in r["languages"]})
    cols = ["transformer-multi", "lstm-multi"]
    rows = []
    for lang in langs:
        row = [lang]
        for family in ("transformer", "lstm"):
            bi = runs.get(f"{family}-en-{lang}")
            row.append(number(bi["test"][lang]["bleu"]) if bi else "-")
        for name in cols:
            m = runs.get(name)
            row.append(number(m["test"][lang]["bleu"]) if m and lang in m["test"] else "-")
        base = data["copy_baseline"].get(lang)
        row.append(number(base["bleu"]) if base else "-")
        rows.append(row)
    return rows


def _examples(
    data: dict[str, Any], outputs: dict[str, dict[str, list[str]]], lang: str, n: int = 8
) -> list[str]:
    """Test sources of ``lang`` with placeholders: half where every model kept them all, half
    where at least one did not (in corpus order), with the references and each model's output."""
    from collections import Counter

    from modelzoo.data.po_translations import reference_sets
    from modelzoo.metrics.translation import extract_placeholders

    names = [name for name, r in data["runs"].items() if lang in r["languages"]]
    if not names:
        return []
    sources, refs = reference_sets(f"en-{lang}", "test")
    good, bad = [], []
    for i, src in enumerate(sources):
        want = Counter(extract_placeholders(src))
        if not want:
            continue
        ok = all(Counter(extract_placeholders(outputs[name][lang][i])) == want for name in names)
        (good if ok else bad).append(i)
    chosen = good[: n // 2] + bad[: n - n // 2]
    lines = []
    for i in sorted(chosen):
        mark = "all kept" if i in good else "a placeholder lost or changed"
        lines.append(f"**{sources[i]}** ({mark})\n")
        ref = next(r[i] for r in refs if r[i] is not None)
        lines.append(f"- reference: {ref}")
        for name in names:
            lines.append(f"- {name}: {outputs[name][lang][i]}")
        lines.append("")
    return lines


def _protocol(config: dict[str, Any], round1: dict[str, Any]) -> str:
    """The training settings both models of a pair share, from a measured run's recipe, and
    what became of the first round of recipes."""
    data, task, train = config["data"], config["task"], config["train"]
    model = config["model"]
    text = (
        "**Protocol**: the Transformer and the LSTM of a pair train on the same data for the "
        f"same number of optimizer steps, with the same batch ({data['batch_size']}), "
        f"{train['optimizer']} at {train['lr']:g} with {train['warmup_steps']} warm-up steps and "
        f"a {train['scheduler']} decay, label smoothing {task['label_smoothing']}, dropout "
        f"{model['drop_rate']} and training pairs of at most {data['max_len']} tokens (the "
        "recipes under `configs/`). "
    )
    for name, r in round1.items():
        c, t = r["config"], r["test"]
        lang = r["languages"][0]
        text += (
            f"A first round of recipes (batches of {c['data']['batch_size']}, dropout "
            f"{c['model']['drop_rate']}, the same epochs) underfit: its training loss was still "
            "far above its validation loss's floor when the epochs ended, so the batch was "
            "halved (twice the updates for the same computation) and the dropout lowered for "
            f"every run. Its {name} run had already been scored on the test split once, so that "
            f"score is stated here: test BLEU {number(t[lang]['bleu'])}, "
            f"chrF {number(t[lang]['chrf'])}, "
            f"placeholders kept {_kept(t[lang])} after {r['timing']['steps']} steps "
            "(`round1` in translation.json). "
        )
    return text


def render(data: dict[str, Any], outputs: dict[str, dict[str, list[str]]]) -> str:
    """benchmarks/translation.md from the figures and the stored translations."""
    # The JSON file's keys are sorted; the tables follow RUNS.
    data = dict(data, runs={r.name: data["runs"][r.name] for r in RUNS if r.name in data["runs"]})
    runs = data["runs"]
    first = next(iter(runs.values()), None)
    # With nothing measured, the protocol is stated from the first recipe itself.
    config = first["config"] if first else recipe_dict(ROOT / RUNS[0].recipe)
    sig = first["signatures"][first["languages"][0]] if first else None
    lines = [
        "# Machine translation on real human translations",
        "",
        "Written by `python scripts/translation_results.py measure` and re-checked by "
        "`python scripts/translation_results.py --check` (tests/test_translation_results.py); "
        "every test translation is in `benchmarks/translation_outputs.json.xz`.",
        "",
        "**Data**: `po_translations`, English user-interface strings of Django, Sphinx, Wagtail "
        "and django-allauth with their volunteers' translations (BSD-3-Clause, BSD-2-Clause, "
        "BSD-3-Clause, MIT; licenses and NOTICE in `modelzoo/data/corpora/po/`), split by "
        f"English source string (corpus sha256 `{data['corpus_sha256'][:16]}…`). Strings are "
        "short (a median of 7 BPE tokens): menu items, messages, help texts.",
        "",
        _protocol(config, data.get("round1", {}))
        + "The final weights are measured: nothing picks a checkpoint. The decoding "
        "setting (greedy, or beam 4 with length penalty 0.6 or 1.0) is chosen per run by BLEU "
        "on the validation split, then the whole test split (long strings too) is translated "
        "once. BLEU and chrF are sacrebleu's corpus scores against all human references of a "
        "source; *placeholders kept* is the share of test sources with format placeholders "
        "(`%(count)d`, `%s`, `{0}`) whose translation holds exactly the same ones.",
        "",
        f"**Machine**: {data['machine']}; a machine shared with other jobs (its load average "
        "is in each run's timing), so *CPU min* (the process's CPU time: what an idle core "
        "takes) is the cost to compare, and *wall min here* what it took on this machine.",
        "",
        "## Transformer vs LSTM, same budget",
        "",
        f"{len(runs)} of the protocol's {len(RUNS)} runs finished and were measured; the "
        "others are listed under *Not run yet*.",
        "",
        table(
            [
                "pair",
                *RUN_COLUMNS,
                "val BLEU",
                "test BLEU",
                "test chrF",
                "placeholders kept (test)",
            ],
            _pair_rows(data),
        ),
        "",
        *_verdicts(data),
        "",
        *_not_run(data),
        "## Per language: bilingual vs multilingual models, and copying the source",
        "",
        "Test BLEU. *copy* scores the English source itself as the translation: names, "
        "placeholders and markup pass through unchanged, so it is the floor a model must beat.",
        "",
        table(
            [
                "language",
                "Transformer (bilingual)",
                "LSTM (bilingual)",
                "Transformer (multilingual)",
                "LSTM (multilingual)",
                "copy",
            ],
            _language_rows(data),
        ),
        "",
        "## Did training overfit?",
        "",
        "Validation loss (cross-entropy per target token, no label smoothing) at the end of "
        "training and its lowest value on the way; the final weights are the ones measured.",
        "",
        table(
            ["run", "final val loss", "lowest val loss (step)"],
            [
                [
                    name,
                    number(r["val_curve"]["final"], 3),
                    f"{number(r['val_curve']['best'], 3)} ({r['val_curve']['best_step']})",
                ]
                for name, r in runs.items()
            ],
        ),
        "",
        "## Decoding settings tried on the validation split (mean BLEU over the run's languages)",
        "",
        table(
            ["run", *[("greedy" if b == 1 else f"beam {b}, lp {lp}") for b, lp in data["grid"]]],
            [[name, *[number(v["bleu"], 2) for v in r["val"]]] for name, r in runs.items()],
        ),
        "",
        "## Examples (en-de test split, sources with placeholders)",
        "",
        *_examples(data, outputs, "de"),
    ]
    if sig:
        lines += [
            "## sacrebleu signatures",
            "",
            f"- BLEU: `{sig['bleu']}` (Chinese: `tok:zh`; Japanese, Korean, Thai: `tok:char`)",
            f"- chrF: `{sig['chrf']}`",
            "",
        ]
    return "\n".join(lines)


# --- checking ------------------------------------------------------------------------------


def check(decode: bool) -> int:
    """Re-score every stored translation, re-render the file and the recipe headers;
    with ``decode``, translate again with the shipped weights. Returns the number of
    problems (each printed)."""
    from modelzoo.data.po_translations import reference_sets
    from modelzoo.translate import score_translations

    data, outputs = _load()
    problems = []
    complete = True
    for name, r in data["runs"].items():
        run = next((x for x in RUNS if x.name == name), None)
        if run is None:
            problems.append(f"{name}: not a run of this script")
            continue
        incomplete = _incomplete(name, r, outputs)
        if incomplete:
            problems += incomplete
            complete = False
            continue
        if r["recipe_sha256"] != _recipe_hash(run.recipe):
            problems.append(f"{name}: {run.recipe} changed since it was measured; measure again")
        want = took_line(r["timing"])
        if _recipes_too() and want not in (ROOT / run.recipe).read_text():
            problems.append(f"{name}: {run.recipe} does not say '{want}'")
        for lang, claimed in r["test"].items():
            sources, _ = reference_sets(f"en-{lang}", "test")
            got = score_translations(lang, "test", sources, outputs[name][lang]).metrics()
            for key, value in claimed.items():
                if not math.isclose(value, got[key], rel_tol=TOL, abs_tol=TOL) and not (
                    math.isnan(value) and math.isnan(got[key])
                ):
                    problems.append(f"{name} {lang} {key}: published {value}, re-scored {got[key]}")
    for name, r in data.get("round1", {}).items():
        for lang, claimed in r["test"].items():
            sources, _ = reference_sets(f"en-{lang}", "test")
            got = score_translations(lang, "test", sources, outputs["round1"][name][lang])
            figures = got.metrics()
            for key, value in claimed.items():
                if not math.isclose(value, figures[key], rel_tol=TOL, abs_tol=TOL):
                    problems.append(
                        f"round 1 {name} {lang} {key}: published {value}, re-scored {figures[key]}"
                    )
    for lang, claimed in data["copy_baseline"].items():
        got = copy_baseline([lang])[lang]
        if any(
            not math.isclose(claimed[k], got[k], rel_tol=TOL, abs_tol=TOL) for k in ("bleu", "chrf")
        ):
            problems.append(f"copy baseline {lang}: published {claimed}, re-scored {got}")
    if not complete:
        problems.append(f"{OUT_MD} cannot be rendered from incomplete runs; measure them again")
    elif OUT_MD.read_text() != render(data, outputs):
        problems.append(f"{OUT_MD} is not what the figures render; run render")
    if decode and complete:
        problems += _check_shipped(data, outputs)
    for p in problems:
        print(f"MISMATCH {p}")
    print(f"checked {len(data['runs'])} runs: {len(problems)} problems", flush=True)
    return len(problems)


_RUN_KEYS = (
    "arch",
    "chosen",
    "config",
    "languages",
    "pair",
    "params",
    "recipe",
    "recipe_sha256",
    "signatures",
    "test",
    "timing",
    "val",
    "val_curve",
)


def _incomplete(name: str, r: dict[str, Any], outputs: dict[str, Any]) -> list[str]:
    """What a published run lacks to be a complete measurement of a finished run."""
    missing = [k for k in _RUN_KEYS if k not in r]
    if missing:
        return [f"{name}: incomplete, lacks {', '.join(missing)}"]
    problems = []
    langs = set(r["languages"])
    if not langs or set(r["test"]) != langs or set(r["signatures"]) != langs:
        problems.append(f"{name}: test scores and signatures are not for its languages {langs}")
    if set(outputs.get(name, {})) != langs:
        problems.append(f"{name}: the stored translations are not for its languages {langs}")
    if r["timing"].get("steps", 0) <= 0 or len(r["val"]) != len(GRID):
        problems.append(f"{name}: not a finished run (no steps, or not every decoding tried)")
    return problems


def _check_shipped(data: dict[str, Any], outputs: dict[str, Any]) -> list[str]:
    """Shipped weight sets trained by a run's recipe translate the test split as published."""
    from modelzoo.translate import evaluate_translation
    from modelzoo.weights import all_weight_sets

    problems = []
    checked = 0
    for ws in all_weight_sets():
        for name, r in data["runs"].items():
            if not isinstance(ws.recipe, dict) or recipe_dict(ROOT / r["recipe"]) != ws.recipe:
                continue
            checked += 1
            for lang in r["languages"]:
                scores = evaluate_translation(
                    ws.name,
                    lang,
                    "test",
                    beam_size=r["chosen"]["beam"],
                    length_penalty=r["chosen"]["length_penalty"],
                )
                if scores.outputs != outputs[name][lang]:
                    diff = sum(a != b for a, b in zip(scores.outputs, outputs[name][lang]))
                    problems.append(
                        f"{ws.name} translates {diff} {lang} test sources otherwise than {name}"
                    )
    if not checked:
        problems.append("no shipped weight set was trained by one of these recipes")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(
        __doc__.splitlines()[0], "runs (default: all)", ROOT / "runs" / "translation", BENCHMARKS
    )
    parser.add_argument("--decode", action="store_true", help="with --check: re-decode too")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # reproducible sums; far faster than more on a shared machine
    _set_out_dir(args.out_dir)
    if args.check:
        return 1 if check(args.decode) else 0
    if args.command == "train":
        for run in _select(args.names):
            timing = train_run(ROOT / run.recipe, args.run_root / run.name)
            print(f"{run.name}: {timing['steps']} steps, {timing['wall_s']:.0f} s", flush=True)
    elif args.command == "measure":
        # Named runs must have finished; without names, the finished ones are measured.
        runs = _select(args.names) if args.names else finished_runs(RUNS, args.run_root)
        measure(runs, args.run_root)
    elif args.command == "render":
        from modelzoo.utils.io import atomic_write_text

        atomic_write_text(OUT_MD, render(*_load()))
    else:
        parser.error("give a command (train, measure, render) or --check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
