"""The shipped weight sets: each card's claims hold, and its metrics are re-measured here.

File size and sha256 are checked for every shipped file in tests/weights/test_cards.py;
this file checks what the training script claims: the table and the manifest agree,
the recipe on the card is the YAML in configs/zoo/, ``create("arch.tag")`` loads every
tensor, the parameter count is right, and the metrics come out again, to 1e-4
relative, when the weights are evaluated the way scripts/train_zoo_weights.py
measured them (the same function, the project's trainer, the CPU).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import platform
from pathlib import Path

import pytest
import torch
from script_helpers import load_script

import modelzoo
from modelzoo.config import load_recipe, recipe_from_dict
from modelzoo.data import build_data
from modelzoo.data.registry import dataset_kwargs
from modelzoo.data.text import STDLIB_SNAPSHOT_DIR, read_stdlib_text
from modelzoo.errors import ConfigError
from modelzoo.weights import load_manifest, shipped_dir

ROOT = Path(__file__).resolve().parents[1]


zoo = load_script("train_zoo_weights")
ENTRIES = {e.name: e for e in zoo.ZOO}
# Weight sets shipped by the applications' result scripts, each re-checked by that script's
# --check mode and its own tests; their cards name the script.
OTHER_MAKERS = {
    "scripts/rl_applications.py": "tests/train/test_play.py",
    "scripts/speech_results.py": "tests/test_speech_app.py",
    "scripts/translation_results.py": "tests/test_translation_results.py",
}
SHIPPED = [ws for ws in load_manifest() if ws.name in ENTRIES]
IDS = [ws.name for ws in SHIPPED]
REL_TOL = 1e-4


def test_the_table_and_the_manifest_agree():
    shipped = {ws.name for ws in SHIPPED}
    missing = sorted(set(ENTRIES) - shipped)
    assert not missing, f"run `python scripts/train_zoo_weights.py {' '.join(missing)}`"
    made_elsewhere = {
        ws.name for ws in load_manifest() if any(maker in ws.description for maker in OTHER_MAKERS)
    }
    unknown = sorted({ws.name for ws in load_manifest()} - set(ENTRIES) - made_elsewhere)
    assert not unknown, f"{unknown} are in weights/manifest.json but not in ZOO: who made them?"
    for maker, test in OTHER_MAKERS.items():
        assert (ROOT / maker).is_file() and (ROOT / test).is_file(), (maker, test)
    for ws in SHIPPED:
        assert [f.name for f in ws.files] == [f"{ws.name}.safetensors"]
        assert ws.license and ws.description
    # The wheel carries weights/: 80 MB keeps it well under PyPI's 100 MB file limit (the
    # translators and the Atari/CarRacing CNNs are the large ones, 7-16 MB each).
    total = sum(f.stat().st_size for f in shipped_dir().glob("*.safetensors"))
    assert total < 80e6, f"weights/ holds {total / 1e6:.1f} MB; keep the shipped files small"


@pytest.mark.parametrize("ws", SHIPPED, ids=IDS)
def test_card_recipe_is_the_shipped_yaml(ws):
    entry = ENTRIES[ws.name]
    recipe = load_recipe(ROOT / entry.recipe, ["train.progress=false"])
    # Both read through today's schema: train options added since the card was written take
    # their defaults, which train as before (no layer decay, no milestones, ...).
    assert recipe_from_dict(ws.recipe).to_dict() == recipe.to_dict(), (
        f"{entry.recipe} changed since {ws.name} was trained; retrain it with "
        f"`python scripts/train_zoo_weights.py {ws.name}`"
    )
    assert (ROOT / entry.recipe).read_text().startswith(f"# modelzoo train {entry.recipe}\n")


@pytest.mark.parametrize("ws", SHIPPED, ids=IDS)
def test_num_params_and_model_kwargs(ws):
    with torch.device("meta"):
        model = modelzoo.create(ws.arch, **ws.model_kwargs)
    assert sum(p.numel() for p in model.parameters()) == ws.num_params
    defaults = modelzoo.model_card(ws.arch).defaults
    if all(defaults.get(k, object()) == v for k, v in ws.model_kwargs.items()):
        assert modelzoo.model_card(ws.arch).num_params == ws.num_params


@pytest.mark.parametrize("ws", SHIPPED, ids=IDS)
def test_create_loads_every_tensor(ws):
    model = modelzoo.create(ws.name)
    report = model.load_report
    assert report.exact, str(report)
    assert set(report.loaded) == set(model.state_dict()), str(report)
    assert report.source == ws.name
    spec = ws.input_spec
    data = ws.recipe["data"]
    if "img_size" in spec:
        # Digits are 8x8 and generated shapes 64x64 unless the recipe resizes them.
        native = {"shapes_detection": 64, "shapes_segmentation": 64}.get(data["name"], 8)
        assert spec["img_size"] == data.get("img_size", native)
        assert spec["flatten"] == data.get("flatten", False)


def _close(claimed: float, measured: float) -> bool:
    return math.isclose(claimed, measured, rel_tol=REL_TOL, abs_tol=1e-7)


def _translation_languages(ws) -> list[str]:
    """The target languages a shipped translator's card states metrics for."""
    prefix = "po_translations en-"
    return [k[len(prefix) :].split("/", 1)[0] for k in ws.metrics if k.startswith(prefix)]


