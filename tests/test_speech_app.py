"""The speech application: CTC decoding, WER/CER, `modelzoo predict` on .wav files (with the
shipped keyword spotter and digit-string recognizer, on speech the synthesizer speaks here),
and the results file's check (scripts/speech_results.py)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from script_helpers import load_script

import modelzoo as mz
from modelzoo.cli import main as cli_main
from modelzoo.data.speech import DIGIT_WORDS, WORDS, ESpeak
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.audio import greedy_decode
from modelzoo.predict import audio_spec, fit_clip, load_model, predict
from modelzoo.train.tasks.ctc import (
    CTCTask,
    beam_decode,
    beam_search,
    error_counts,
    error_rates,
    tokens_to_text,
)

ROOT = Path(__file__).resolve().parents[1]


results_script = load_script("speech_results")
RESULTS = json.loads(results_script.RESULTS.read_text()) if results_script.RESULTS.is_file() else {}
SHIPPED = {key: name for name, key in RESULTS.get("shipped", {}).items()}
KWS = SHIPPED.get("audio_cnn_spoken_words")
DIGITS = next((n for k, n in SHIPPED.items() if k.endswith("_spoken_digits")), None)
needs_shipped = pytest.mark.skipif(
    not (KWS and DIGITS), reason="run scripts/speech_results.py ship first"
)


# --- decoding -------------------------------------------------------------------------------


def test_beam_search_finds_the_transcript_no_single_path_spells():
    # Two frames, p(blank) = 0.6, p(a) = 0.4 in each. The best path is blank-blank ("",
    # 0.36), but "a" has three paths: a-a, a-blank, blank-a = 0.16 + 0.24 + 0.24 = 0.64.
    log_probs = torch.tensor([[[0.6, 0.4], [0.6, 0.4]]]).log()
    assert greedy_decode(log_probs) == [[]]
    (hyps,) = beam_search(log_probs, beam_size=4, prune=0)
    assert [ids for ids, _ in hyps] == [[1], []]
    assert [math.exp(s) for _, s in hyps] == pytest.approx([0.64, 0.36])
    assert beam_decode(log_probs, itos=["-", "a"]) == ["a"]


def _exact_sequence_probabilities(probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """p(y) by brute force: every path of blank-0 CTC, collapsed."""
    T, V = probs.shape
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        y = tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k))
        out[y] = out.get(y, 0.0) + float(np.prod(probs[np.arange(T), path]))
    return out


def test_a_wide_beam_gives_the_exact_probability_of_every_transcript():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=5)  # 5 frames, blank + 2 tokens: 243 paths
    exact = _exact_sequence_probabilities(probs)
    log_probs = torch.from_numpy(np.log(probs))[None].float()
    (hyps,) = beam_search(log_probs, beam_size=1000, prune=0)
    found = {tuple(ids): math.exp(s) for ids, s in hyps}
    assert found.keys() == exact.keys()  # "aa" (a blank between) and "a" are told apart
    for y, p in exact.items():
        assert found[y] == pytest.approx(p, rel=1e-5), y
    assert sum(found.values()) == pytest.approx(1.0, rel=1e-5)
    best = max(exact, key=exact.get)
    assert beam_decode(log_probs, beam_size=4) == [list(best)]


def test_beam_search_reads_only_the_valid_frames_of_each_row():
    frames = torch.full((2, 6, 3), -10.0)
    frames[:, :, 0] = 0.0  # blank everywhere ...
    frames[0, 1] = torch.tensor([-10.0, 0.0, -10.0])  # ... but token 1 at frame 1
    frames[1, 4] = torch.tensor([-10.0, -10.0, 0.0])  # and token 2 at frame 4, past length 3
    assert beam_decode(frames, [6, 3]) == [[1], []]
    assert beam_decode(frames) == greedy_decode(frames) == [[1], [2]]
    with pytest.raises(InputShapeError, match="lengths"):
        beam_search(frames, [7, 3])
    with pytest.raises(ConfigError, match="beam_size"):
        beam_search(frames, beam_size=0)


def test_tokens_to_text():
    digits = ["", *DIGIT_WORDS]
    assert tokens_to_text([5, 2, 8], digits, " ") == "four one seven"
    assert tokens_to_text([], digits, " ") == ""
    chars = ["<blank>", " ", "o", "n", "e"]
    assert tokens_to_text([2, 3, 4, 1, 1, 2], chars) == "one o"  # spaces collapsed
    with pytest.raises(ConfigError, match="reach past"):
        tokens_to_text([11], digits, " ")


def test_error_rates_by_hand():
    references = ["one two three", "four five"]
    hypotheses = ["one too three", "four"]
    # Words: "two" -> "too" is one substitution, "five" one deletion: 2 of 5 words.
    # Characters (spaces count, as in jiwer): "two" -> "too" one substitution; " five" five
    # deletions: 6 of 13 + 9 = 22.
    rates = error_rates(hypotheses, references)
    assert rates == pytest.approx({"wer": 2 / 5, "cer": 6 / 22, "exact_match": 0.0})
    counts = error_counts(["one", "two"], ["one", "three"])
    assert counts["word_errors"] == 1 and counts["words"] == 2 and counts["exact"] == 1
    # An insertion counts: the rate can pass 1.
    assert error_rates(["one one one"], ["one"])["wer"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="empty"):
        error_rates(["one"], [""])


class _Scores(torch.nn.Module):
    """A recognizer stand-in that returns fixed scores."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(()))
        self.log_probs = probs.log()

    def forward(self, waveforms, lengths=None):
        from modelzoo.models.audio import CTCOutput

        return CTCOutput(self.log_probs + self.bias, None)


