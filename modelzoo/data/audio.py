"""Audio datasets synthesized on the fly, and a loader for a user's folder of audio files.

- ``dtmf_ctc``: telephone keypad (DTMF) digit strings in noise, with their transcripts, for
  CTC speech recognition. Each key is the sum of one low-group and one high-group tone
  (ITU-T Q.23: 697/770/852/941 Hz and 1209/1336/1477/1633 Hz); durations, gaps, levels,
  the high/low level ratio ("twist"), a frequency error within Q.24's 1.5 % tolerance and
  the signal-to-noise ratio are drawn per key or per utterance.
- ``tones``: one-second clips of eight sound events (steady tone, rising and falling chirp,
  two and three beeps, warble, dual tone, click train) in noise, for audio classification.
  Telling two beeps from three, or a rise from a fall, needs the order of frames, not just
  the spectrum.
- ``audio_folder``: your own recordings, one subfolder per class, read with soundfile and
  resampled with torchaudio (both imported only when a file is read).

Items are generated from ``(seed, split, index)`` alone, so any process gets the same
waveforms for the same seed, in any order, without storing them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.data.digits import split_indices
from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.errors import ConfigError

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioFolderDataset",
    "DTMFDataset",
    "DTMF_KEYPAD",
    "TONE_CLASSES",
    "TonesDataset",
    "audio_folder",
    "collate_ctc",
    "dtmf_ctc",
    "dtmf_frequencies",
    "find_audio",
    "synthesize_dtmf",
    "tones",
]

_logger = logging.getLogger(__name__)

_SPLITS = {"train": 0, "val": 1, "test": 2}
BLANK = "<blank>"

# Rows are the low group, columns the high group (ITU-T Q.23).
DTMF_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_LOW_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH_HZ = (1209.0, 1336.0, 1477.0, 1633.0)


def dtmf_frequencies(key: str) -> tuple[float, float]:
    """The (low, high) tone frequencies of a keypad key, in Hz."""
    for row, keys in enumerate(DTMF_KEYPAD):
        if key in keys and len(key) == 1:
            return DTMF_LOW_HZ[row], DTMF_HIGH_HZ[keys.index(key)]
    raise ConfigError(f"{key!r} is not a DTMF key; the keys are {''.join(DTMF_KEYPAD)}")


def _check_range(name: str, value: Sequence[float], low: float = 0.0) -> tuple[float, float]:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ConfigError(
            f"{name} must be a range [min, max] with {low} <= min <= max; got {value}"
        )
    return float(value[0]), float(value[1])


def _envelope(n: int, sample_rate: int, ramp_ms: float = 5.0) -> np.ndarray:
    """Raised-cosine on and off ramps: a tone switched on abruptly would click (broadband)."""
    env = np.ones(n)
    r = min(int(sample_rate * ramp_ms / 1000), n // 2)
    if r > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(r) / r)
        env[:r] = ramp
        env[n - r :] = ramp[::-1]
    return env


def _add_noise(
    signal: np.ndarray, power: float, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """White Gaussian noise at ``snr_db`` below ``power`` (the mean power of the events)."""
    std = math.sqrt(power / 10 ** (snr_db / 10))
    return signal + rng.normal(0.0, std, size=signal.shape)


def _finish(signal: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Scale to a random peak level in [0.1, 0.9], as float32."""
    peak = float(np.abs(signal).max()) or 1.0
    return torch.from_numpy((signal * (rng.uniform(0.1, 0.9) / peak)).astype(np.float32))


# --- DTMF digit strings ------------------------------------------------------------------


@dataclass(frozen=True)
class DTMFConfig:
    sample_rate: int = 16000
    keys: str = "0123456789*#"  # the alphabet; token id = 1 + position (0 is the blank)
    min_digits: int = 1
    max_digits: int = 5
    tone_ms: tuple[float, float] = (50.0, 120.0)  # Q.24 asks receivers to accept >= 40 ms
    gap_ms: tuple[float, float] = (50.0, 120.0)
    snr_db: tuple[float, float] = (5.0, 30.0)
    twist_db: float = 4.0  # high-group level relative to the low group, within +-twist_db
    freq_error: float = 0.015  # relative frequency error, within +-freq_error (Q.24: 1.5 %)