# A multilingual translator decodes the test split of each of its languages with beam search
# (about 40 s for six): the default suite re-measures its first language
# (test_a_multilingual_translator_measures_again_on_one_language), -m slow all of them.
REMEASURED = [
    pytest.param(ws, marks=pytest.mark.slow) if len(_translation_languages(ws)) > 1 else ws
    for ws in SHIPPED
]


@pytest.mark.parametrize("ws", REMEASURED, ids=IDS)
def test_metrics_are_measured_again(ws, one_thread):
    spec = ws.input_spec
    if "corpus_sha256" in spec:
        # The text corpus is the frozen snapshot on every Python, so the card's text is
        # this one and its metrics must come out again on 3.10 to 3.13 alike.
        name = ws.recipe["data"]["name"]
        data = {k: v for k, v in ws.recipe["data"].items() if k in dataset_kwargs(name)}
        info = build_data(name, **data).info
        assert info["corpus_sha256"] == spec["corpus_sha256"], (
            f"{ws.name} was measured on another text than the corpus snapshot gives; retrain it "
            f"with `python scripts/train_zoo_weights.py {ws.name}`"
        )
    measured = zoo.measure(ENTRIES[ws.name], ws.recipe, ws)
    assert measured.keys() == ws.metrics.keys()
    for dataset, claimed in ws.metrics.items():
        assert measured[dataset].keys() == claimed.keys(), dataset
        for metric, value in claimed.items():
            got = measured[dataset][metric]
            assert _close(value, got), f"{ws.name} {dataset} {metric}: card {value}, measured {got}"


MULTILINGUAL = [ws for ws in SHIPPED if len(_translation_languages(ws)) > 1]


@pytest.mark.parametrize("ws", MULTILINGUAL, ids=[ws.name for ws in MULTILINGUAL])
def test_a_multilingual_translator_measures_again_on_one_language(ws, one_thread):
    from modelzoo.translate import evaluate_translation

    lang = _translation_languages(ws)[0]
    (key,) = [k for k in ws.metrics if k.startswith(f"po_translations en-{lang}/test")]
    # The card's key names the decoding it was measured with: "... (all references, beam 4,
    # lp 1.0)".
    decoding = key.rsplit("(", 1)[1].rstrip(")").split(", ")
    beam = int(next(d for d in decoding if d.startswith("beam ")).split()[1])
    penalty = float(next(d for d in decoding if d.startswith("lp ")).split()[1])
    scores = evaluate_translation(ws.name, lang, "test", beam_size=beam, length_penalty=penalty)
    measured = scores.metrics()
    for metric, value in ws.metrics[key].items():
        assert _close(value, measured[metric]), f"{ws.name} {key} {metric}: card {value}"