def test_ctc_task_decodes_with_the_beam_and_scores_words():
    # Target "one" (id 2 of ["", "zero", "one"]); the frames say blank 0.6 / "one" 0.4 twice.
    probs = torch.tensor([[[0.6, 0.0, 0.4], [0.6, 0.0, 0.4]]]).clamp_min(1e-9)
    batch = (torch.zeros(1, 100), torch.tensor([100]), torch.tensor([[2]]), torch.tensor([1]))
    kwargs = dict(tokens=["", "zero", "one"], separator=" ")
    greedy = CTCTask(_Scores(probs), **kwargs).validation_step(batch)
    beam = CTCTask(_Scores(probs), decoder="beam", **kwargs).validation_step(batch)
    assert greedy["wer"] == (1.0, 1) and greedy["exact_match"] == (0.0, 1)  # "" for "one"
    assert beam["wer"] == (0.0, 1) and beam["exact_match"] == (1.0, 1)
    assert beam["text_cer"] == (0.0, 3)
    with pytest.raises(ConfigError, match="decoder"):
        CTCTask(_Scores(probs), decoder="viterbi")


# --- predict on .wav files --------------------------------------------------------------------


def _speak(text: str, voice: str, path: Path, *, silence_s: float = 0.0, rate: int = 160) -> Path:
    """``text`` spoken by eSpeak NG, written as a 22.05 kHz .wav (predict resamples it)."""
    engine = ESpeak()
    wave = engine.synthesize(text, voice, rate=rate).astype(np.float32) / 32768.0
    pad = np.zeros(int(silence_s * engine.sample_rate), dtype=np.float32)
    soundfile.write(str(path), np.concatenate([pad, wave, pad]), engine.sample_rate)
    return path


def test_fit_clip_keeps_the_loud_part():
    wave = torch.zeros(10)
    wave[6:8] = 1.0
    assert fit_clip(wave, 4).tolist() == [0, 0, 1, 1]  # the first window holding the event
    short = torch.ones(3)
    assert fit_clip(short, 7).tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert fit_clip(short, 3) is short


def test_an_image_model_refuses_audio(tmp_path):
    path = _speak("yes", "en-us", tmp_path / "yes.wav")
    with pytest.raises(ConfigError, match="states no sample rate"):
        predict(mz.create("resnet20.digits"), path)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    model = mz.create("audio_cnn", num_classes=3)
    with pytest.raises(ConfigError, match="cannot read .*broken.wav"):
        predict(model, tmp_path / "broken.wav")


