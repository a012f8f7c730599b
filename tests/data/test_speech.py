"""Speech synthesized by eSpeak NG (modelzoo.data.speech): tiny sets, generated in seconds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modelzoo.data import speech  # importing it registers the datasets
from modelzoo.data.registry import build_data
from modelzoo.errors import ConfigError

TINY = dict(words=["yes", "no", "seven"], voices=["m1", "f2"], num_per_word=2)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _audio(data) -> list[torch.Tensor]:
    return [data.train[i][0] for i in range(len(data.train))] + [
        data.test[i][0] for i in range(len(data.test))
    ]


def test_espeak_is_deterministic_call_after_call():
    engine = speech.ESpeak()
    first = engine.synthesize("seven", "en-us+m3", rate=160, seed=1)
    engine.synthesize("something else entirely", "en-gb-scotland+klatt", rate=300)
    again = engine.synthesize("seven", "en-us+m3", rate=160, seed=1)
    assert engine.sample_rate == 22050 and first.dtype == np.int16
    assert np.array_equal(first, again)
    other = engine.synthesize("seven", "en-us+f2", rate=160, seed=1)
    assert not (len(other) == len(first) and np.array_equal(other, first))
    assert np.abs(first).max() > 3000  # speech, not silence
    with pytest.raises(ConfigError, match="no voice"):
        engine.synthesize("seven", "xx-nowhere")


def test_spoken_words_clips_are_speech_at_the_sample_rate(home):
    data = build_data("spoken_words", **TINY)
    info = data.info
    assert info["sample_rate"] == 16000 and info["num_samples"] == 16000
    assert info["classes"] == ["yes", "no", "seven"] and info["num_classes"] == 3
    assert len(data.train) == len(data.test) == 6 and data.val is None
    for wave in _audio(data):
        assert wave.shape == (16000,) and wave.dtype == torch.float32
        assert 0.05 < float(wave.abs().max()) <= 1.0
    # The clean utterance is speech: a loudness contour (syllables), energy where voices are.
    clean = data.train.utterances.waveform(0).astype(np.float64)
    frames = np.sqrt(np.mean(clean[: len(clean) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
    assert frames.max() > 1000 and frames.max() > 4 * np.percentile(frames, 10)
    power = np.abs(np.fft.rfft(clean)) ** 2
    freqs = np.fft.rfftfreq(len(clean), 1 / 16000)
    assert 200 < np.sum(freqs * power) / np.sum(power) < 3000  # spectral centroid, Hz
    labels = sorted(int(data.train[i][1]) for i in range(len(data.train)))
    assert labels == [0, 0, 1, 1, 2, 2]
    manifest = json.loads(
        (home / "data" / "spoken_words").glob("*/manifest.json").__next__().read_text()
    )
    assert manifest["params"]["sample_rate"] == 16000 and manifest["espeak_ng"]


def test_datasets_pickle_for_dataloader_workers(home):
    import pickle

    data = build_data("spoken_words", **TINY)
    copy = pickle.loads(pickle.dumps(data.train))
    assert len(pickle.dumps(data.train)) < 10_000  # the audio is reopened, not copied
    assert torch.equal(copy[3][0], data.train[3][0]) and copy[3][1] == data.train[3][1]


def test_no_voice_is_shared_between_splits(home):
    data = build_data(
        "spoken_words",
        words=["up"],
        voices=["m1", "m2", "f1", "f2", "klatt", "Alex"],
        num_per_word=1,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    heard = {s: {row["variant"] for row in getattr(data, s).rows} for s in ("train", "val", "test")}
    assert heard == {s: set(v) for s, v in data.info["voices"].items()}
    assert not heard["train"] & heard["test"] and not heard["train"] & heard["val"]
    assert not heard["val"] & heard["test"]
    assert heard["train"] | heard["val"] | heard["test"] == {
        "m1",
        "m2",
        "f1",
        "f2",
        "klatt",
        "Alex",
    }


def test_same_seed_same_audio_in_a_fresh_cache(home, tmp_path, monkeypatch):
    a = build_data("spoken_words", **TINY)
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "other"))
    b = build_data("spoken_words", **TINY)  # generated again from nothing
    assert a.info["data_dir"] != b.info["data_dir"]
    assert np.array_equal(a.train.utterances.audio, b.train.utterances.audio)
    assert all(torch.equal(x, y) for x, y in zip(_audio(a), _audio(b), strict=True))
    c = build_data("spoken_words", **TINY, seed=1)
    assert not np.array_equal(
        np.asarray(c.train.utterances.audio[:8000]), np.asarray(a.train.utterances.audio[:8000])
    )


def test_cache_is_reused_and_regenerated_when_parameters_change(home):
    a = build_data("spoken_words", **TINY)
    folder = a.info["data_dir"]
    assert build_data("spoken_words", **TINY).info["data_dir"] == folder
    changed = build_data("spoken_words", **dict(TINY, words=["yes", "no"]))
    assert changed.info["data_dir"] != folder and changed.info["num_classes"] == 2
    # A damaged file is noticed and the set generated again.
    audio = home / "data" / "spoken_words" / folder.rsplit("/", 1)[1] / "audio.npy"
    damaged = audio.read_bytes()[:100]
    audio.unlink()  # a new file: the open memory map of `a` keeps the old one readable
    audio.write_bytes(damaged)
    again = build_data("spoken_words", **TINY)
    assert audio.stat().st_size > 1000
    assert torch.equal(again.train[0][0], a.train[0][0])


def test_spoken_digits_targets_match_the_spoken_digits(home):
    data = build_data("spoken_digits", voices=["m1", "f2", "m3"], num_per_voice=2, max_digits=3)
    info = data.info
    assert info["task"] == "ctc" and info["itos"][0] == "<blank>" and info["vocab_size"] == 11
    for i in range(len(data.train)):
        wave, target = data.train[i]
        digits = data.train.rows[i]["digits"]
        assert 1 <= len(digits) <= 3
        assert "".join(info["itos"][t] for t in target.tolist()) == digits
        assert len(wave) > 0.3 * 16000 * len(digits)  # roughly a third of a second per digit
    waves, lengths, targets, target_lengths = data.collate_fn([data.train[i] for i in range(3)])
    assert waves.shape[0] == 3 and int(lengths.max()) == waves.shape[1]
    assert targets.shape[0] == 3 and int(target_lengths.max()) == targets.shape[1]

    chars = build_data(
        "spoken_digits", voices=["m1", "f2", "m3"], num_per_voice=2, max_digits=3, labels="chars"
    )
    _, target = chars.train[0]
    text = "".join(chars.info["itos"][t] for t in target.tolist())
    assert text == chars.train.rows[0]["text"]


def test_a_ctc_model_takes_a_batch(home):
    import modelzoo as mz
    from modelzoo.train.tasks.ctc import CTCTask

    data = build_data("spoken_digits", voices=["m1", "f2"], num_per_voice=2, max_digits=2)
    model = mz.create("ctc_lstm", vocab_size=data.info["vocab_size"])
    batch = data.collate_fn([data.train[i] for i in range(2)])
    loss = CTCTask(model).training_step(batch, "main")["loss"]
    assert torch.isfinite(loss)


def test_bad_options_raise_config_error(home):
    with pytest.raises(ConfigError, match="unknown eSpeak voice"):
        build_data("spoken_words", words=["yes"], voices=["m1", "robot9000"])
    with pytest.raises(ConfigError, match="at least 2 voices"):
        build_data("spoken_words", words=["yes"], voices=["m1"])
    with pytest.raises(ConfigError, match="rate"):
        build_data("spoken_words", words=["yes"], voices=["m1", "f1"], rate=(20, 100))
    with pytest.raises(ConfigError, match="labels"):
        build_data("spoken_digits", voices=["m1", "f1"], labels="phonemes")
