"""Audio: a log-mel front end, audio classifiers, and CTC speech recognizers.

Every model takes raw waveforms, (B, num_samples) or (B, 1, num_samples) at its
``sample_rate``; the features are computed inside the model, on its device, so a
checkpoint carries its own preprocessing.

- Stevens, Volkmann & Newman, "A scale for the measurement of the psychological magnitude
  pitch", JASA 1937 (the mel scale); Davis & Mermelstein, "Comparison of parametric
  representations for monosyllabic word recognition", IEEE TASSP 1980 (mel filterbanks).
- Park et al., "SpecAugment: a simple data augmentation method for automatic speech
  recognition", Interspeech 2019 (time and frequency masking).
- Hershey et al., "CNN architectures for large-scale audio classification", ICASSP 2017
  (``audio_cnn``: a CNN over the log-mel image).
- Graves, Fernández, Gomez & Schmidhuber, "Connectionist temporal classification", ICML
  2006; Graves, Mohamed & Hinton, "Speech recognition with deep recurrent neural
  networks", ICASSP 2013 (``ctc_lstm``, ``audio_lstm``).
- Gulati et al., "Conformer: convolution-augmented Transformer for speech recognition",
  Interspeech 2020 (``conformer_ctc``, its layers from ``torchaudio.models.Conformer``).
- Baevski et al., "wav2vec 2.0: a framework for self-supervised learning of speech
  representations", NeurIPS 2020 (``wav2vec2_base``, built by torchaudio).

torchaudio is imported only when a model is built, so ``import modelzoo`` and the
registry stay light. ``wav2vec2_base`` and ``conformer_ctc`` keep torchaudio's
state-dict keys (``feature_extractor.*``/``encoder.*``/``aux.*`` and
``encoder.conformer_layers.*``), so torchaudio weights load without remapping.

CTC models return ``CTCOutput(log_probs, lengths)`` with the blank at index 0;
:func:`greedy_decode` turns that into token ids or strings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers.checkpointing import GradCheckpointing, run_block
from modelzoo.layers.checks import autocast_enabled
from modelzoo.layers.helpers import LayerType, get_act_layer, model_name
from modelzoo.layers.recurrent import Recurrent, check_lengths
from modelzoo.layers.specs import TensorSpec
from modelzoo.layers.tracing import graph_leaf
from modelzoo.registry import register_model

__all__ = [
    "AudioCNN",
    "AudioLSTM",
    "CTCLSTM",
    "CTCOutput",
    "ConformerCTC",
    "FrameOutput",
    "MelFrontend",
    "Wav2Vec2",
    "check_waveforms",
    "greedy_decode",
]

_logger = logging.getLogger(__name__)

_PAPERS = {
    "cnn": "Hershey et al., CNN architectures for large-scale audio classification, ICASSP 2017",
    "lstm": "Graves et al., Speech recognition with deep recurrent neural networks, ICASSP 2013",
    "ctc": "Graves et al., Connectionist temporal classification: labelling unsegmented sequence "
    "data with recurrent neural networks, ICML 2006",
    "conformer": "Gulati et al., Conformer: convolution-augmented Transformer for speech "
    "recognition, Interspeech 2020",
    "wav2vec2": "Baevski et al., wav2vec 2.0: a framework for self-supervised learning of speech "
    "representations, NeurIPS 2020",
}

# Example inputs of the registrations: half a second keeps the contract tests fast.
_EXAMPLE_SECONDS = 0.5
_EPS = 1e-6  # floor of the mel energies before the log: silence maps to log(1e-6), not -inf


@graph_leaf  # branches on the input's shape, which FX symbolic tracing cannot
def check_waveforms(x: torch.Tensor, *, model: str, min_samples: int = 1) -> torch.Tensor:
    """Check a batch of mono waveforms and return it as (B, num_samples).

    Args:
        x: (B, num_samples) or (B, 1, num_samples) float samples.
        model: the model's name, for the message.
        min_samples: the shortest waveform the model can process.

    Raises:
        InputShapeError: another shape, several channels, an integer dtype, or too few samples.
    """
    got = tuple(x.shape)  # for messages only: int() would pin a symbolic batch size
    want = "(B, num_samples) or (B, 1, num_samples)"
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 3:
        raise InputShapeError(
            f"{model} expects mono waveforms of shape {want}; got {x.shape[1]} channels in "
            f"shape {got}. Mix them down with x.mean(dim=1)."
        )
    elif x.ndim != 2:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.ndim == 1 else ""
        raise InputShapeError(f"{model} expects waveforms of shape {want}; got shape {got}.{hint}")
    if not x.is_floating_point():
        raise InputShapeError(
            f"{model} expects float waveforms (samples in [-1, 1]); got dtype {x.dtype}. "
            "Scale integer PCM, e.g. x.float() / 32768 for int16."
        )
    if x.shape[-1] < min_samples:
        raise InputShapeError(
            f"{model} needs waveforms of at least {min_samples} samples; got shape {got}. "
            "Pad the audio with zeros."
        )
    return x


def _check_sample_lengths(
    lengths: torch.Tensor | Sequence[int] | None, x: torch.Tensor, model: str
) -> torch.Tensor | None:
    if lengths is None:
        return None
    lengths = check_lengths(lengths, batch_size=x.shape[0], max_len=x.shape[1], model=model)
    return lengths.to(x.device)


def _padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) valid lengths -> (B, max_len) bool, True at padded steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


@graph_leaf  # branches on dtype and autocast, which FX symbolic tracing cannot
def _log_mel(
    x: torch.Tensor, window: torch.Tensor, fb: torch.Tensor, n_fft: int, hop_length: int
) -> torch.Tensor:
    """log(mel power + 1e-6) of (B, N) waveforms: (B, n_mels, T), in float32 (float64 for
    float64 inputs) with autocast off, since FFTs do not run in half precision."""
    import torchaudio

    if autocast_enabled(x.device.type):
        with torch.autocast(x.device.type, enabled=False):
            return _log_mel(x, window, fb, n_fft, hop_length)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    spec = torchaudio.functional.spectrogram(
        x.to(work),
        pad=0,
        window=window.to(work),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=window.shape[0],
        power=2.0,
        normalized=False,
    )  # (B, n_fft // 2 + 1, T)
    mel = torch.matmul(spec.transpose(1, 2), fb.to(work)).transpose(1, 2)  # (B, n_mels, T)
    return torch.log(mel + _EPS)


# --- the front end ---------------------------------------------------------------------------


class MelFrontend(nn.Module):
    """Waveforms to log-mel spectrograms, as a layer of the model.

    The filterbank and window are those of ``torchaudio.transforms.MelSpectrogram``
    (power spectrum, Slaney-normalized HTK mel filters, centered frames); the output is
    ``log(mel + 1e-6)``. The spectrogram is computed in float32 (float64 for float64
    models) with autocast off, since FFTs do not run in half precision; the result is
    cast back to the input's dtype.

    Frames are ``hop_length`` samples apart and centered, so a waveform of N samples
    gives ``N // hop_length + 1`` frames.

    Args:
        sample_rate: samples per second of the input.
        n_mels: mel bands.
        n_fft: FFT size and window length in samples (default: 25 ms).
        hop_length: samples between frames (default: 10 ms).
        f_min: lowest frequency of the filterbank, in Hz.
        f_max: highest frequency (default: sample_rate / 2).
        normalize: scale each utterance's log-mel to zero mean and unit variance over all
            bins of its valid frames (removes the recording level, keeps the spectral shape).
        spec_augment: in training mode, mask 2 random bands of up to ``freq_mask`` mel bins
            and 2 random spans of up to ``time_mask`` frames per utterance (SpecAugment).
        freq_mask: widest frequency mask, in mel bins.
        time_mask: longest time mask, in frames.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 64,
        n_fft: int | None = None,
        hop_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        normalize: bool = True,
        spec_augment: bool = False,
        freq_mask: int = 8,
        time_mask: int = 10,
    ) -> None:
        super().__init__()
        import torchaudio

        n_fft = n_fft or round(0.025 * sample_rate)
        hop_length = hop_length or round(0.010 * sample_rate)
        f_max = sample_rate / 2 if f_max is None else f_max
        if sample_rate < 1 or n_mels < 1 or n_fft < 2 or hop_length < 1:
            raise ConfigError(
                f"the mel front end needs sample_rate >= 1, n_mels >= 1, n_fft >= 2 and "
                f"hop_length >= 1; got sample_rate={sample_rate}, n_mels={n_mels}, "
                f"n_fft={n_fft}, hop_length={hop_length}"
            )
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ConfigError(
                f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2}; got "
                f"f_min={f_min}, f_max={f_max}"
            )
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.normalize = normalize
        # torchaudio computes the filterbank with a value check that meta tensors cannot
        # answer: build it on the CPU, then move it where the model is being built.
        with torch.device("cpu"):
            mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate,
                n_fft=n_fft,
                hop_length=hop_length,
                f_min=f_min,
                f_max=f_max,
                n_mels=n_mels,
                power=2.0,
                norm="slaney",
            )
            # The periodic window is a view into a longer tensor; safetensors refuses to
            # save views that do not cover their storage.
            mel.spectrogram.window = mel.spectrogram.window.clone()
        self.mel = mel.to(torch.get_default_device())
        self.spec_augment = (
            torchaudio.transforms.SpecAugment(
                n_time_masks=2,
                time_mask_param=time_mask,
                n_freq_masks=2,
                freq_mask_param=freq_mask,
                iid_masks=True,
                zero_masking=True,  # zero is the mean of a normalized utterance
            )
            if spec_augment
            else None
        )

    @property
    def min_samples(self) -> int:
        """The shortest waveform accepted: centered frames reflect-pad n_fft // 2 samples."""
        return self.n_fft // 2 + 1

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames of waveforms of ``lengths`` samples."""
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, n_fft={self.n_fft}, "
            f"hop_length={self.hop_length}, normalize={self.normalize}"
        )

    def _log_mel(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.mel.spectrogram
        return _log_mel(x, spec.window, self.mel.mel_scale.fb, self.n_fft, self.hop_length)

    def _normalize(self, feats: torch.Tensor, frames: torch.Tensor | None) -> torch.Tensor:
        if frames is None:
            mean = feats.mean(dim=(1, 2), keepdim=True)
            var = feats.var(dim=(1, 2), keepdim=True, unbiased=False)
            return (feats - mean) * torch.rsqrt(var + 1e-5)
        keep = (~_padding_mask(frames, feats.shape[-1]))[:, None, :].to(feats.dtype)  # (B, 1, T)
        count = frames.to(feats.dtype)[:, None, None] * feats.shape[1]
        mean = (feats * keep).sum(dim=(1, 2), keepdim=True) / count
        var = ((feats - mean).square() * keep).sum(dim=(1, 2), keepdim=True) / count
        # Padded frames become exactly zero, so they add nothing to later sums.
        return (feats - mean) * torch.rsqrt(var + 1e-5) * keep

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-mel features (B, n_mels, T) and the valid frames per utterance (None without
        ``lengths``).

        Args:
            waveforms: (B, num_samples) or (B, 1, num_samples), zero-padded on the right.
            lengths: valid samples per waveform (B,), each in [1, num_samples].
        """
        name = model_name(self, "mel front end")
        x = check_waveforms(waveforms, model=name, min_samples=self.min_samples)
        lengths = _check_sample_lengths(lengths, x, name)
        feats = self._log_mel(x)
        frames = None if lengths is None else self.num_frames(lengths)
        if self.normalize:
            feats = self._normalize(feats, frames)
        if self.training and self.spec_augment is not None:
            feats = self.spec_augment(feats.unsqueeze(1)).squeeze(1)  # masks per utterance
        return feats.to(x.dtype), frames