def test_an_untrained_audio_model_reads_whole_recordings(tmp_path):
    """Without a card, a classifier gets each recording whole (any length), a recognizer
    writes token ids; both give one answer per file of a folder, in natural order."""
    folder = tmp_path / "clips"
    folder.mkdir()
    _speak("yes", "en-us", folder / "2.wav")
    _speak("no", "en-us", folder / "10.wav", silence_s=0.4)
    torch.manual_seed(0)
    classifier = mz.create("audio_cnn", num_classes=4).eval()
    found = mz.predict(classifier, folder, top_k=2, labels=["a", "b", "c", "d"])
    assert len(found) == 2 and all(len(p) == 2 for p in found)
    assert sum(p for _, p in found[0]) <= 1.0 + 1e-6
    recognizer = mz.create("ctc_lstm", vocab_size=4, hidden_size=16, num_layers=1).eval()
    (hyps,) = mz.predict(recognizer, folder / "2.wav", top_k=3)
    assert 1 <= len(hyps) <= 3
    assert all(set(text.split()) <= {"1", "2", "3"} for text, _ in hyps)
    assert all(0 < p <= 1 for _, p in hyps) and sum(p for _, p in hyps) <= 1 + 1e-6


def _run(tmp_path, recipe: dict) -> Path:
    from modelzoo.config import recipe_from_dict
    from modelzoo.train.recipes import train_recipe

    run_dir = tmp_path / "run"
    train_recipe(recipe_from_dict(recipe), run_dir)
    return run_dir


def test_predict_from_a_keyword_run_directory(tmp_path, monkeypatch):
    """A run's model reads a .wav as its data did: the run's sample rate and clip length."""
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "home"))
    words = ["yes", "no", "seven"]
    run_dir = _run(
        tmp_path,
        {
            "model": {"name": "audio_cnn", "n_mels": 16, "channels": [4, 8]},
            "data": {
                "name": "spoken_words",
                "words": words,
                "voices": ["m1", "f2", "m3"],
                "num_per_word": 1,
                "sample_rate": 8000,
                "batch_size": 4,
            },
            "task": {"name": "classification"},
            "train": {
                "epochs": 1,
                "max_steps": 2,
                "progress": False,
                "plots": False,
                "tensorboard": False,
            },
        },
    )
    model = load_model(run_dir)
    assert audio_spec(model)["sample_rate"] == 8000 and audio_spec(model)["num_samples"] == 8000
    clip = _speak("seven", "en-us+m1", tmp_path / "seven.wav", silence_s=0.8)
    (found,) = predict(model, clip, top_k=3)
    assert sorted(w for w, _ in found) == sorted(words)
    # The same as the model on the loudest second of the file, resampled to 8 kHz.
    data, rate = soundfile.read(str(clip), dtype="float32")
    wave = fit_clip(torchaudio.functional.resample(torch.from_numpy(data), rate, 8000), 8000)
    with torch.inference_mode():
        probs = model(wave[None]).softmax(-1)[0]
    assert dict(found) == pytest.approx({w: float(probs[i]) for i, w in enumerate(words)})


def test_predict_from_a_digit_string_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "home"))
    tokens = ["", *DIGIT_WORDS]
    run_dir = _run(
        tmp_path,
        {
            "model": {"name": "ctc_lstm", "n_mels": 16, "hidden_size": 16, "num_layers": 1},
            "data": {
                "name": "spoken_digits",
                "voices": ["m1", "f2", "m3"],
                "num_per_voice": 2,
                "max_digits": 2,
                "sample_rate": 8000,
                "batch_size": 2,
            },
            "task": {"name": "ctc", "tokens": tokens, "separator": " "},
            "train": {
                "epochs": 1,
                "max_steps": 1,
                "progress": False,
                "plots": False,
                "tensorboard": False,
            },
        },
    )
    spec = audio_spec(load_model(run_dir))
    assert spec["tokens"] == tokens and spec["separator"] == " " and spec["num_samples"] is None
    (found,) = predict(run_dir, _speak("four one", "en-us", tmp_path / "41.wav"), top_k=2)
    assert all(set(text.split()) <= set(DIGIT_WORDS) for text, _ in found)


# --- the shipped models -----------------------------------------------------------------------


