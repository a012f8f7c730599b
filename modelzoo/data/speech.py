"""Spoken words and digit strings, synthesized offline by eSpeak NG, split by voice.

The ``espeakng-loader`` wheel (the ``[speech]`` extra) ships ``libespeak-ng`` and its voice
data; :class:`ESpeak` drives the library's C API through ctypes (``espeak_Initialize``
with synchronous output to a callback that collects the samples,
``espeak_SetVoiceByName``, ``espeak_SetParameter`` for rate, pitch and pitch range,
``espeak_Synth``). Nothing is downloaded.

- ``spoken_words``: keyword spotting in the layout of Speech Commands v2 (Warden 2018):
  its 35 words (``WORDS``), one-second clips, one class per word.
- ``spoken_digits``: strings of 1 to ``max_digits`` digits read as words ("three seven
  nine"), variable length, with CTC targets (one label per digit, or the characters of
  the words).

**Voices.** A voice is an eSpeak *variant* (a timbre: formants, pitch, breathiness:
``m1``..``m8``, ``f1``..``f5``, ``klatt``.., and named ones), spoken with one of eight
English accents (``en`` British, ``en-us``, ``en-us-nyc``, ``en-029`` Caribbean,
``en-gb-scotland``, ``en-gb-x-rp``, ``en-gb-x-gbclan`` Lancashire, ``en-gb-x-gbcwmd``
West Midlands) drawn per utterance. The splits are **by variant**: a variant heard in
test is never heard in training, in any accent; accents are shared by all splits. Each
utterance also draws a speaking rate, a pitch and a pitch range.

**Augmentation** is applied when an item is read, from ``(seed, split, index)`` alone
(the same item is the same waveform in every epoch and process): a random gain, with
probability ``reverb_prob`` a synthetic room (exponentially decaying noise with an RT60
drawn from ``rt60``, mixed with the dry signal), and white, pink or brown noise at an SNR
drawn from ``snr_db``. Keyword clips also place the word at a random offset.

**Generation and cache.** The clean utterances are synthesized on first use into
``MODELZOO_HOME/data/<name>/<key>/`` (``audio.npy``: int16 samples of every utterance
end to end at ``sample_rate``; ``index.json``: each utterance's offset, length, text,
voice and split; ``manifest.json``: the generation parameters, the eSpeak NG version and
the files' sha256, written last), each file atomically and under a file lock, with a
progress bar. ``<key>`` is a hash of the generation parameters, so changing one
generates a new set and an unchanged one is reused. eSpeak keeps internal state between
utterances (pitch flutter phase, noise generators), so each utterance is synthesized by
a freshly loaded private copy of the library with its random seeds set: an utterance is
then a function of its text, voice and parameters alone, identical in every process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.data.audio import collate_ctc
from modelzoo.data.espeak import ESpeak, espeak_available
from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.errors import ConfigError
from modelzoo.utils.io import FileLock, atomic_write, atomic_write_text, path_within

__all__ = [
    "ACCENTS",
    "DIGIT_WORDS",
    "ESpeak",
    "VARIANTS",
    "WORDS",
    "SpokenDigitsDataset",
    "SpokenWordsDataset",
    "espeak_available",
    "split_voices",
    "spoken_digits",
    "spoken_words",
]

_logger = logging.getLogger(__name__)

# The 35 words of Speech Commands v2.
WORDS = (
    "backward bed bird cat dog down eight five follow forward four go happy house learn left "
    "marvin nine no off on one right seven sheila six stop three tree two up visual wow yes zero"
).split()
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

ACCENTS = (
    "en",
    "en-us",
    "en-us-nyc",
    "en-029",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
# Variants that sound like a person speaking (effects such as robot, whisper, croak or
# "demonic" are left out).
VARIANTS = tuple(
    "m1 m2 m3 m4 m5 m6 m7 m8 f1 f2 f3 f4 f5 klatt klatt2 klatt3 klatt4 klatt6 "
    "Alex Alicia Andrea Andy Annie Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee Marco "
    "Mario Michael Mike Nguyen Reed Storm adam anika antonio aunty belinda benjamin boris "
    "caleb david ed edward edward2 grandma grandpa gustave ian iven iven2 iven3 iven4 john "
    "kaukovalta linda marcelo max michel miguel mike2 norbert pablo paul pedro quincy rob "
    "robert sandro shelby steph steph2 steph3 travis victor zac".split()
)

_SPLITS = ("train", "val", "test")
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_GENERATOR_VERSION = 1  # bump when synthesis or storage changes: caches are then rebuilt

# --- voices and their splits ----------------------------------------------------------------


def split_voices(
    voices: Sequence[str], val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Variant -> split. Variants are ordered by a hash of their name (a fixed order that
    does not depend on the list's order or on the seed); test takes the first
    ``round(n * test_fraction)`` (at least one), val the next ``round(n * val_fraction)``,
    train the rest (at least one)."""
    n = len(voices)
    if n < 2:
        raise ConfigError(
            f"split by voice needs at least 2 voices (one to train, one to test); got {n}"
        )
    order = sorted(voices, key=lambda v: hashlib.sha256(f"voice:{v}".encode()).hexdigest())
    n_test = max(1, round(n * test_fraction))
    n_val = min(round(n * val_fraction), n - n_test - 1)
    return {
        v: "test" if i < n_test else "val" if i < n_test + n_val else "train"
        for i, v in enumerate(order)
    }