def synthesize_dtmf(
    keys: str,
    config: DTMFConfig | None = None,
    rng: np.random.Generator | None = None,
    *,
    noise: bool = True,
) -> torch.Tensor:
    """A waveform (N,) float32 of ``keys`` dialled one after the other.

    Args:
        keys: the keys to dial, e.g. ``"0815#"``.
        config: durations, levels and noise (``DTMFConfig()`` by default).
        rng: the random source (a fixed seed by default).
        noise: add background noise at a random SNR from ``config.snr_db``.
    """
    cfg = config or DTMFConfig()
    rng = rng if rng is not None else np.random.default_rng(0)
    sr = cfg.sample_rate

    def samples(ms_range: tuple[float, float]) -> int:
        return max(1, int(sr * rng.uniform(*ms_range) / 1000))

    pieces = [np.zeros(samples(cfg.gap_ms))]
    powers = []
    for key in keys:
        low, high = dtmf_frequencies(key)
        n = samples(cfg.tone_ms)
        t = np.arange(n) / sr
        level = rng.uniform(0.3, 1.0)
        twist = 10 ** (rng.uniform(-cfg.twist_db, cfg.twist_db) / 20)
        error = 1 + rng.uniform(-cfg.freq_error, cfg.freq_error, size=2)
        phase = rng.uniform(0, 2 * np.pi, size=2)
        tone = np.sin(2 * np.pi * low * error[0] * t + phase[0])
        tone += twist * np.sin(2 * np.pi * high * error[1] * t + phase[1])
        tone *= level * _envelope(n, sr)
        powers.append(float(np.mean(tone**2)))
        pieces += [tone, np.zeros(samples(cfg.gap_ms))]
    signal = np.concatenate(pieces)
    if noise and powers:
        signal = _add_noise(signal, float(np.mean(powers)), rng.uniform(*cfg.snr_db), rng)
    return _finish(signal, rng)


class DTMFDataset(Dataset):
    """Random DTMF key strings in noise; items are ``(waveform (N,), target (L,))``.

    Targets are token ids ``1 + config.keys.index(key)`` (0 is the CTC blank); the
    waveform's length depends on the item.
    """

    def __init__(self, size: int, seed: int, split: str, config: DTMFConfig) -> None:
        self.size = size
        self.seed = seed
        self.split = split
        self.config = config

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} items")
        cfg = self.config
        rng = np.random.default_rng([self.seed, _SPLITS[self.split], index])
        n = int(rng.integers(cfg.min_digits, cfg.max_digits + 1))
        ids = rng.integers(0, len(cfg.keys), size=n)
        keys = "".join(cfg.keys[i] for i in ids)
        return synthesize_dtmf(keys, cfg, rng), torch.from_numpy(ids.astype(np.int64) + 1)


