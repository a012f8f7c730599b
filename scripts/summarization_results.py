"""Code summarization (a Python function -> its one-line summary): Transformer vs LSTM.

    python scripts/summarization_results.py train [NAME ...] --run-root DIR    # train both
    python scripts/summarization_results.py measure [NAME ...] --run-root DIR  # decode, score
    python scripts/summarization_results.py render                             # rewrite the .md
    python scripts/summarization_results.py --check   # re-score the published summaries

Protocol (what benchmarks/summarization.md states):

- Data: ``code_summaries``, the functions of this interpreter's standard library with a
  docstring of 3+ words (tests left out), the docstring removed from the input, its first
  sentence as the target; split **by package**, so every test function comes from a
  package never seen in training. The Python version is recorded: another version has
  other functions.
- Same budget: both models train for the same optimizer steps, batch, optimizer, schedule,
  label smoothing and dropout (the recipes). The final weights are measured.
- Selection on val only: the decoding setting (greedy, or beam 4 with length penalty 0.6 or
  1.0) is chosen per model by ROUGE-L on the validation split; the test split is decoded once.
- Scores: ROUGE-L F1 (Google's ``rouge-score``, stemmed), sacrebleu corpus BLEU and chrF
  (one reference: the docstring's sentence). A baseline that needs no model: the function's
  name split into words ("get_payload" -> "Get payload.").

``measure`` without names measures the runs of ``--run-root`` that finished
(``checkpoints/last.ckpt`` and ``timing.json``) and says which it skipped; with none finished
it still publishes the corpus facts and the name baseline. Only finished runs are published:
the results file lists each recipe without a measured run under "Not run yet", with its
command, and compares the two models only when both ran.

``--check`` re-scores every stored summary against the stored references and re-renders the
results file and the recipes' "Took here" lines; ``--check --corpus`` also rebuilds the test
split from this interpreter's standard library (when it is the corpus the figures were
measured on: same sha256) and requires the stored functions and references to be its own.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import re
import statistics
import sys
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

RUNS = {
    "transformer-code": "configs/transformer/transformer_summarize_code.yaml",
    "lstm-code": "configs/rnn/lstm_summarize_code.yaml",
}
BENCHMARKS = ROOT / "benchmarks"
OUT_JSON = BENCHMARKS / "summarization.json"
OUT_MD = BENCHMARKS / "summarization.md"
OUT_OUTPUTS = BENCHMARKS / "summarization_outputs.json.xz"
GRID = ((1, 1.0), (4, 0.6), (4, 1.0))  # (beam size, length penalty) tried on val
MAX_SUMMARY = 48  # tokens decoded per summary at most (the data's longest target)
TOL = 1e-9
N_EXAMPLES = 5  # best and worst examples shown


def _select(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"unknown runs {unknown}; known: {', '.join(RUNS)}")
    return [n for n in RUNS if not names or n in names]


def _data(recipe: str) -> Any:
    """The recipe's code_summaries bundle (built from this interpreter's stdlib)."""
    from modelzoo.data import build_data

    kwargs = dict(recipe_dict(ROOT / recipe)["data"])
    kwargs.pop("batch_size", None)
    return build_data(kwargs.pop("name"), **kwargs)


def name_baseline(qualname: str) -> str:
    """A summary without a model: the function's name as words, e.g. ``Get payload.``"""
    name = qualname.rsplit(".", 1)[-1].strip("_")
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").split()
    text = " ".join(words).lower() or name
    return text[:1].upper() + text[1:] + "."