def _name_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def _trim(samples: np.ndarray, sample_rate: int, margin_ms: float = 20.0) -> np.ndarray:
    """Cut leading and trailing silence (below 2 % of the peak), keeping a small margin."""
    if not len(samples):
        return samples
    level = np.abs(samples.astype(np.float32))
    loud = np.nonzero(level > 0.02 * level.max())[0]
    if not len(loud):
        return samples[:0]
    margin = int(sample_rate * margin_ms / 1000)
    return samples[max(0, loud[0] - margin) : loud[-1] + margin + 1]


# --- the cache of clean utterances ----------------------------------------------------------


def _data_root(name: str) -> Path:
    from modelzoo.weights.cache import cache_dir

    return cache_dir() / "data" / name


class _Utterances:
    """The cached clean utterances: int16 audio (memory-mapped) and their index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        self.index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        self.audio = np.load(folder / "audio.npy", mmap_mode="r")

    def __getstate__(self) -> dict[str, str]:  # DataLoader workers reopen the files
        return {"folder": str(self.folder)}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(Path(state["folder"]))

    def waveform(self, i: int) -> np.ndarray:
        row = self.index[i]
        return np.asarray(self.audio[row["offset"] : row["offset"] + row["length"]])


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_or_generate(
    name: str, params: dict[str, Any], plan: Callable[[], list[dict[str, Any]]], sample_rate: int
) -> _Utterances:
    """The cached set for ``params``, generated (under a lock) when missing or damaged."""
    params = json.loads(json.dumps(params, sort_keys=True))  # tuples as lists, as stored
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    root = _data_root(name)
    folder = path_within(root, key)
    with FileLock(root / f"{key}.lock", what=f"{name} data {key}"):
        if _complete(folder, params):
            return _Utterances(folder)
        _generate(folder, params, plan(), sample_rate, name)
    return _Utterances(folder)


def _complete(folder: Path, params: dict[str, Any]) -> bool:
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    if manifest.get("params") != params:
        return False
    for file_name, info in manifest.get("files", {}).items():
        path = folder / file_name
        if not path.is_file() or path.stat().st_size != info["size"]:
            _logger.warning("%s is missing or damaged; generating the set again", path)
            return False
    return True


def _generate(
    folder: Path,
    params: dict[str, Any],
    plan: list[dict[str, Any]],
    sample_rate: int,
    name: str,
) -> None:
    import torchaudio
    from tqdm.auto import tqdm

    engine = ESpeak()
    resample = None
    pieces: list[np.ndarray] = []
    index: list[dict[str, Any]] = []
    offset = 0
    start = time.perf_counter()
    for row in tqdm(plan, desc=f"synthesizing {name}", unit="utt", disable=None, leave=False):
        raw = engine.synthesize(
            row["text"],
            f"{row['accent']}+{row['variant']}",
            rate=row["rate"],
            pitch=row["pitch"],
            pitch_range=row["range"],
            seed=row["seed"],
        )
        wave = torch.from_numpy(_trim(raw, engine.sample_rate).astype(np.float32) / 32768.0)
        if engine.sample_rate != sample_rate:
            if resample is None:
                resample = torchaudio.transforms.Resample(engine.sample_rate, sample_rate)
            wave = resample(wave)
        samples = np.clip(np.round(wave.numpy() * 32767.0), -32768, 32767).astype(np.int16)
        if not len(samples):
            raise ConfigError(
                f"eSpeak produced no sound for {row['text']!r} with voice "
                f"{row['accent']}+{row['variant']}"
            )
        pieces.append(samples)
        index.append({**row, "offset": offset, "length": len(samples)})
        offset += len(samples)
    seconds = time.perf_counter() - start
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    atomic_write(folder / "audio.npy", lambda fh: np.save(fh, audio))
    atomic_write_text(folder / "index.json", json.dumps(index))
    files = {
        f: {"size": (folder / f).stat().st_size, "sha256": _file_sha256(folder / f)}
        for f in ("audio.npy", "index.json")
    }
    manifest = {
        "params": params,
        "espeak_ng": engine.version,
        "utterances": len(index),
        "hours": round(len(audio) / sample_rate / 3600, 4),
        "generation_seconds": round(seconds, 2),
        "files": files,
    }
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=1))  # written last
    _logger.info(
        "%s: synthesized %d utterances (%.1f min of audio) in %.1f s into %s",
        name,
        len(index),
        len(audio) / sample_rate / 60,
        seconds,
        folder,
    )


# --- augmentation ---------------------------------------------------------------------------


def _colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if color == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    spectrum /= np.sqrt(freqs) if color == "pink" else freqs  # 1/f power, or 1/f^2 (brown)
    noise = np.fft.irfft(spectrum, n)
    return noise / (noise.std() or 1.0)


def _reverb(signal: np.ndarray, rt60: float, wet: float, sample_rate: int, rng) -> np.ndarray:
    """Convolve with a synthetic room response: noise decaying by 60 dB in ``rt60`` s."""
    n = max(1, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    response = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078
    response[0] = 0.0
    response /= np.sqrt(np.sum(response**2)) or 1.0
    size = 1 << int(math.ceil(math.log2(len(signal) + n)))
    tail = np.fft.irfft(np.fft.rfft(signal, size) * np.fft.rfft(response, size), size)
    wet_signal = tail[: len(signal)]
    scale = np.abs(signal).max() / (np.abs(wet_signal).max() or 1.0)
    return (1 - wet) * signal + wet * scale * wet_signal


class _Augment:
    def __init__(
        self,
        sample_rate: int,
        snr_db: tuple[float, float] | None,
        reverb_prob: float,
        rt60: tuple[float, float],
    ) -> None:
        self.sample_rate = sample_rate
        self.snr_db = snr_db
        self.reverb_prob = reverb_prob
        self.rt60 = rt60

    def __call__(self, speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``speech`` (float, already placed in its clip) with reverb, noise and a gain."""
        power = float(np.mean(speech[np.abs(speech) > 1e-4] ** 2)) if np.any(speech) else 1e-8
        if self.reverb_prob > 0 and rng.random() < self.reverb_prob:
            speech = _reverb(
                speech, rng.uniform(*self.rt60), rng.uniform(0.2, 0.6), self.sample_rate, rng
            )
        if self.snr_db is not None:
            color = ("white", "pink", "brown")[int(rng.integers(0, 3))]
            std = math.sqrt(power / 10 ** (rng.uniform(*self.snr_db) / 10))
            speech = speech + std * _colored_noise(len(speech), color, rng)
        peak = float(np.abs(speech).max()) or 1.0
        return (speech * (rng.uniform(0.1, 0.9) / peak)).astype(np.float32)