def collate_ctc(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad ``(waveform, target)`` items: ``(waveforms (B, N), lengths (B,), targets (B, L),
    target_lengths (B,))``, waveforms zero-padded, targets padded with the blank (0)."""
    waves = [w for w, _ in batch]
    targets = [t for _, t in batch]
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    pad = torch.nn.utils.rnn.pad_sequence
    return pad(waves, batch_first=True), lengths, pad(targets, batch_first=True), target_lengths


def _check_sizes(n_train: int, n_val: int, n_test: int) -> None:
    if n_train < 1 or n_val < 0 or n_test < 0:
        raise ConfigError(
            f"need n_train >= 1 and n_val, n_test >= 0; got n_train={n_train}, n_val={n_val}, "
            f"n_test={n_test}"
        )


@register_dataset("dtmf_ctc")
def dtmf_ctc(
    *,
    n_train: int = 4000,
    n_val: int = 400,
    n_test: int = 400,
    seed: int = 0,
    sample_rate: int = 16000,
    keys: str = "0123456789*#",
    min_digits: int = 1,
    max_digits: int = 5,
    tone_ms: Sequence[float] = (50.0, 120.0),
    gap_ms: Sequence[float] = (50.0, 120.0),
    snr_db: Sequence[float] = (5.0, 30.0),
) -> DataBundle:
    """Dialled DTMF key strings in noise, with their transcripts, for CTC recognition.

    Batches (from ``collate_fn``) are ``(waveforms (B, N), lengths (B,), targets (B, L),
    target_lengths (B,))``. ``info`` gives ``vocab_size`` (keys + the blank),
    ``itos`` (``itos[0]`` is the blank) and ``sample_rate``.

    Args:
        n_train: training utterances.
        n_val: validation utterances.
        n_test: test utterances.
        seed: the data's seed.
        sample_rate: samples per second (at least 4 kHz: the highest tone is 1633 Hz).
        keys: the keys dialled, a subset of ``123A456B789C*0#D``.
        min_digits: fewest keys per utterance.
        max_digits: most keys per utterance.
        tone_ms: range of a key's duration, in milliseconds.
        gap_ms: range of the silence before, between and after keys.
        snr_db: range of the signal-to-noise ratio, in dB.
    """
    _check_sizes(n_train, n_val, n_test)
    if sample_rate < 4000:
        raise ConfigError(
            f"dtmf_ctc needs sample_rate >= 4000 (tones up to 1633 Hz); got {sample_rate}"
        )
    if not keys or len(set(keys)) != len(keys):
        raise ConfigError(f"keys must be distinct DTMF keys; got {keys!r}")
    for key in keys:
        dtmf_frequencies(key)
    if not 1 <= min_digits <= max_digits:
        raise ConfigError(f"need 1 <= min_digits <= max_digits; got {min_digits}, {max_digits}")
    cfg = DTMFConfig(
        sample_rate=sample_rate,
        keys=keys,
        min_digits=min_digits,
        max_digits=max_digits,
        tone_ms=_check_range("tone_ms", tone_ms, low=1.0),
        gap_ms=_check_range("gap_ms", gap_ms, low=1.0),
        snr_db=_check_range("snr_db", snr_db, low=-math.inf),
    )
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {s: DTMFDataset(n, seed, s, cfg) if n else None for s, n in sizes.items()}
    info = {
        "task": "ctc",
        "sample_rate": sample_rate,
        "vocab_size": len(keys) + 1,
        "itos": [BLANK, *keys],
        "blank_id": 0,
    }
    return DataBundle(splits["train"], splits["val"], splits["test"], info, collate_ctc)


# --- sound events ------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _sine(freq: np.ndarray | float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sine of constant or per-sample instantaneous frequency ``freq`` (Hz)."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(freq, (n,))) / sr
    return np.sin(phase + rng.uniform(0, 2 * np.pi))


def _steady(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(sr * rng.uniform(0.3, 0.7))
    return _sine(_log_uniform(rng, 300, 3000), n, sr, rng) * _envelope(n, sr, 10)


def _chirp(rng: np.random.Generator, sr: int, rising: bool) -> np.ndarray:
    n = int(sr * rng.uniform(0.3, 0.7))
    f0 = _log_uniform(rng, 300, 1200)
    f1 = f0 * rng.uniform(1.5, 2.5)
    freq = np.linspace(f0, f1, n) if rising else np.linspace(f1, f0, n)
    return _sine(freq, n, sr, rng) * _envelope(n, sr, 10)


def _beeps(rng: np.random.Generator, sr: int, count: int) -> np.ndarray:
    freq = _log_uniform(rng, 300, 3000)
    pieces = []
    for i in range(count):
        n = int(sr * rng.uniform(0.06, 0.15))
        pieces.append(_sine(freq, n, sr, rng) * _envelope(n, sr))
        if i < count - 1:
            pieces.append(np.zeros(int(sr * rng.uniform(0.06, 0.15))))
    return np.concatenate(pieces)


def _warble(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(sr * rng.uniform(0.3, 0.7))
    base = _log_uniform(rng, 400, 2500)
    rate, depth = rng.uniform(5, 12), rng.uniform(0.05, 0.15)
    freq = base * (1 + depth * np.sin(2 * np.pi * rate * np.arange(n) / sr))
    return _sine(freq, n, sr, rng) * _envelope(n, sr, 10)


def _dual_tone(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(sr * rng.uniform(0.3, 0.7))
    f1 = _log_uniform(rng, 300, 1200)
    f2 = f1 * rng.uniform(1.3, 2.5)
    return (_sine(f1, n, sr, rng) + _sine(f2, n, sr, rng)) * 0.5 * _envelope(n, sr, 10)


def _click_train(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(sr * rng.uniform(0.3, 0.7))
    period = int(sr / rng.uniform(20, 60))
    decay = np.exp(-np.arange(int(sr * 0.002)) / (sr * 0.0005))  # 2 ms clicks
    signal = np.zeros(n)
    for start in range(0, n - len(decay), period):
        signal[start : start + len(decay)] += decay * rng.choice((-1.0, 1.0))
    return signal


TONE_CLASSES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "steady": _steady,
    "rising": lambda rng, sr: _chirp(rng, sr, rising=True),
    "falling": lambda rng, sr: _chirp(rng, sr, rising=False),
    "two_beeps": lambda rng, sr: _beeps(rng, sr, 2),
    "three_beeps": lambda rng, sr: _beeps(rng, sr, 3),
    "warble": _warble,
    "dual_tone": _dual_tone,
    "click_train": _click_train,
}


class TonesDataset(Dataset):
    """Clips of one sound event each; items are ``(waveform (num_samples,), label)``.

    Labels cycle through the classes (item i has class i mod num_classes), so every split
    is balanced; the event's parameters, onset and noise are random per item.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        split: str,
        sample_rate: int,
        num_samples: int,
        snr_db: tuple[float, float],
    ) -> None:
        self.size = size
        self.seed = seed
        self.split = split
        self.sample_rate = sample_rate
        self.num_samples = num_samples
        self.snr_db = snr_db
        self.classes = list(TONE_CLASSES)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for {self.size} items")
        rng = np.random.default_rng([self.seed, _SPLITS[self.split], index])
        label = index % len(self.classes)
        event = TONE_CLASSES[self.classes[label]](rng, self.sample_rate)
        event = event[: self.num_samples] * rng.uniform(0.3, 1.0)
        signal = np.zeros(self.num_samples)
        start = int(rng.integers(0, self.num_samples - len(event) + 1))
        signal[start : start + len(event)] = event
        power = float(np.mean(event**2)) or 1e-8
        signal = _add_noise(signal, power, rng.uniform(*self.snr_db), rng)
        return _finish(signal, rng), torch.tensor(label, dtype=torch.long)