@needs_shipped
def test_shipped_keyword_spotter_hears_words_from_the_synthesizer(tmp_path):
    """Clean words by voices the model never trained on (its test voices), one with silence
    around it (predict finds the loudest second), as files and as a folder."""
    card = mz.model_card("audio_cnn").weights
    assert any(ws.name == KWS for ws in card)
    test_voices = RESULTS["runs"]["audio_cnn_spoken_words"]["data"]["test_voices"]
    folder = tmp_path / "clips"
    folder.mkdir()
    said = {"yes": 0, "seven": 1, "stop": 2, "house": 3}
    for word, i in said.items():
        voice = f"en-us+{test_voices[i % len(test_voices)]}"
        _speak(word, voice, folder / f"{i}_{word}.wav", silence_s=0.7 if i == 0 else 0.0)
    found = mz.predict(KWS, folder, top_k=3)
    top = [preds[0][0] for preds in found]
    assert sum(t == w for t, w in zip(top, said, strict=True)) >= 3, list(zip(said, found))
    for preds in found:
        assert len(preds) == 3 and preds[0][1] >= preds[1][1] >= preds[2][1]
        assert {w for w, _ in preds} <= set(WORDS)


@needs_shipped
def test_shipped_digit_recognizer_transcribes_spoken_numbers(tmp_path, capsys):
    """Numbers said by six voices the model never trained on (clean, with silence around
    them, at 22.05 kHz: predict resamples). The results file publishes about 80% of noisy
    test strings recognised exactly; here at least 60% of these 18 must be, and every
    transcript is digit words. (One test voice, Alicia, is often misheard: a real weakness.)"""
    key = next(k for k, n in SHIPPED.items() if n == DIGITS)
    voices = RESULTS["runs"][key]["data"]["test_voices"][:6]
    said = ("four one seven", "three two", "nine")
    clips = {}
    for i, voice in enumerate(voices):
        for j, text in enumerate(said):
            path = _speak(text, f"en-us+{voice}", tmp_path / f"{i}_{j}.wav", silence_s=0.3)
            clips[path] = text
    found = mz.predict(DIGITS, list(clips), top_k=3)
    right = [
        path
        for (path, text), preds in zip(clips.items(), found, strict=True)
        if preds[0][0] == text
    ]
    assert len(right) >= 0.6 * len(clips), list(zip(clips.values(), found))
    for preds in found:
        assert all(set(t.split()) <= set(DIGIT_WORDS) for t, _ in preds)
        assert 0.0 < preds[0][1] <= 1.0 and preds[0][1] >= preds[-1][1]
    path = right[0]
    assert cli_main(["predict", DIGITS, str(path), "--top-k", "2", "--json"]) == 0
    (document,) = json.loads(capsys.readouterr().out)
    assert document["file"] == str(path)
    assert document["predictions"][0]["label"] == clips[path]


@needs_shipped
def test_shipped_cards_state_input_and_license():
    for name in (KWS, DIGITS):
        arch, tag = name.split(".")
        ws = mz.weights.get_weight_set(arch, tag)
        assert ws.license == "BSD-3-Clause"
        assert "eSpeak NG" in ws.description and "GPL-3.0" in ws.description
        assert ws.input_spec["sample_rate"] == 16000
    kws = mz.weights.get_weight_set(*KWS.split("."))
    assert kws.input_spec["num_samples"] == 16000 and len(kws.input_spec["labels"]) == 35
    digits = mz.weights.get_weight_set(*DIGITS.split("."))
    assert digits.input_spec["tokens"] == ["", *DIGIT_WORDS]


# --- the results file ---------------------------------------------------------------------------


def test_speech_results_agree_with_the_cards_and_recipes():
    """benchmarks/speech.md is what speech.json renders; recipes and cards are the measured."""
    if not RESULTS:
        pytest.skip("run scripts/speech_results.py measure first")
    assert results_script.check() == []
    for key, run in RESULTS["runs"].items():
        recipe = (ROOT / run["recipe"]).read_text()
        assert recipe.startswith(f"# modelzoo train {run['recipe']}\n")
        assert f"Took {run['run']['wall_minutes']:.0f} min here" in recipe, key


@pytest.mark.slow
def test_shipped_speech_weights_are_measured_again(one_thread):
    """The cards' test-voice metrics come out again from the shipped files (generates the
    data into MODELZOO_HOME on first use: a few minutes)."""
    assert results_script.check(full=True) == []