# --- datasets -------------------------------------------------------------------------------


class _UtteranceDataset(Dataset):
    """One split of a rendered set: the utterances it holds and its augmentation.

    ``rows[i]`` describes item i's utterance (text, variant, accent, rate, pitch).
    """

    item_noun = "utterances"  # what an item is, for the out-of-range message

    def __init__(
        self, utterances: _Utterances, rows: list[int], split: str, seed: int, augment: _Augment
    ) -> None:
        self.utterances = utterances
        self.ids = rows
        self.split = split
        self.seed = seed
        self.augment = augment

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [self.utterances.index[i] for i in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def _speech(self, index: int) -> tuple[dict[str, Any], np.random.Generator, np.ndarray]:
        """Item ``index``'s row, its own random generator and its speech in [-1, 1]."""
        if not 0 <= index < len(self.ids):
            raise IndexError(f"index {index} out of range for {len(self.ids)} {self.item_noun}")
        row = self.utterances.index[self.ids[index]]
        # Seeded by split and index, so an item's augmentation is the same every epoch.
        rng = np.random.default_rng([self.seed, _SPLIT_IDS[self.split], index])
        speech = self.utterances.waveform(self.ids[index]).astype(np.float64) / 32768.0
        return row, rng, speech


class SpokenWordsDataset(_UtteranceDataset):
    """One-second clips of one word each; items are ``(waveform (num_samples,), label)``.

    ``rows[i]`` describes item i's utterance (text, variant, accent, rate, pitch).
    """

    item_noun = "clips"

    def __init__(
        self,
        utterances: _Utterances,
        rows: list[int],
        split: str,
        seed: int,
        num_samples: int,
        augment: _Augment,
        classes: list[str],
    ) -> None:
        super().__init__(utterances, rows, split, seed, augment)
        self.num_samples = num_samples
        self.labels = {word: i for i, word in enumerate(classes)}

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row, rng, speech = self._speech(index)
        speech = speech[: self.num_samples]  # the word is longer than the clip: keep its start
        clip = np.zeros(self.num_samples)
        start = int(rng.integers(0, self.num_samples - len(speech) + 1))
        clip[start : start + len(speech)] = speech
        wave = self.augment(clip, rng)
        return torch.from_numpy(wave), torch.tensor(self.labels[row["text"]], dtype=torch.long)


class SpokenDigitsDataset(_UtteranceDataset):
    """Digit strings; items are ``(waveform (N,), target (L,))`` with CTC label ids."""

    def __init__(
        self,
        utterances: _Utterances,
        rows: list[int],
        split: str,
        seed: int,
        augment: _Augment,
        encode: Callable[[str], list[int]],
        sample_rate: int,
        pad_s: tuple[float, float] = (0.05, 0.3),
    ) -> None:
        super().__init__(utterances, rows, split, seed, augment)
        self.encode = encode
        self.sample_rate = sample_rate
        self.pad_s = pad_s

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row, rng, speech = self._speech(index)
        before, after = (int(rng.uniform(*self.pad_s) * self.sample_rate) for _ in range(2))
        clip = np.concatenate([np.zeros(before), speech, np.zeros(after)])
        wave = self.augment(clip, rng)
        target = torch.tensor(self.encode(row["digits"]), dtype=torch.long)
        return torch.from_numpy(wave), target


def _check_range(name: str, value: Sequence[float], low: float, high: float) -> tuple[float, float]:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ConfigError(f"{name} must be [min, max] within [{low}, {high}]; got {list(value)}")
    return float(value[0]), float(value[1])


def _voices(voices: Sequence[str] | None, accents: Sequence[str] | None) -> tuple[list, list]:
    chosen = list(voices) if voices else list(VARIANTS)
    accent_list = list(accents) if accents else list(ACCENTS)
    shipped = set(ESpeak().variants()) if espeak_available() else set(VARIANTS)
    unknown = [v for v in chosen if v not in shipped]
    if unknown:
        raise ConfigError(
            f"unknown eSpeak voice variants {unknown}; choose from {', '.join(VARIANTS)}"
        )
    bad = [a for a in accent_list if a not in ACCENTS]
    if bad:
        raise ConfigError(f"unknown accents {bad}; choose from {', '.join(ACCENTS)}")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"voices holds duplicates: {chosen}")
    return chosen, accent_list