@register_dataset("tones")
def tones(
    *,
    n_train: int = 2000,
    n_val: int = 400,
    n_test: int = 400,
    seed: int = 0,
    sample_rate: int = 16000,
    duration: float = 1.0,
    snr_db: Sequence[float] = (5.0, 25.0),
) -> DataBundle:
    """Eight classes of sound events in noise: steady, rising, falling, two_beeps,
    three_beeps, warble, dual_tone, click_train (``info["classes"]``).

    Items are ``(waveform, label)``: float32 (duration * sample_rate,) and an int64 class;
    events last 0.3 to 0.7 s and start at a random time in the clip.

    Args:
        n_train: training clips.
        n_val: validation clips.
        n_test: test clips.
        seed: the data's seed.
        sample_rate: samples per second (at least 8 kHz: events reach 3 kHz).
        duration: seconds per clip (at least 0.8: the longest event fits).
        snr_db: range of the event-to-noise ratio, in dB.
    """
    _check_sizes(n_train, n_val, n_test)
    if sample_rate < 8000:
        raise ConfigError(
            f"tones needs sample_rate >= 8000 (events reach 3 kHz); got {sample_rate}"
        )
    if duration < 0.8:
        raise ConfigError(f"tones needs duration >= 0.8 s so every event fits; got {duration}")
    num_samples = int(round(duration * sample_rate))
    snr = _check_range("snr_db", snr_db, low=-math.inf)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {
        s: TonesDataset(n, seed, s, sample_rate, num_samples, snr) if n else None
        for s, n in sizes.items()
    }
    info = {
        "task": "classification",
        "num_classes": len(TONE_CLASSES),
        "classes": list(TONE_CLASSES),
        "sample_rate": sample_rate,
        "num_samples": num_samples,
    }
    return DataBundle(splits["train"], splits["val"], splits["test"], info)


# --- a folder of the user's audio --------------------------------------------------------

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")

_LAYOUT = (
    "Lay the folder out as root/<class_name>/<file>, one subfolder per class, e.g. "
    "root/yes/001.wav and root/no/001.flac (extensions: " + ", ".join(AUDIO_EXTENSIONS) + ")."
)