def _frontend_args(
    sample_rate: int, n_mels: int, spec_augment: bool, frontend: dict[str, Any] | None
) -> dict[str, Any]:
    args = dict(sample_rate=sample_rate, n_mels=n_mels, spec_augment=spec_augment)
    return dict(args, **(frontend or {}))


# --- outputs and decoding ------------------------------------------------------------------


class CTCOutput(NamedTuple):
    """What a CTC speech recognizer returns."""

    log_probs: torch.Tensor  # (B, T', vocab_size): log-probabilities per frame, blank = 0
    lengths: torch.Tensor | None  # (B,) valid frames of each row; None without input lengths


class FrameOutput(NamedTuple):
    """What an audio encoder without an output head returns."""

    features: torch.Tensor  # (B, T', C): one feature vector per frame
    lengths: torch.Tensor | None  # (B,) valid frames of each row; None without input lengths


def greedy_decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | Sequence[int] | None = None,
    *,
    blank: int = 0,
    itos: Sequence[str] | None = None,
) -> list[list[int]] | list[str]:
    """Best-path CTC decoding: the most likely token per frame, repeats collapsed, blanks
    dropped.

    Args:
        log_probs: (B, T, vocab_size) scores (log-probabilities or logits).
        lengths: valid frames per row (B,); frames after them are ignored.
        blank: the blank token's id.
        itos: token strings by id; when given, each row is joined into a string.

    Returns:
        One list of token ids per row, or one string per row with ``itos``.
    """
    if log_probs.ndim != 3:
        raise InputShapeError(
            f"greedy_decode expects scores of shape (B, T, vocab_size); got shape "
            f"{tuple(log_probs.shape)}."
        )
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    B, T = best.shape
    if lengths is None:
        lengths = [T] * B
    lengths = [int(n) for n in torch.as_tensor(lengths).cpu()]
    if len(lengths) != B:
        raise InputShapeError(f"greedy_decode got {len(lengths)} lengths for {B} rows.")
    out: list[list[int]] = []
    for row, n in zip(best.tolist(), lengths, strict=True):
        tokens, previous = [], None
        for token in row[:n]:
            if token != previous and token != blank:
                tokens.append(token)
            previous = token
        out.append(tokens)
    if itos is None:
        return out
    return ["".join(itos[t] for t in tokens) for tokens in out]