def _prosody(rng: np.random.Generator, rate, pitch, pitch_range, accents) -> dict[str, Any]:
    return {
        "accent": accents[int(rng.integers(0, len(accents)))],
        "rate": int(rng.integers(int(rate[0]), int(rate[1]) + 1)),
        "pitch": int(rng.integers(int(pitch[0]), int(pitch[1]) + 1)),
        "range": int(rng.integers(int(pitch_range[0]), int(pitch_range[1]) + 1)),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }


@dataclasses.dataclass(frozen=True)
class _VoiceSetup:
    """The checked voice, split and prosody keywords both rendered sets take."""

    voices: list[str]
    accents: list[str]
    splits: dict[str, str]  # voice variant -> split
    ranges: dict[str, tuple[float, float]]  # rate, pitch, pitch_range
    sample_rate: int

    @classmethod
    def check(
        cls,
        voices: Sequence[str] | None,
        accents: Sequence[str] | None,
        val_fraction: float,
        test_fraction: float,
        sample_rate: int,
        rate: Sequence[float],
        pitch: Sequence[float],
        pitch_range: Sequence[float],
    ) -> _VoiceSetup:
        chosen, accent_list = _voices(voices, accents)
        splits = split_voices(chosen, val_fraction, test_fraction)
        ranges = _prosody_ranges(rate, pitch, pitch_range)
        return cls(chosen, accent_list, splits, ranges, sample_rate)

    def params(self, kind: str, seed: int, **specific: Any) -> dict[str, Any]:
        """The parameters that name a rendered set (its cache key), ``specific`` included."""
        return {
            "version": _GENERATOR_VERSION,
            "kind": kind,
            **specific,
            "voices": self.voices,
            "splits": self.splits,
            "accents": self.accents,
            "seed": seed,
            "sample_rate": self.sample_rate,
            **self.ranges,
        }


