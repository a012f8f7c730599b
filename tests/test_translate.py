"""Translation and summarization: the seq2seq task's text metrics, length-penalised beam
search, ``mz.translate`` from a model, a weights file and a run directory, and the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import modelzoo as mz
from modelzoo.cli import build_parser
from modelzoo.data.tokenizers import SubwordTokenizer
from modelzoo.errors import ConfigError, InputShapeError, WeightsError
from modelzoo.metrics.translation import placeholder_report, sacrebleu_scores
from modelzoo.summarize import rouge_l, summarize
from modelzoo.train.tasks.seq2seq import Seq2SeqTask
from modelzoo.translate import (
    METADATA_KEY,
    TextSpec,
    load_text_model,
    read_text_spec,
    save_text_weights,
    translate,
)
from modelzoo.weights import save_weights

SOURCES = [
    "Save and continue editing",
    "Delete %(count)d items",
    "Add another %(name)s",
    "Change password",
    "The file {0} was saved.",
    "Log out",
]
TARGETS = [
    "Sichern und weiter bearbeiten",
    "%(count)d Einträge löschen",
    "%(name)s hinzufügen",
    "Passwort ändern",
    "Die Datei {0} wurde gesichert.",
    "Abmelden",
]
TAGS = ["<2de>", "<2fr>"]


@pytest.fixture(scope="module")
def tokenizer() -> SubwordTokenizer:
    return SubwordTokenizer.train(SOURCES + TARGETS, vocab_size=400, special_tokens=TAGS)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "home"))


def _pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows])


# --- the task --------------------------------------------------------------------------------


class _Scripted(nn.Module):
    """Returns fixed outputs; records the max_len it was asked for."""

    def __init__(self, outputs: list[torch.Tensor], vocab: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.outputs, self.vocab, self.asked = list(outputs), vocab, []

    def forward(self, src, tgt_in, src_lengths=None):
        return torch.zeros(*tgt_in.shape, self.vocab) + self.weight

    def generate(self, src, max_len, beam_size=1, src_lengths=None):
        self.asked.append((max_len, beam_size))
        return self.outputs.pop(0)


def test_text_metrics_score_the_decoded_text_of_the_whole_evaluation(tokenizer) -> None:
    tok = tokenizer
    outputs = [  # what the "model" writes: right, a dropped placeholder, a near miss, ...
        "Sichern und weiter bearbeiten",
        "Einträge löschen",
        "%(name)s hinzufügen",
        "Passwort wechseln",
        "Die Datei {0} wurde gesichert.",
        "Abmelden bitte",
    ]
    src = [_pad([tok.encode(s) + [2] for s in SOURCES[i : i + 3]]) for i in (0, 3)]
    tgt = [
        _pad([tok.encode(t, add_bos=True, add_eos=True) for t in TARGETS[i : i + 3]])
        for i in (0, 3)
    ]
    out = [_pad([tok.encode(o) + [2] for o in outputs[i : i + 3]]) for i in (0, 3)]
    model = _Scripted(out, tok.vocab_size)
    task = Seq2SeqTask(
        model, tokenizer=tok, text_metrics=["bleu", "chrf", "placeholders", "rouge_l"]
    )
    assert task.monitor == "chrf" and task.monitor_mode == "max"
    totals: dict = {}
    for s, t in zip(src, tgt):
        for key, (value, count) in task.validation_step((s, t)).items():
            a, b = totals.get(key, (0.0, 0))
            totals[key] = (a + value, b + count)
    metrics = task.compute_metrics(totals)
    # Corpus scores of all six sentences, not means of the two batches' scores.
    expected = sacrebleu_scores(outputs, TARGETS)
    assert metrics["bleu"] == pytest.approx(expected.bleu)
    assert metrics["chrf"] == pytest.approx(expected.chrf)
    assert 0 < metrics["bleu"] < 100
    report = placeholder_report(SOURCES, outputs)
    assert (report.sentences, report.preserved) == (3, 2)
    assert metrics["placeholder_rate"] == pytest.approx(2 / 3)
    assert metrics["rouge_l"] == pytest.approx(sum(rouge_l(outputs, TARGETS)) / 6)
    assert "bleu" in task.last_signatures["bleu"].lower() or "nrefs" in task.last_signatures["bleu"]
    # The decoding length depends on the source only (2 * S + 10), never on the reference.
    assert [m for m, _ in model.asked] == [2 * s.shape[1] + 10 for s in src]
    # Nothing is carried into the next evaluation.
    assert task.compute_metrics({"loss": (1.0, 1)}) == {"loss": 1.0}


def test_text_metrics_need_a_tokenizer_and_decoding() -> None:
    model = mz.create("gru_seq2seq", vocab_size=12, embed_dim=8, hidden_size=8)
    with pytest.raises(ConfigError, match="unknown text_metrics.*meteor"):
        Seq2SeqTask(model, text_metrics=["meteor"])
    with pytest.raises(ConfigError, match="greedy_eval=False"):
        Seq2SeqTask(model, text_metrics=["bleu"], greedy_eval=False)
    task = Seq2SeqTask(model, text_metrics=["bleu"])
    src, tgt = torch.tensor([[3, 4, 2]]), torch.tensor([[1, 4, 3, 2]])
    with pytest.raises(ConfigError, match="need a tokenizer"):
        task.validation_step((src, tgt))
    # Without a tokenizer nothing changes: ids are decoded to the label's length.
    plain = Seq2SeqTask(model)
    assert plain.monitor == "exact_match" and plain.scored_metrics == ()
    assert Seq2SeqTask(model, greedy_eval=False).monitor == "loss"
    with pytest.raises(ConfigError, match="beam_size"):
        Seq2SeqTask(model, beam_size=0)


def test_task_decodes_with_beam_search_when_asked() -> None:
    torch.manual_seed(0)
    model = mz.create("lstm_seq2seq", vocab_size=10, embed_dim=8, hidden_size=8).eval()
    src = torch.randint(3, 10, (3, 5))
    task = Seq2SeqTask(model, beam_size=3, length_penalty=1.0)
    expected = model.generate(src, 7, beam_size=3, length_penalty=1.0)
    assert torch.equal(task.decode(src, 7), expected)
    assert torch.equal(task.decode(src, 7, beam_size=1), model.generate(src, 7))


# --- beam search with a length penalty -------------------------------------------------------


def _rnn_log_prob(model: nn.Module, src: torch.Tensor, first: int, second: int) -> float:
    tgt_in = torch.tensor([[model.bos_id, first]])
    with torch.no_grad():
        logp = model(src, tgt_in).log_softmax(-1)[0]
    score = float(logp[0, first])
    return score if first == model.eos_id else score + float(logp[1, second])


@pytest.mark.parametrize("penalty", [0.6, 1.0, 2.0])
def test_rnn_length_penalised_beam_is_exact_over_two_steps(penalty: float) -> None:
    # With beam_size = V, after one step every token is a beam, and the best length-2
    # target of the second step is the best by raw score among equals in length, so the
    # search is exact: it must return the enumeration's best log p / length ** penalty.
    torch.manual_seed(1)
    V = 6
    model = mz.create("lstm_seq2seq", vocab_size=V, embed_dim=8, hidden_size=8).eval()
    for row in range(3):
        src = torch.randint(3, V, (1, 4))
        best, best_score = None, -math.inf
        for a in range(V):
            for b in [0] if a == model.eos_id else range(V):
                length = 1 if a == model.eos_id else 2
                score = _rnn_log_prob(model, src, a, b) / length**penalty
                if score > best_score:
                    best, best_score = ([a] if length == 1 else [a, b]), score
        out = model.generate(src, 2, beam_size=V, length_penalty=penalty)[0].tolist()
        assert out == best, (row, out, best)


# --- mz.translate --------------------------------------------------------------------------


def _tiny_transformer(vocab: int) -> nn.Module:
    torch.manual_seed(0)
    return mz.create(
        "transformer_seq2seq",
        vocab_size=vocab,
        d_model=16,
        num_layers=1,
        num_heads=2,
        d_ff=32,
        max_len=24,
    )


def _spec(tokenizer, tags: bool) -> TextSpec:
    lang_tags = {t[2:-1]: tokenizer.token_to_id(t) for t in TAGS} if tags else {}
    return TextSpec(
        tokenizer=tokenizer,
        target_languages=sorted(lang_tags) if tags else ["de"],
        lang_tags=lang_tags,
    )


def _by_hand(model, tokenizer, texts, prefix, beam=4) -> list[str]:
    out = []
    for text in texts:
        src = torch.tensor([prefix + tokenizer.encode(text) + [2]])
        ids = model.eval().generate(src, min(2 * src.shape[1] + 10, 24), beam_size=beam)
        out.append(tokenizer.decode(ids[0].tolist()).strip())
    return out


def test_translate_from_a_weights_file_and_from_the_model_it_builds(tokenizer, tmp_path) -> None:
    model = _tiny_transformer(tokenizer.vocab_size)
    path = save_text_weights(model, _spec(tokenizer, tags=True), tmp_path / "m.safetensors")
    again = save_text_weights(model, _spec(tokenizer, tags=True), tmp_path / "n.safetensors")
    assert path.read_bytes() == again.read_bytes()  # header order does not vary by process
    spec = read_text_spec(path)
    assert spec.tokenizer.to_json() == tokenizer.to_json()
    assert spec.arch == "transformer_seq2seq" and spec.model_kwargs["d_model"] == 16
    texts = ["Delete %(count)d items", "  Change\n password "]  # normalised like the corpus
    fr = tokenizer.token_to_id("<2fr>")
    expected = _by_hand(model, tokenizer, ["Delete %(count)d items", "Change password"], [fr])
    assert translate(path, texts, target="fr") == expected
    built = mz.create("transformer_seq2seq", pretrained=str(path), **spec.model_kwargs)
    assert translate(built, texts, target="fr") == expected
    assert translate(path, texts, target="fr", beam_size=1) == _by_hand(
        model, tokenizer, ["Delete %(count)d items", "Change password"], [fr], beam=1
    )
    # Another language tag gives the decoder another first input.
    assert translate(model, texts, target="de", tokenizer=tokenizer) == _by_hand(
        model,
        tokenizer,
        ["Delete %(count)d items", "Change password"],
        [tokenizer.token_to_id("<2de>")],
    )


def test_translate_says_what_is_wrong(tokenizer, tmp_path) -> None:
    model = _tiny_transformer(tokenizer.vocab_size)
    multi = save_text_weights(model, _spec(tokenizer, tags=True), tmp_path / "multi.safetensors")
    with pytest.raises(ConfigError, match="needs a target language.*de, fr"):
        translate(multi, ["Log out"])
    with pytest.raises(ConfigError, match="does not translate into 'ja'.*de, fr"):
        translate(multi, ["Log out"], target="ja")
    single = save_text_weights(model, _spec(tokenizer, tags=False), tmp_path / "de.safetensors")
    assert len(translate(single, ["Log out"], target="de")) == 1
    with pytest.raises(ConfigError, match="en -> de only"):
        translate(single, ["Log out"], target="fr")
    with pytest.raises(ConfigError, match="list of strings"):
        translate(single, "Log out")
    with pytest.raises(InputShapeError, match="reads at most 24"):
        translate(single, ["Log out " * 30])
    with pytest.raises(ConfigError, match="carries no tokenizer"):
        translate(_tiny_transformer(tokenizer.vocab_size), ["Log out"])
    bare = tmp_path / "bare.safetensors"
    save_weights(model.state_dict(), bare)
    with pytest.raises(WeightsError, match=f"no '{METADATA_KEY}' metadata"):
        translate(bare, ["Log out"])
    with pytest.raises(ConfigError, match="no file or run directory"):
        translate(str(tmp_path / "missing" / "run"), ["Log out"])
    # A summarization model is not a translator, and the other way round.
    code = TextSpec(tokenizer=tokenizer, kind="summarization", target_languages=["en"])
    summ = save_text_weights(model, code, tmp_path / "code.safetensors")
    with pytest.raises(ConfigError, match="summarization, not translation"):
        translate(summ, ["Log out"])
    with pytest.raises(ConfigError, match="translation, not summarization"):
        summarize(single, ["def f(): pass"])
    assert len(summarize(summ, ["def f(x):\n    return x"], beam_size=2, max_len=5)) == 1


def test_translate_a_run_directory_and_the_cli(tmp_path, capsys) -> None:
    from modelzoo.config import recipe_from_dict
    from modelzoo.train.recipes import train_recipe

    recipe = recipe_from_dict(
        {
            "model": {"name": "lstm_seq2seq", "embed_dim": 16, "hidden_size": 16},
            "data": {
                "name": "po_translations",
                "pair": "en-de",
                "vocab_size": 400,
                "max_len": 32,
                "batch_size": 8,
            },
            "task": {"name": "seq2seq", "greedy_eval": False},
            "train": {"max_steps": 2, "progress": False, "plots": False, "tensorboard": False},
        }
    )
    run = tmp_path / "run"
    train_recipe(recipe, run)
    texts = ["Save and continue editing", "Delete %(count)d items"]
    model = load_text_model(run)
    assert model.text_spec.target_languages == ["de"] and not model.text_spec.multilingual
    assert model.text_spec.tokenizer.vocab_size == model.out.out_features
    out = translate(run, texts, target="de", beam_size=2)
    assert out == translate(model, texts, beam_size=2) and len(out) == 2

    parser = build_parser()
    args = parser.parse_args(["translate", str(run), *texts, "--to", "de", "--beam", "2", "--json"])
    assert args.run(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"source": s, "translation": t, "target": "de"} for s, t in zip(texts, out)]
    listed = tmp_path / "texts.txt"
    listed.write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    args = parser.parse_args(["translate", str(run), "--file", str(listed), "--beam", "2"])
    assert args.run(args) == 0
    assert capsys.readouterr().out.splitlines() == out
    args = parser.parse_args(["translate", str(run), "--to", "fr"])
    with pytest.raises(ConfigError, match="nothing to translate"):
        args.run(args)


def test_rouge_l_is_rouge_score() -> None:
    hyp = ["Return the list of items.", "Close the file"]
    ref = ["Returns a list of the items", "Open a socket"]
    scores = rouge_l(hyp, ref)
    assert scores[0] == pytest.approx(0.7272727, rel=1e-5)  # LCS 4 of 5 and 6 stemmed words
    assert scores[1] == 0.0
    with pytest.raises(ConfigError, match="one reference per hypothesis"):
        rouge_l(hyp, ref[:1])


def test_spec_roundtrip_rejects_damage(tokenizer) -> None:
    spec = _spec(tokenizer, tags=True)
    again = TextSpec.from_json(spec.to_json())
    assert again.lang_tags == spec.lang_tags and again.target_languages == ["de", "fr"]
    doc = json.loads(spec.to_json())
    doc["format"] = 99
    with pytest.raises(WeightsError, match="format 99"):
        TextSpec.from_json(json.dumps(doc))
    del doc["tokenizer"]
    doc["format"] = 1
    with pytest.raises(WeightsError, match="incomplete or damaged"):
        TextSpec.from_json(json.dumps(doc))