# --- classifiers ---------------------------------------------------------------------------


class AudioCNN(nn.Module):
    """A small 2-D CNN over the log-mel image: stages of conv 3x3, batch norm, activation and
    2x2 max pooling, global average pooling, a linear head.

    ``forward_features`` returns the last stage's map (B, C, n_mels / 2^S, frames / 2^S);
    ``feature_info`` lists each stage, with ``reduction`` relative to the log-mel image
    (frames and mel bins).

    Args:
        num_classes: output classes; 0 makes the head an identity.
        sample_rate: samples per second of the input.
        n_mels: mel bands of the front end.
        channels: output channels of each stage.
        drop_rate: dropout before the head.
        act_layer: activation type.
        spec_augment: SpecAugment masking in training mode.
        frontend: further ``MelFrontend`` arguments (n_fft, hop_length, f_min, ...).
    """

    def __init__(
        self,
        num_classes: int = 10,
        sample_rate: int = 16000,
        n_mels: int = 64,
        channels: Sequence[int] = (32, 64, 128, 256),
        drop_rate: float = 0.0,
        act_layer: LayerType = nn.ReLU,
        spec_augment: bool = False,
        frontend: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not channels:
            raise ConfigError("audio_cnn needs at least one stage in channels")
        act = get_act_layer(act_layer)
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.frontend = MelFrontend(**_frontend_args(sample_rate, n_mels, spec_augment, frontend))
        stages, in_chs = [], 1
        for out_chs in channels:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out_chs),
                    act(),
                    # ceil_mode keeps a 1-wide map 1 wide, so short clips still pass.
                    nn.MaxPool2d(2, ceil_mode=True),
                )
            )
            in_chs = out_chs
        self.stages = nn.Sequential(*stages)
        self.num_features = in_chs
        self.feature_info = [
            dict(num_chs=c, reduction=2 ** (i + 1), module=f"stages.{i}")
            for i, c in enumerate(channels)
        ]
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(in_chs, num_classes) if num_classes else nn.Identity()

    def forward_features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (B, C, F', T')."""
        feats, _ = self.frontend(waveforms)  # (B, n_mels, T)
        return self.stages(feats.unsqueeze(1))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x.mean(dim=(2, 3)))  # global average over frequency and time
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) for waveforms (B, num_samples) or (B, 1, num_samples)."""
        return self.forward_head(self.forward_features(waveforms))