def scores_of(outputs: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE-L F1 (mean), BLEU and chrF (corpus) of summaries against their references."""
    from modelzoo.metrics.translation import sacrebleu_scores
    from modelzoo.summarize import rouge_l

    rouge = rouge_l(outputs, references)
    corpus = sacrebleu_scores(outputs, references)
    return {
        "rouge_l": float(statistics.fmean(rouge)),
        "bleu": corpus.bleu,
        "chrf": corpus.chrf,
        "exact": float(statistics.fmean(o == r for o, r in zip(outputs, references))),
        "functions": float(len(outputs)),
    }


def _summaries(model: Any, sources: list[str], beam: int, penalty: float) -> list[str]:
    from modelzoo.summarize import summarize

    return summarize(model, sources, beam_size=beam, length_penalty=penalty, max_len=MAX_SUMMARY)


def measure_run(name: str, run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    from modelzoo.summarize import rouge_l

    recipe = RUNS[name]
    data = _data(recipe)
    model = final_model(run_dir)
    val_src = [s for s, _ in data.val.texts]
    val_ref = [t for _, t in data.val.texts]
    val = []
    for beam, penalty in GRID:
        out = _summaries(model, val_src, beam, penalty)
        val.append(
            {
                "beam": beam,
                "length_penalty": penalty,
                "rouge_l": float(statistics.fmean(rouge_l(out, val_ref))),
            }
        )
        print(f"  {name} val beam {beam} lp {penalty}: ROUGE-L {val[-1]['rouge_l']:.4f}")
    chosen = max(val, key=lambda v: (round(v["rouge_l"], 9), -v["beam"], -v["length_penalty"]))
    test_src = [s for s, _ in data.test.texts]
    test_ref = [t for _, t in data.test.texts]
    outputs = _summaries(model, test_src, chosen["beam"], chosen["length_penalty"])
    result = {
        "name": name,
        "family": "transformer" if name.startswith("transformer") else "lstm",
        "recipe": recipe,
        "recipe_sha256": _recipe_hash(recipe),
        "config": recipe_dict(ROOT / recipe),
        "params": sum(p.numel() for p in model.parameters()),
        "timing": read_timing(run_dir),
        "val_curve": val_curve(run_dir),
        "val": val,
        "chosen": {"beam": chosen["beam"], "length_penalty": chosen["length_penalty"]},
        "test": scores_of(outputs, test_ref),
    }
    return result, outputs


def _recipe_hash(recipe: str) -> str:
    text = json.dumps(recipe_dict(ROOT / recipe), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _corpus_facts(data: Any) -> dict[str, Any]:
    info = data.info
    return {
        "python_version": info["python_version"],
        "corpus_sha256": info["corpus_sha256"],
        "sizes": info["sizes"],
        "groups": info["groups"],
        "test_packages": info["test_groups"],
    }


def _test_items(data: Any) -> list[dict[str, str]]:
    """What the results file needs of each test function: its name, ``def`` line and
    reference summary (stored with the outputs, so re-checking needs no corpus)."""
    return [
        {"key": f"{e.module}:{e.qualname}", "def": _signature(e.source), "reference": e.summary}
        for e in data.test.examples
    ]


def _load() -> tuple[dict[str, Any], dict[str, Any]]:
    """The published figures, and the stored outputs: ``{"test": [items], "runs": {name:
    [summaries]}}``."""
    data = json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() else {"runs": {}}
    outputs = (
        json.loads(lzma.decompress(OUT_OUTPUTS.read_bytes()))
        if OUT_OUTPUTS.is_file()
        else {"test": [], "runs": {}}
    )
    return data, outputs


def finished_runs(names: list[str], run_root: Path) -> list[str]:
    """The runs of ``names`` whose directory under ``run_root`` holds a finished run."""
    done = []
    for name in names:
        if is_finished(run_root / name):
            done.append(name)
        else:
            print(f"{name}: no finished run in {run_root / name}; skipped", flush=True)
    return done


def measure(names: list[str], run_root: Path) -> None:
    import rouge_score  # noqa: F401  (its version is not exposed; sacrebleu's is)
    import sacrebleu
    import torch

    from modelzoo.utils.io import atomic_write_text

    published, outputs = _load()
    for name in names:
        print(f"measuring {name}", flush=True)
        published["runs"][name], outputs["runs"][name] = measure_run(name, run_root / name)
    data = _data(next(iter(RUNS.values())))
    corpus = _corpus_facts(data)
    outputs["test"] = _test_items(data)
    refs = [t for _, t in data.test.texts]
    baseline = [name_baseline(e.qualname) for e in data.test.examples]
    published.update(
        {
            "format": 1,
            "grid": [list(g) for g in GRID],
            "corpus": corpus,
            "sacrebleu": sacrebleu.__version__,
            "machine": machine_line(torch.get_num_threads()),
            "name_baseline": scores_of(baseline, refs),
        }
    )
    published["runs"] = {n: published["runs"][n] for n in RUNS if n in published["runs"]}
    write_published(OUT_JSON, OUT_OUTPUTS, published, outputs)
    for name in names if _recipes_too() else []:
        set_took_line(ROOT / RUNS[name], took_line(published["runs"][name]["timing"]))
    atomic_write_text(OUT_MD, render(*_load()))  # what --check will compare with
    print(f"wrote {OUT_MD}", flush=True)


def _set_out_dir(folder: Path) -> None:
    global OUT_JSON, OUT_MD, OUT_OUTPUTS
    OUT_JSON, OUT_MD, OUT_OUTPUTS = (folder / p.name for p in (OUT_JSON, OUT_MD, OUT_OUTPUTS))


def _recipes_too() -> bool:
    """Whether the recipes' "Took here" lines go with these results (the published ones)."""
    return OUT_JSON.parent.resolve() == BENCHMARKS.resolve()


# --- the results file ----------------------------------------------------------------------


def _signature(source: str) -> str:
    """The function's first line (its ``def``), for the examples."""
    for line in source.splitlines():
        if line.lstrip().startswith(("def ", "async def ")):
            return line.strip()
    return source.splitlines()[0].strip()


def _examples(outputs: dict[str, Any]) -> list[str]:
    from modelzoo.summarize import rouge_l

    runs = {n: outputs["runs"][n] for n in RUNS if n in outputs["runs"]}
    if "transformer-code" not in runs:
        return []
    items = outputs["test"]
    refs = [item["reference"] for item in items]
    rouge = rouge_l(runs["transformer-code"], refs)
    order = sorted(range(len(refs)), key=lambda i: (-rouge[i], i))
    lines = []
    for title, picked in (
        ("Best of the Transformer (highest ROUGE-L)", order[:N_EXAMPLES]),
        ("Worst of the Transformer (lowest ROUGE-L)", order[::-1][:N_EXAMPLES]),
    ):
        lines += [f"### {title}", ""]
        for i in picked:
            item = items[i]
            lines.append(f"**`{item['key']}`**: `{item['def']}`\n")
            lines.append(f"- docstring: {refs[i]}")
            for name, outs in runs.items():
                lines.append(f"- {name}: {outs[i]}")
            lines.append(f"- name baseline: {name_baseline(item['key'].split(':', 1)[1])}")
            lines.append("")
    return lines


def _protocol(config: dict[str, Any]) -> str:
    data, task, train, model = config["data"], config["task"], config["train"], config["model"]
    return (
        "**Protocol**: both models train for the same optimizer steps with the same batch "
        f"({data['batch_size']}), {train['optimizer']} at {train['lr']:g} with "
        f"{train['warmup_steps']} warm-up steps and a {train['scheduler']} decay, label "
        f"smoothing {task['label_smoothing']} and dropout {model['drop_rate']} (the recipes). "
    )


def _run_sections(
    published: dict[str, Any], runs: dict[str, Any], outputs: dict[str, Any]
) -> list[str]:
    """The sections about measured runs: decoding tried on val, overfitting, examples."""
    return [
        "## Decoding settings tried on the validation split (ROUGE-L)",
        "",
        table(
            [
                "run",
                *[("greedy" if b == 1 else f"beam {b}, lp {lp}") for b, lp in published["grid"]],
            ],
            [[n, *[number(v["rouge_l"], 3) for v in r["val"]]] for n, r in runs.items()],
        ),
        "",
        "## Did training overfit?",
        "",
        table(
            ["run", "final val loss", "lowest val loss (step)"],
            [
                [
                    n,
                    number(r["val_curve"]["final"], 3),
                    f"{number(r['val_curve']['best'], 3)} ({r['val_curve']['best_step']})",
                ]
                for n, r in runs.items()
            ],
        ),
        "",
        "## Examples (test split)",
        "",
        *_examples(outputs),
    ]


def render(published: dict[str, Any], outputs: dict[str, Any]) -> str:
    """benchmarks/summarization.md from the figures and the stored summaries."""
    # The JSON file's keys are sorted; the tables follow RUNS.
    runs = {n: published["runs"][n] for n in RUNS if n in published["runs"]}
    corpus = published["corpus"]
    base = published["name_baseline"]
    rows = []
    for r in runs.values():
        chosen = (r["chosen"]["beam"], r["chosen"]["length_penalty"])
        val = next(v["rouge_l"] for v in r["val"] if (v["beam"], v["length_penalty"]) == chosen)
        rows.append(
            [
                *run_cells(r),
                number(val, 3),
                f"**{number(r['test']['rouge_l'], 3)}**",
                number(r["test"]["bleu"]),
                number(r["test"]["chrf"]),
                f"{number(100 * r['test']['exact'])}%",
            ]
        )
    rows.append(
        [
            "name baseline (no model)",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            f"{number(base['rouge_l'], 3)}",
            number(base["bleu"]),
            number(base["chrf"]),
            f"{number(100 * base['exact'])}%",
        ]
    )
    verdict = []
    t, lstm = runs.get("transformer-code"), runs.get("lstm-code")
    if not (t and lstm):
        ran = [label for label, r in (("Transformer", t), ("LSTM", lstm)) if r]
        verdict.append(
            "- Transformer vs LSTM: **not measured yet** ("
            + (f"only the {ran[0]} ran to the end" if ran else "neither model ran")
            + "; see *Not run yet*). The only published scores are those above."
        )
    else:
        tr, lr = t["test"]["rouge_l"], lstm["test"]["rouge_l"]
        winner = "the Transformer" if tr > lr else "the LSTM"
        verdict.append(
            f"- {winner} is ahead on test ROUGE-L by {abs(tr - lr):.3f} ({tr:.3f} vs {lr:.3f}); "
            f"BLEU {number(t['test']['bleu'])} vs {number(lstm['test']['bleu'])}."
        )
        best = max(tr, lr)
        gap = best - base["rouge_l"]
        if gap > 0:
            verdict.append(
                f"- The better model is {gap:.4f} ROUGE-L above the name baseline "
                f"({best:.4f} vs {base['rouge_l']:.4f})"
                + (
                    ": most of what it gets right, the function's name already says."
                    if gap < 0.1
                    else "."
                )
            )
        else:
            above = [
                label
                for metric, label in (("bleu", "BLEU"), ("chrf", "chrF"))
                if min(t["test"][metric], lstm["test"][metric]) > base[metric]
            ]
            verdict.append(
                "- **A negative result**: neither model beats the name baseline on test "
                f"ROUGE-L (the better one {best:.4f}, the baseline {base['rouge_l']:.4f})"
                + (f"; both are above it on {' and '.join(above)}" if above else "")
                + f". With {corpus['sizes']['train']} training functions, what the models get "
                "right the function's name mostly already says."
            )
    lines = [
        "# Code summarization: a Python function -> its one-line summary",
        "",
        "Written by `python scripts/summarization_results.py measure` and re-checked by "
        "`python scripts/summarization_results.py --check` "
        "(tests/test_summarization.py); every test summary is in "
        "`benchmarks/summarization_outputs.json.xz`.",
        "",
        f"**Data**: `code_summaries` from the standard library of Python "
        f"{corpus['python_version']} (corpus sha256 `{corpus['corpus_sha256'][:16]}…`): "
        f"{corpus['sizes']['train']} training, {corpus['sizes']['val']} validation and "
        f"{corpus['sizes']['test']} test functions, split **by package** "
        f"({corpus['groups']['train']} / {corpus['groups']['val']} / "
        f"{corpus['groups']['test']} packages), so the test functions come from packages never "
        "seen in training. Input: the function's source without its docstring, cut to 128 "
        "BPE tokens; target: the docstring's first sentence.",
        "",
        _protocol(
            next(iter(runs.values()))["config"] if runs else recipe_dict(ROOT / RUNS["lstm-code"])
        )
        + "The final weights are measured. The decoding setting is chosen per "
        "model by ROUGE-L on the validation split, and the test split is decoded once. ROUGE-L is "
        "the mean F1 of Google's `rouge-score` (stemmed); BLEU and chrF are sacrebleu's corpus "
        "scores with the docstring sentence as the one reference.",
        "",
        f"**Machine**: {published['machine']}; shared with other jobs, so *CPU min* is the cost "
        "to compare and *wall min here* what it took on this machine.",
        "",
        table(
            [
                *RUN_COLUMNS,
                "val ROUGE-L",
                "test ROUGE-L",
                "test BLEU",
                "test chrF",
                "exact",
            ],
            rows,
        ),
        "",
        f"{len(runs)} of the protocol's {len(RUNS)} runs finished and were measured.",
        "",
        *verdict,
        "",
        *_not_run(runs),
        *(_run_sections(published, runs, outputs) if runs else []),
        f"Test packages: {', '.join(corpus['test_packages'])}.",
        "",
    ]
    return "\n".join(lines)


def _not_run(runs: dict[str, Any]) -> list[str]:
    """Each recipe without a measured run, with the commands that make it."""
    missing = [n for n in RUNS if n not in runs]
    if not missing:
        return []
    lines = [
        "## Not run yet",
        "",
        "These recipes have no finished, measured run (training them did not fit in the CPU "
        "time this machine had), so no figure of theirs is published:",
        "",
    ]
    for name in missing:
        lines.append(
            f"- {name}: `python scripts/summarization_results.py train {name}` then "
            f"`python scripts/summarization_results.py measure {name}` (the recipe alone: "
            f"`modelzoo train {RUNS[name]}`)"
        )
    return [*lines, ""]


# --- checking ------------------------------------------------------------------------------


_RUN_KEYS = ("chosen", "config", "params", "recipe_sha256", "test", "timing", "val", "val_curve")


def check(corpus: bool) -> int:
    """Re-score every stored summary against the stored references, re-render the file and
    the recipes' "Took here" lines; with ``corpus``, also rebuild the test split from this
    interpreter's standard library and require the stored references to be its own."""
    published, outputs = _load()
    problems = []
    items = outputs["test"]
    refs = [item["reference"] for item in items]
    for name, r in published["runs"].items():
        if name not in RUNS:
            problems.append(f"{name}: not a run of this script")
            continue
        missing = [k for k in _RUN_KEYS if k not in r]
        if missing or len(outputs["runs"].get(name, [])) != len(items):
            problems.append(f"{name}: incomplete, lacks {', '.join(missing) or 'its summaries'}")
            continue
        if r["recipe_sha256"] != _recipe_hash(RUNS[name]):
            problems.append(f"{name}: {RUNS[name]} changed since it was measured; measure again")
        want = took_line(r["timing"])
        if _recipes_too() and want not in (ROOT / RUNS[name]).read_text():
            problems.append(f"{name}: {RUNS[name]} does not say '{want}'")
        got = scores_of(outputs["runs"][name], refs)
        for key, value in r["test"].items():
            if not math.isclose(value, got[key], rel_tol=TOL, abs_tol=TOL):
                problems.append(f"{name} {key}: published {value}, re-scored {got[key]}")
    baseline = scores_of([name_baseline(i["key"].split(":", 1)[1]) for i in items], refs)
    for key, value in published["name_baseline"].items():
        if not math.isclose(value, baseline[key], rel_tol=TOL, abs_tol=TOL):
            problems.append(f"name baseline {key}: published {value}, re-scored {baseline[key]}")
    if any(p.endswith(("of this script",)) or ": incomplete, lacks" in p for p in problems):
        problems.append(f"{OUT_MD} cannot be rendered from incomplete runs; measure them again")
    elif OUT_MD.read_text() != render(published, outputs):
        problems.append(f"{OUT_MD} is not what the figures render; run render")
    if corpus:
        data = _data(next(iter(RUNS.values())))
        facts = _corpus_facts(data)
        if facts["corpus_sha256"] != published["corpus"]["corpus_sha256"]:
            print(
                f"SKIP the standard library of this Python ({facts['python_version']}) is not "
                f"the corpus the figures were measured on (Python "
                f"{published['corpus']['python_version']}): its test split is not re-checked"
            )
        elif _test_items(data) != items:
            problems.append("the stored test functions and references are not the corpus's")
    for p in problems:
        print(f"MISMATCH {p}")
    print(f"checked {len(published['runs'])} runs: {len(problems)} problems", flush=True)
    return len(problems)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(
        __doc__.splitlines()[0], "runs (default: both)", ROOT / "runs" / "summarization", BENCHMARKS
    )
    parser.add_argument(
        "--corpus",
        action="store_true",
        help="with --check: also rebuild the test split from this Python's standard library",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # reproducible sums; far faster than more on a shared machine
    _set_out_dir(args.out_dir)
    if args.check:
        return 1 if check(args.corpus) else 0
    if args.command == "train":
        for name in _select(args.names):
            timing = train_run(ROOT / RUNS[name], args.run_root / name)
            print(f"{name}: {timing['steps']} steps, {timing['wall_s']:.0f} s", flush=True)
    elif args.command == "measure":
        # Named runs must have finished; without names, the finished ones are measured.
        names = _select(args.names) if args.names else finished_runs(list(RUNS), args.run_root)
        measure(names, args.run_root)
    elif args.command == "render":
        from modelzoo.utils.io import atomic_write_text

        atomic_write_text(OUT_MD, render(*_load()))
    else:
        parser.error("give a command (train, measure, render) or --check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