POLICIES = [ws for ws in SHIPPED if ws.recipe["task"]["name"] in ("ppo", "a2c", "dqn")]


@pytest.mark.parametrize("ws", POLICIES, ids=[ws.name for ws in POLICIES])
def test_shipped_policy_plays_as_its_card_says(ws, one_thread):
    """``create("arch.tag")`` alone gives the card's return: a deterministic policy on seeded
    episodes plays them the same way every time, so the mean return matches exactly."""
    from modelzoo.train.rl.evaluation import evaluate_policy

    task, data = ws.recipe["task"], ws.recipe["data"]
    model = modelzoo.create(ws.name).eval()
    result = evaluate_policy(model, data["env_id"], task["eval_episodes"], task["eval_seed"])
    (claimed,) = ws.metrics.values()
    assert result["episodes"] == task["eval_episodes"]
    assert result["mean_return"] == claimed["mean_return"]
    assert result["std_return"] == pytest.approx(claimed["std_return"], abs=1e-9)
    if data["env_id"] == "CartPole-v1":
        # gymnasium's reward_threshold for CartPole-v1: the policy solves the task.
        assert claimed["mean_return"] >= 475.0


# --- the frozen text corpus the language-model cards were measured on ---------------------


def test_stdlib_snapshot_is_the_standard_library_it_names():
    """The snapshot is CPython's own Lib/ text: on the Python it was taken from, reading the
    live standard library gives the same characters (elsewhere the live text differs, which
    is why the snapshot exists)."""
    meta = json.loads((STDLIB_SNAPSHOT_DIR / "corpus.json").read_text())
    text = read_stdlib_text(meta["num_chars"])
    assert len(text) == meta["num_chars"]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == meta["sha256_text"]
    assert sum(n for _, n in meta["files"]) == meta["num_chars"]
    assert text.startswith('"""Record of phased-in incompatible language changes.')  # __future__
    if platform.python_version() == meta["python"]:
        assert read_stdlib_text(meta["num_chars"], corpus="live") == text
    for name in ("LICENSE.python", "NOTICE"):
        assert (STDLIB_SNAPSHOT_DIR / name).stat().st_size > 500
    assert "PSF-2.0" in (STDLIB_SNAPSHOT_DIR / "NOTICE").read_text()
    license_text = (STDLIB_SNAPSHOT_DIR / "LICENSE.python").read_text()
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in license_text


def test_stdlib_snapshot_is_checked_on_load(tmp_path, monkeypatch):
    source = STDLIB_SNAPSHOT_DIR / "stdlib.txt.xz"
    text = lzma.decompress(source.read_bytes()).decode("utf-8")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "stdlib.txt.xz").write_bytes(lzma.compress(("x" + text[1:]).encode("utf-8")))
    monkeypatch.setattr("modelzoo.data.text.STDLIB_SNAPSHOT_DIR", damaged)
    with pytest.raises(ConfigError, match="sha256 .* not the pinned"):
        read_stdlib_text(1000)
    monkeypatch.setattr("modelzoo.data.text.STDLIB_SNAPSHOT_DIR", tmp_path / "missing")
    with pytest.raises(ConfigError, match="missing; reinstall modelzoo, or pass corpus='live'"):
        read_stdlib_text(1000)


def test_stdlib_corpus_options():
    with pytest.raises(ConfigError, match="holds 1,500,000 characters"):
        read_stdlib_text(1_500_001)
    with pytest.raises(ConfigError, match="corpus must be 'snapshot'"):
        build_data("stdlib_chars", max_chars=10_000, corpus="nightly")
    bundle = build_data("stdlib_chars", max_chars=10_000, seq_len=16)
    assert bundle.info["num_chars"] == 10_000
    assert (
        bundle.info["corpus_sha256"]
        == hashlib.sha256(read_stdlib_text(10_000).encode("utf-8")).hexdigest()
    )