class AudioLSTM(nn.Module):
    """A (bidirectional) LSTM over log-mel frames, pooled into one vector and classified.

    With ``lengths`` (valid samples per waveform), padded frames are skipped by the LSTM
    and left out of the pooling.

    Args:
        num_classes: output classes; 0 makes the head an identity.
        sample_rate: samples per second of the input.
        n_mels: mel bands of the front end (the LSTM's input size).
        hidden_size: LSTM state size per direction.
        num_layers: stacked LSTM layers.
        bidirectional: also read the frames backwards.
        drop_rate: dropout between LSTM layers and before the head.
        pool: ``"mean"`` over valid frames, or ``"last"`` (the final states).
        spec_augment: SpecAugment masking in training mode.
        frontend: further ``MelFrontend`` arguments (n_fft, hop_length, f_min, ...).
    """

    def __init__(
        self,
        num_classes: int = 10,
        sample_rate: int = 16000,
        n_mels: int = 64,
        hidden_size: int = 128,
        num_layers: int = 2,
        bidirectional: bool = True,
        drop_rate: float = 0.0,
        pool: str = "mean",
        spec_augment: bool = False,
        frontend: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if pool not in ("mean", "last"):
            raise ConfigError(f"pool must be 'mean' or 'last'; got {pool!r}")
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.pool = pool
        self.frontend = MelFrontend(**_frontend_args(sample_rate, n_mels, spec_augment, frontend))
        self.rnn = Recurrent(
            "lstm",
            self.frontend.n_mels,
            hidden_size,
            num_layers,
            bidirectional=bidirectional,
            dropout=drop_rate if num_layers > 1 else 0.0,
        )
        self.num_features = self.rnn.output_size
        self.feature_info: list[dict[str, Any]] = []  # one pooled vector, no feature maps
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """Pooled features (B, num_features)."""
        feats, frames = self.frontend(waveforms, lengths)  # (B, n_mels, T)
        out, state = self.rnn(feats.transpose(1, 2), frames)  # out: (B, T, D * H)
        if self.pool == "mean":
            if frames is None:
                return out.mean(dim=1)
            # The LSTM's outputs are zero at padded frames: the sum covers valid ones only.
            return out.sum(dim=1) / frames.to(out.dtype)[:, None]
        h = state[0][-self.rnn.num_directions :]  # (D, B, H): the top layer, forward first
        return h.transpose(0, 1).reshape(out.shape[0], self.num_features)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> torch.Tensor:
        """Logits (B, num_classes); ``lengths`` are the valid samples per waveform."""
        return self.forward_head(self.forward_features(waveforms, lengths))


# --- CTC recognizers -----------------------------------------------------------------------


class CTCLSTM(nn.Module):
    """Log-mel front end, frame stacking, a (bidirectional) LSTM and a linear layer to the
    vocabulary (blank = 0), trained with CTC.

    Stacking ``frame_stride`` consecutive frames into one step shortens the sequence the
    LSTM reads (10 ms frames become 20 ms steps at the default 2); CTC needs at least one
    output step per target token, plus one between repeated tokens.

    Args:
        vocab_size: output tokens including the blank at 0 (default 29: torchaudio's English
            character set of its wav2vec 2.0 ASR pipelines).
        sample_rate: samples per second of the input.
        n_mels: mel bands of the front end.
        frame_stride: frames stacked into one LSTM step.
        hidden_size: LSTM state size per direction.
        num_layers: stacked LSTM layers.
        bidirectional: also read the frames backwards.
        drop_rate: dropout between LSTM layers and before the output layer.
        spec_augment: SpecAugment masking in training mode.
        frontend: further ``MelFrontend`` arguments (n_fft, hop_length, f_min, ...).
    """

    def __init__(
        self,
        vocab_size: int = 29,
        sample_rate: int = 16000,
        n_mels: int = 64,
        frame_stride: int = 2,
        hidden_size: int = 256,
        num_layers: int = 3,
        bidirectional: bool = True,
        drop_rate: float = 0.1,
        spec_augment: bool = False,
        frontend: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ConfigError(f"vocab_size counts the blank and >= 1 token; got {vocab_size}")
        if frame_stride < 1:
            raise ConfigError(f"frame_stride must be >= 1; got {frame_stride}")
        self.vocab_size = vocab_size
        self.sample_rate = sample_rate
        self.frame_stride = frame_stride
        self.frontend = MelFrontend(**_frontend_args(sample_rate, n_mels, spec_augment, frontend))
        self.rnn = Recurrent(
            "lstm",
            self.frontend.n_mels * frame_stride,
            hidden_size,
            num_layers,
            bidirectional=bidirectional,
            dropout=drop_rate if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.rnn.output_size, vocab_size)

    def _stack(
        self, feats: torch.Tensor, frames: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        s = self.frame_stride
        x = feats.transpose(1, 2)  # (B, T, n_mels)
        if s == 1:
            return x, frames
        B, T, M = x.shape
        steps = -(-T // s)
        x = F.pad(x, (0, 0, 0, steps * s - T))  # zero frames up to a multiple of s
        x = x.reshape(B, steps, s * M)  # (B, T / s, s * n_mels)
        return x, None if frames is None else torch.div(frames + s - 1, s, rounding_mode="floor")

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> CTCOutput:
        """Per-step log-probabilities (B, T', vocab_size) and, given ``lengths`` (valid samples
        per waveform), the valid steps per row."""
        feats, frames = self.frontend(waveforms, lengths)  # (B, n_mels, T)
        x, steps = self._stack(feats, frames)
        out, _ = self.rnn(x, steps)  # (B, T', D * H)
        return CTCOutput(self.head(self.drop(out)).log_softmax(dim=-1), steps)


class _ConvSubsampling(nn.Module):
    """Two 3x3 convolutions of stride 2 over the log-mel image: 4x fewer frames and bins."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )

    @staticmethod
    def out_size(n: int | torch.Tensor) -> Any:
        for _ in range(2):
            n = (n - 1) // 2 + 1  # kernel 3, stride 2, padding 1
        return n

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.conv(feats.unsqueeze(1))  # (B, C, n_mels / 4, T / 4)
        B, C, M, T = x.shape
        return x.permute(0, 3, 1, 2).reshape(B, T, C * M)  # (B, T / 4, C * n_mels / 4)


class ConformerCTC(GradCheckpointing, nn.Module):
    """Log-mel front end, 4x convolutional subsampling, Conformer layers
    (``torchaudio.models.Conformer``) and a linear layer to the vocabulary (blank = 0).

    ``set_grad_checkpointing(True)`` recomputes each Conformer layer in backward instead of
    storing its activations (training only; see ``modelzoo.layers.checkpointing``).

    The layers are run one by one with a padding mask built here rather than through
    ``Conformer.forward``, which reads the longest length as a Python number and so
    cannot be exported; the result is the same. As in torchaudio, the layers'
    depthwise convolutions do not mask padding, so padded frames can shift the frames
    next to them slightly.

    Args:
        vocab_size: output tokens including the blank at 0.
        sample_rate: samples per second of the input.
        n_mels: mel bands of the front end.
        d_model: Conformer width.
        num_layers: Conformer layers.
        num_heads: attention heads.
        ffn_dim: hidden width of the feed-forward modules.
        kernel_size: depthwise convolution kernel (odd).
        drop_rate: dropout in the layers and after the input projection.
        spec_augment: SpecAugment masking in training mode.
        frontend: further ``MelFrontend`` arguments (n_fft, hop_length, f_min, ...).
    """

    def __init__(
        self,
        vocab_size: int = 29,
        sample_rate: int = 16000,
        n_mels: int = 80,
        d_model: int = 144,
        num_layers: int = 16,
        num_heads: int = 4,
        ffn_dim: int = 576,
        kernel_size: int = 31,
        drop_rate: float = 0.1,
        spec_augment: bool = False,
        frontend: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        import torchaudio

        if vocab_size < 2:
            raise ConfigError(f"vocab_size counts the blank and >= 1 token; got {vocab_size}")
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd (same padding); got {kernel_size}")
        if d_model % num_heads:
            raise ConfigError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.vocab_size = vocab_size
        self.sample_rate = sample_rate
        self.frontend = MelFrontend(**_frontend_args(sample_rate, n_mels, spec_augment, frontend))
        self.subsample = _ConvSubsampling(d_model)
        self.input_proj = nn.Linear(d_model * _ConvSubsampling.out_size(n_mels), d_model)
        self.input_drop = nn.Dropout(drop_rate)
        self.encoder = torchaudio.models.Conformer(
            input_dim=d_model,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            depthwise_conv_kernel_size=kernel_size,
            dropout=drop_rate,
        )
        self.head = nn.Linear(d_model, vocab_size)

    def encode(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> FrameOutput:
        """Conformer outputs (B, T', d_model), T' about a quarter of the front end's frames."""
        feats, frames = self.frontend(waveforms, lengths)  # (B, n_mels, T)
        x = self.input_drop(self.input_proj(self.subsample(feats)))  # (B, T', d_model)
        steps = None if frames is None else _ConvSubsampling.out_size(frames)
        mask = None if steps is None else _padding_mask(steps, x.shape[1])  # True = padding
        x = x.transpose(0, 1)  # (T', B, d_model): torchaudio's layers are time-first
        checkpointing = self.grad_checkpointing_active()
        for layer in self.encoder.conformer_layers:
            x = run_block(layer, x, mask, checkpointing=checkpointing)
        return FrameOutput(x.transpose(0, 1), steps)

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> CTCOutput:
        """Per-step log-probabilities (B, T', vocab_size) and, given ``lengths`` (valid samples
        per waveform), the valid steps per row."""
        x, steps = self.encode(waveforms, lengths)
        return CTCOutput(self.head(x).log_softmax(dim=-1), steps)


class Wav2Vec2(nn.Module):
    """wav2vec 2.0, built by ``torchaudio.models.wav2vec2_model``: a convolutional feature
    extractor (20 ms frames, 25 ms receptive field) and a Transformer encoder, with an
    optional linear CTC head.

    The submodules are torchaudio's own (``feature_extractor``, ``encoder``, ``aux``), so
    state dicts of ``torchaudio.models.Wav2Vec2Model`` (e.g. of torchaudio's pipelines)
    load as they are. With a head, ``forward`` returns ``CTCOutput`` (log-softmax of
    torchaudio's logits, blank = 0); without (``vocab_size=None``) ``FrameOutput`` with
    the encoder's features. The model expects 16 kHz audio.

    Args: as ``torchaudio.models.wav2vec2_model``, with ``vocab_size`` for ``aux_num_out``.
    ``encoder_layer_drop`` (LayerDrop) defaults to 0 rather than torchaudio's 0.1: a layer
    skipped at random leaves its parameters without gradients, which breaks the zoo's
    contract that a training step reaches every parameter; pass 0.1 to fine-tune as in
    the paper.
    """

    sample_rate = 16000

    def __init__(
        self,
        vocab_size: int | None = 29,
        extractor_mode: str = "group_norm",
        extractor_conv_layer_config: list[tuple[int, int, int]] | None = None,
        extractor_conv_bias: bool = False,
        encoder_embed_dim: int = 768,
        encoder_projection_dropout: float = 0.1,
        encoder_pos_conv_kernel: int = 128,
        encoder_pos_conv_groups: int = 16,
        encoder_num_layers: int = 12,
        encoder_num_heads: int = 12,
        encoder_attention_dropout: float = 0.1,
        encoder_ff_interm_features: int = 3072,
        encoder_ff_interm_dropout: float = 0.1,
        encoder_dropout: float = 0.1,
        encoder_layer_norm_first: bool = False,
        encoder_layer_drop: float = 0.0,
    ) -> None:
        super().__init__()
        import torchaudio

        model = torchaudio.models.wav2vec2_model(
            extractor_mode=extractor_mode,
            extractor_conv_layer_config=extractor_conv_layer_config,
            extractor_conv_bias=extractor_conv_bias,
            encoder_embed_dim=encoder_embed_dim,
            encoder_projection_dropout=encoder_projection_dropout,
            encoder_pos_conv_kernel=encoder_pos_conv_kernel,
            encoder_pos_conv_groups=encoder_pos_conv_groups,
            encoder_num_layers=encoder_num_layers,
            encoder_num_heads=encoder_num_heads,
            encoder_attention_dropout=encoder_attention_dropout,
            encoder_ff_interm_features=encoder_ff_interm_features,
            encoder_ff_interm_dropout=encoder_ff_interm_dropout,
            encoder_dropout=encoder_dropout,
            encoder_layer_norm_first=encoder_layer_norm_first,
            encoder_layer_drop=encoder_layer_drop,
            aux_num_out=vocab_size or None,
        )
        self.vocab_size = vocab_size or 0
        self.num_features = encoder_embed_dim
        self.feature_extractor = model.feature_extractor
        self.encoder = model.encoder
        self.aux = model.aux
        # The input length below which the convolutions have no complete frame.
        self.min_samples = self._receptive_field(extractor_conv_layer_config)

    @staticmethod
    def _receptive_field(config: list[tuple[int, int, int]] | None) -> int:
        config = config or [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
        field, jump = 1, 1
        for _, kernel, stride in config:
            field += (kernel - 1) * jump
            jump *= stride
        return field

    def _extract(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        name = model_name(self, "wav2vec2")
        x = check_waveforms(waveforms, model=name, min_samples=self.min_samples)
        return self.feature_extractor(x, _check_sample_lengths(lengths, x, name))

    def extract_features(
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | Sequence[int] | None = None,
        num_layers: int | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The outputs of the first ``num_layers`` (default all) encoder layers, each
        (B, T', encoder_embed_dim), and the valid frames per row."""
        x, frames = self._extract(waveforms, lengths)
        return self.encoder.extract_features(x, frames, num_layers), frames

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None
    ) -> CTCOutput | FrameOutput:
        """``CTCOutput`` (with a head) or ``FrameOutput`` for 16 kHz waveforms; ``lengths`` are
        the valid samples per waveform."""
        x, frames = self._extract(waveforms, lengths)
        x = self.encoder(x, frames)  # (B, T', encoder_embed_dim)
        if self.aux is None:
            return FrameOutput(x, frames)
        return CTCOutput(self.aux(x).log_softmax(dim=-1), frames)


# --- builders ------------------------------------------------------------------------------


def _waveform_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    return (TensorSpec((int(model.sample_rate * _EXAMPLE_SECONDS),), name="waveforms"),)


def _register(kind: str, task: str) -> Any:
    return register_model(family="audio", task=task, inputs=_waveform_inputs, paper=_PAPERS[kind])


@_register("cnn", "audio_classification")
def audio_cnn(*, num_classes: int = 10, sample_rate: int = 16000, **kwargs: Any) -> AudioCNN:
    """Four conv stages (32, 64, 128, 256 channels) over a 64-band log-mel image.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(
        num_classes=num_classes, sample_rate=sample_rate, n_mels=64, channels=(32, 64, 128, 256)
    )
    return AudioCNN(**dict(model_args, **kwargs))


@_register("lstm", "audio_classification")
def audio_lstm(*, num_classes: int = 10, sample_rate: int = 16000, **kwargs: Any) -> AudioLSTM:
    """Two bidirectional LSTM layers of 128 over 64 log-mel bands, mean-pooled.

    Dropout keywords: ``drop_rate`` is dropout before the classifier and between LSTM layers.
    """
    model_args = dict(
        num_classes=num_classes,
        sample_rate=sample_rate,
        n_mels=64,
        hidden_size=128,
        num_layers=2,
        bidirectional=True,
    )
    return AudioLSTM(**dict(model_args, **kwargs))


@_register("ctc", "speech_recognition")
def ctc_lstm(*, vocab_size: int = 29, sample_rate: int = 16000, **kwargs: Any) -> CTCLSTM:
    """Three bidirectional LSTM layers of 256 over pairs of 64-band log-mel frames, CTC.

    Dropout keywords: ``drop_rate`` is dropout between LSTM layers and before the output layer.
    """
    model_args = dict(
        vocab_size=vocab_size,
        sample_rate=sample_rate,
        n_mels=64,
        frame_stride=2,
        hidden_size=256,
        num_layers=3,
        bidirectional=True,
    )
    return CTCLSTM(**dict(model_args, **kwargs))


@_register("conformer", "speech_recognition")
def conformer_ctc(*, vocab_size: int = 29, sample_rate: int = 16000, **kwargs: Any) -> ConformerCTC:
    """Conformer-S with a CTC head: 16 layers of width 144, 4 heads, kernel 31, 80 mel bands.

    Dropout keywords: ``drop_rate`` is dropout in the layers and after the input projection.
    """
    model_args = dict(
        vocab_size=vocab_size,
        sample_rate=sample_rate,
        n_mels=80,
        d_model=144,
        num_layers=16,
        num_heads=4,
        ffn_dim=576,
        kernel_size=31,
    )
    return ConformerCTC(**dict(model_args, **kwargs))


@_register("wav2vec2", "speech_recognition")
def wav2vec2_base(*, vocab_size: int | None = 29, **kwargs: Any) -> Wav2Vec2:
    """wav2vec 2.0 Base (12 layers of 768, 94M parameters), torchaudio's configuration, with a
    CTC head over ``vocab_size`` tokens (None: the encoder alone)."""
    model_args = dict(
        vocab_size=vocab_size,
        extractor_mode="group_norm",
        encoder_embed_dim=768,
        encoder_num_layers=12,
        encoder_num_heads=12,
        encoder_ff_interm_features=3072,
    )
    return Wav2Vec2(**dict(model_args, **kwargs))