def _split_datasets(
    rows: dict[str, list[int]], make: Callable[[list[int], str], Dataset]
) -> dict[str, Dataset | None]:
    """One dataset per split that has rows (None for an empty split)."""
    return {s: make(rows[s], s) if rows[s] else None for s in _SPLITS}


def _split_rows(utterances: _Utterances) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {s: [] for s in _SPLITS}
    for i, row in enumerate(utterances.index):
        rows[row["split"]].append(i)
    return rows


@register_dataset("spoken_words")
def spoken_words(
    *,
    words: Sequence[str] | None = None,
    num_per_word: int = 2,
    voices: Sequence[str] | None = None,
    accents: Sequence[str] | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    sample_rate: int = 16000,
    duration: float = 1.0,
    rate: Sequence[float] = (130, 230),
    pitch: Sequence[float] = (25, 75),
    pitch_range: Sequence[float] = (20, 80),
    snr_db: Sequence[float] | None = (5.0, 30.0),
    reverb_prob: float = 0.5,
    rt60: Sequence[float] = (0.1, 0.6),
) -> DataBundle:
    """Keyword spotting: each word spoken by many synthetic voices, split by voice.

    Items are ``(waveform, label)``: float32 (duration * sample_rate,) and an int64 class
    index into ``info["classes"]`` (the words). Every voice variant says every word
    ``num_per_word`` times, each time with a random accent, rate, pitch and pitch range;
    with the defaults that is 35 words x 81 variants x 2 = 5,670 clips.

    Args:
        words: the vocabulary (default: the 35 words of Speech Commands v2, ``WORDS``).
        num_per_word: renderings of each word by each voice.
        voices: eSpeak variants to use (default: ``VARIANTS``); split by variant.
        accents: English accents drawn from (default: ``ACCENTS``).
        val_fraction: share of voices held out for validation.
        test_fraction: share of voices held out for testing (at least one voice).
        seed: the renderings (accents, rates, pitches) and the augmentation.
        sample_rate: samples per second (eSpeak's 22050 Hz is resampled).
        duration: seconds per clip.
        rate: speaking rate range, words per minute.
        pitch: base pitch range (0..99, 50 is the variant's own).
        pitch_range: pitch variation range (0..99).
        snr_db: range of the speech-to-noise ratio in dB; None for no noise.
        reverb_prob: share of clips given room reverberation.
        rt60: range of the reverberation time, seconds.
    """
    vocabulary = list(words) if words else list(WORDS)
    if len(set(vocabulary)) != len(vocabulary) or not all(
        isinstance(w, str) and w.strip() for w in vocabulary
    ):
        raise ConfigError(f"words must be distinct, non-empty strings; got {vocabulary}")
    if num_per_word < 1:
        raise ConfigError(f"num_per_word must be >= 1; got {num_per_word}")
    if sample_rate < 8000 or duration < 0.5:
        raise ConfigError(
            f"need sample_rate >= 8000 and duration >= 0.5 s; got {sample_rate}, {duration}"
        )
    voice = _VoiceSetup.check(
        voices, accents, val_fraction, test_fraction, sample_rate, rate, pitch, pitch_range
    )
    chosen, accent_list, splits, ranges = voice.voices, voice.accents, voice.splits, voice.ranges
    augment = _augment(sample_rate, snr_db, reverb_prob, rt60)
    params = voice.params("words", seed, words=vocabulary, num_per_word=num_per_word)

    def plan() -> list[dict[str, Any]]:
        rows = []
        for variant in sorted(chosen):
            for word in vocabulary:
                for k in range(num_per_word):
                    rng = np.random.default_rng([seed, _name_seed(variant), _name_seed(word), k])
                    rows.append(
                        {
                            "text": word,
                            "variant": variant,
                            "split": splits[variant],
                            **_prosody(rng, *ranges.values(), accent_list),
                        }
                    )
        return rows

    utterances = _load_or_generate("spoken_words", params, plan, sample_rate)
    num_samples = int(round(duration * sample_rate))
    longer = sum(1 for row in utterances.index if row["length"] > num_samples)
    if longer:
        _logger.warning(
            "spoken_words: %d of %d words are longer than %.2f s and are cut; raise duration "
            "or the speaking rate",
            longer,
            len(utterances.index),
            duration,
        )
    rows = _split_rows(utterances)
    datasets = _split_datasets(
        rows,
        lambda ids, s: SpokenWordsDataset(
            utterances, ids, s, seed, num_samples, augment, vocabulary
        ),
    )
    info = {
        "task": "classification",
        "num_classes": len(vocabulary),
        "classes": vocabulary,
        "sample_rate": sample_rate,
        "num_samples": num_samples,
        **_voice_info(utterances, rows),
    }
    return DataBundle(datasets["train"], datasets["val"], datasets["test"], info)