def find_audio(root: str | Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted subfolder names) and ``(path, class_index)`` pairs.

    Files are listed per class in sorted order; hidden files and folders are skipped, as
    are class folders without audio files.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        what = "does not exist" if not base.exists() else "is a file, not a folder"
        raise ConfigError(f"audio_folder: root {base} {what}. {_LAYOUT}")
    classes: list[str] = []
    samples: list[tuple[Path, int]] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in AUDIO_EXTENSIONS
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not files:
            _logger.warning("audio_folder: skipping %s, which holds no audio files", folder)
            continue
        samples.extend((f, len(classes)) for f in files)
        classes.append(folder.name)
    if not classes:
        loose = [p.name for p in base.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS][:3]
        found = (
            f" It holds audio files directly ({', '.join(loose)}, ...) but no class subfolders."
            if loose
            else ""
        )
        raise ConfigError(
            f"audio_folder: found no audio files in class subfolders of {base}.{found} {_LAYOUT}"
        )
    return classes, samples


def load_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """A file as a mono float32 waveform (N,) at ``sample_rate`` (channels averaged)."""
    try:
        import soundfile
    except ImportError as err:  # pragma: no cover - a dependency of modelzoo
        raise ConfigError("reading audio files needs soundfile: pip install soundfile") from err
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (N, channels)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise ConfigError(f"audio_folder: cannot read {path} as audio: {err}") from err
    wave = torch.from_numpy(data.mean(axis=1))
    if rate != sample_rate:
        import torchaudio

        wave = torchaudio.functional.resample(wave, rate, sample_rate)
    return wave


class AudioFolderDataset(Dataset):
    """Audio files read on access as float32 (num_samples,) mono waveforms, with labels.

    Each file is averaged to mono, resampled to ``sample_rate`` and cut to
    ``num_samples`` (its start kept) or zero-padded at the end.
    """

    def __init__(self, samples: list[tuple[Path, int]], sample_rate: int, num_samples: int) -> None:
        self.samples = samples
        self.sample_rate = sample_rate
        self.num_samples = num_samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.samples[index]
        wave = load_audio(path, self.sample_rate)[: self.num_samples]
        wave = torch.nn.functional.pad(wave, (0, self.num_samples - len(wave)))
        return wave, torch.tensor(label, dtype=torch.long)


@register_dataset("audio_folder")
def audio_folder(
    *,
    root: str,
    sample_rate: int = 16000,
    duration: float = 1.0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> DataBundle:
    """Your own recordings, one subfolder per class: ``root/<class_name>/<file>``.

    Files (.wav, .flac, .ogg) are read with soundfile, mixed down to mono, resampled with
    ``torchaudio.functional.resample`` and cut or zero-padded to ``duration`` seconds.
    Classes are the sorted subfolder names; each class's files are split by ``seed``.
    Items are ``(waveform, label)``: float32 (duration * sample_rate,) and an int64 label.

    Args:
        root: the folder that holds the class subfolders.
        sample_rate: the rate every file is resampled to.
        duration: seconds kept per file (from its start).
        val_fraction: share of each class held out for validation.
        test_fraction: share of each class held out for testing (0: no test split).
        seed: the split's seed.
    """
    if sample_rate < 1 or duration <= 0:
        raise ConfigError(
            f"need sample_rate >= 1 and duration > 0; got sample_rate={sample_rate}, "
            f"duration={duration}"
        )
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"need val_fraction, test_fraction >= 0 with a sum below 1; got "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    classes, samples = find_audio(root)
    labels = np.array([label for _, label in samples], dtype=np.int64)
    test_idx, val_idx, train_idx = split_indices(labels, [test_fraction, val_fraction], seed)
    if len(train_idx) == 0:
        raise ConfigError(f"audio_folder: no training files left in {root}; lower val_fraction")
    num_samples = int(round(duration * sample_rate))

    def subset(idx: np.ndarray) -> AudioFolderDataset | None:
        if len(idx) == 0:
            return None
        return AudioFolderDataset([samples[i] for i in idx], sample_rate, num_samples)

    info = {
        "task": "classification",
        "num_classes": len(classes),
        "classes": classes,
        "sample_rate": sample_rate,
        "num_samples": num_samples,
        "root": str(Path(root).expanduser()),
    }
    _logger.info("audio_folder: %d files of %d classes in %s", len(samples), len(classes), root)
    return DataBundle(subset(train_idx), subset(val_idx), subset(test_idx), info)