@register_dataset("spoken_digits")
def spoken_digits(
    *,
    num_per_voice: int = 40,
    min_digits: int = 1,
    max_digits: int = 5,
    labels: str = "digits",
    voices: Sequence[str] | None = None,
    accents: Sequence[str] | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    sample_rate: int = 16000,
    rate: Sequence[float] = (130, 230),
    pitch: Sequence[float] = (25, 75),
    pitch_range: Sequence[float] = (20, 80),
    snr_db: Sequence[float] | None = (5.0, 30.0),
    reverb_prob: float = 0.5,
    rt60: Sequence[float] = (0.1, 0.6),
) -> DataBundle:
    """Continuous digit strings ("four one seven") for CTC recognition, split by voice.

    Batches (from ``collate_fn``, as for ``dtmf_ctc``) are ``(waveforms (B, N), lengths
    (B,), targets (B, L), target_lengths (B,))``. With ``labels="digits"`` a target is one
    id per digit (``itos = ["<blank>", "0", ..., "9"]``); with ``labels="chars"`` it is
    the characters of the spoken words with spaces between them (``itos = ["<blank>",
    " ", "e", "f", ...]``). The blank is id 0. Each split's ``rows[i]["digits"]`` is item
    i's digit string (and ``rows[i]["text"]`` the words spoken).

    Args:
        num_per_voice: utterances per voice variant (81 variants by default: 3,240).
        min_digits: fewest digits in a string.
        max_digits: most digits in a string.
        labels: ``"digits"`` or ``"chars"``.
        seed: the digit strings, their renderings and the augmentation.

    The voice, split, prosody and augmentation keywords (``voices``, ``accents``,
    ``val_fraction``, ``test_fraction``, ``sample_rate``, ``rate``, ``pitch``,
    ``pitch_range``, ``snr_db``, ``reverb_prob``, ``rt60``) mean what they mean for
    :func:`spoken_words`, per utterance instead of per clip.
    """
    if num_per_voice < 1:
        raise ConfigError(f"num_per_voice must be >= 1; got {num_per_voice}")
    if not 1 <= min_digits <= max_digits <= 20:
        raise ConfigError(
            f"need 1 <= min_digits <= max_digits <= 20; got {min_digits}, {max_digits}"
        )
    if labels not in ("digits", "chars"):
        raise ConfigError(f"labels must be 'digits' or 'chars'; got {labels!r}")
    if sample_rate < 8000:
        raise ConfigError(f"need sample_rate >= 8000; got {sample_rate}")
    voice = _VoiceSetup.check(
        voices, accents, val_fraction, test_fraction, sample_rate, rate, pitch, pitch_range
    )
    chosen, accent_list, splits, ranges = voice.voices, voice.accents, voice.splits, voice.ranges
    augment = _augment(sample_rate, snr_db, reverb_prob, rt60)
    params = voice.params(
        "digits", seed, num_per_voice=num_per_voice, min_digits=min_digits, max_digits=max_digits
    )

    def plan() -> list[dict[str, Any]]:
        rows = []
        for variant in sorted(chosen):
            for k in range(num_per_voice):
                rng = np.random.default_rng([seed, _name_seed(variant), k])
                n = int(rng.integers(min_digits, max_digits + 1))
                digits = "".join(str(d) for d in rng.integers(0, 10, size=n))
                rows.append(
                    {
                        "text": " ".join(DIGIT_WORDS[int(d)] for d in digits),
                        "digits": digits,
                        "variant": variant,
                        "split": splits[variant],
                        **_prosody(rng, *ranges.values(), accent_list),
                    }
                )
        return rows

    utterances = _load_or_generate("spoken_digits", params, plan, sample_rate)
    if labels == "digits":
        itos = ["<blank>", *"0123456789"]

        def encode(digits: str) -> list[int]:
            return [1 + int(d) for d in digits]
    else:
        itos = ["<blank>", " ", *sorted(set("".join(DIGIT_WORDS)))]
        stoi = {c: i for i, c in enumerate(itos)}

        def encode(digits: str) -> list[int]:
            return [stoi[c] for c in " ".join(DIGIT_WORDS[int(d)] for d in digits)]

    rows = _split_rows(utterances)
    datasets = _split_datasets(
        rows,
        lambda ids, s: SpokenDigitsDataset(utterances, ids, s, seed, augment, encode, sample_rate),
    )
    info = {
        "task": "ctc",
        "sample_rate": sample_rate,
        "vocab_size": len(itos),
        "itos": itos,
        "blank_id": 0,
        "labels": labels,
        **_voice_info(utterances, rows),
    }
    return DataBundle(datasets["train"], datasets["val"], datasets["test"], info, collate_ctc)


def _prosody_ranges(rate, pitch, pitch_range) -> dict[str, tuple[float, float]]:
    return {
        "rate": _check_range("rate", rate, 80, 450),
        "pitch": _check_range("pitch", pitch, 0, 99),
        "pitch_range": _check_range("pitch_range", pitch_range, 0, 99),
    }


def _augment(sample_rate, snr_db, reverb_prob, rt60) -> _Augment:
    if not 0 <= reverb_prob <= 1:
        raise ConfigError(f"reverb_prob must be in [0, 1]; got {reverb_prob}")
    snr = None if snr_db is None else _check_range("snr_db", snr_db, -30, 100)
    return _Augment(sample_rate, snr, reverb_prob, _check_range("rt60", rt60, 0.01, 3.0))


def _voice_info(utterances: _Utterances, rows: dict[str, list[int]]) -> dict[str, Any]:
    manifest = utterances.manifest
    return {
        "voices": {
            s: sorted({utterances.index[i]["variant"] for i in ids}) for s, ids in rows.items()
        },
        "sizes": {s: len(ids) for s, ids in rows.items()},
        "espeak_ng": manifest["espeak_ng"],
        "data_dir": str(utterances.folder),
        "generation_seconds": manifest["generation_seconds"],
    }
