"""The audio family: the mel front end, classifiers, CTC models, torchaudio parity, and the
generated audio datasets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import modelzoo as mz
from modelzoo.data import build_data
from modelzoo.data.audio import (
    DTMF_KEYPAD,
    DTMFConfig,
    collate_ctc,
    dtmf_frequencies,
    synthesize_dtmf,
)
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.audio import CTCOutput, MelFrontend, Wav2Vec2, greedy_decode
from modelzoo.train import Trainer
from modelzoo.train.tasks import ClassificationTask

torchaudio = pytest.importorskip("torchaudio")
soundfile = pytest.importorskip("soundfile")

SR = 8000  # small rates and models keep the tests fast


# --- the front end -------------------------------------------------------------------------


def test_frontend_shapes_and_frame_count() -> None:
    frontend = MelFrontend(sample_rate=SR, n_mels=32)
    assert (frontend.n_fft, frontend.hop_length) == (200, 80)  # 25 ms windows, 10 ms hops
    x = torch.randn(3, 4000)
    feats, frames = frontend(x)
    assert feats.shape == (3, 32, 4000 // 80 + 1) and frames is None
    same, _ = frontend(x.unsqueeze(1))  # (B, 1, N) is accepted too
    torch.testing.assert_close(same, feats)
    _, frames = frontend(x, torch.tensor([4000, 1000, 79]))
    assert frames.tolist() == [51, 13, 1]


def test_frontend_is_torchaudio_log_mel_spectrogram() -> None:
    frontend = MelFrontend(sample_rate=SR, n_mels=32, normalize=False)
    reference = torchaudio.transforms.MelSpectrogram(
        SR, n_fft=200, hop_length=80, n_mels=32, norm="slaney"
    )
    x = torch.randn(2, 3000)
    feats, _ = frontend(x)
    torch.testing.assert_close(feats, torch.log(reference(x) + 1e-6), rtol=1e-4, atol=1e-4)


def test_frontend_normalizes_valid_frames_and_zeroes_padding() -> None:
    frontend = MelFrontend(sample_rate=SR, n_mels=16)
    x = torch.randn(2, 4000) * torch.tensor([[0.01], [3.0]])  # very different levels
    x[1, 2000:] = 0.0
    feats, frames = frontend(x, torch.tensor([4000, 2000]))
    for row, n in zip(feats, frames.tolist()):
        valid = row[:, :n]
        torch.testing.assert_close(valid.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
        torch.testing.assert_close(valid.std(unbiased=False), torch.tensor(1.0), atol=1e-3, rtol=0)
        assert (row[:, n:] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_frontend_runs_in_the_models_dtype(dtype: torch.dtype) -> None:
    # FFTs do not run in bfloat16: the front end computes in float32 and casts back.
    model = mz.create("audio_cnn", sample_rate=SR, n_mels=16, channels=(4, 8), num_classes=3)
    x = torch.randn(2, 2000)
    expected = model.eval()(x)
    model = model.to(dtype)
    out = model(x.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, rtol=0.1, atol=0.1)
    frontend = MelFrontend(sample_rate=SR, n_mels=16, normalize=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats, _ = frontend(x)
    # autocast does not reach the spectrogram: float32 values, not bfloat16 ones
    torch.testing.assert_close(feats, frontend(x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_frontend_runs_on_the_models_device() -> None:
    model = mz.create("ctc_lstm", sample_rate=SR, hidden_size=8, num_layers=1).cuda().eval()
    x = torch.randn(2, 2000)
    out = model(x.cuda(), torch.tensor([2000, 1000]).cuda())
    assert out.log_probs.is_cuda
    reference = model.cpu()(x, torch.tensor([2000, 1000]))
    torch.testing.assert_close(out.log_probs.cpu(), reference.log_probs, rtol=1e-3, atol=1e-3)


def test_spec_augment_masks_only_in_training() -> None:
    torch.manual_seed(0)
    frontend = MelFrontend(sample_rate=SR, n_mels=32, spec_augment=True, freq_mask=8)
    plain = MelFrontend(sample_rate=SR, n_mels=32)
    x = torch.randn(4, 4000)
    torch.testing.assert_close(frontend.eval()(x)[0], plain(x)[0])
    masked, _ = frontend.train()(x)
    rows_zeroed = (masked == 0).all(dim=2).sum(dim=1)  # whole mel bands set to zero
    assert (rows_zeroed > 0).any()


@pytest.mark.parametrize(
    "shape, dtype, match",
    [
        ((4000,), torch.float32, r"unsqueeze\(0\)"),
        ((2, 2, 4000), torch.float32, r"x.mean\(dim=1\)"),
        ((2, 1, 1, 4000), torch.float32, "got shape"),
        ((2, 4000), torch.int16, "float waveforms"),
        ((2, 50), torch.float32, "at least 101 samples"),
    ],
)
def test_bad_waveforms_raise_input_shape_error(shape, dtype, match: str) -> None:
    model = mz.create("audio_lstm", sample_rate=SR, n_mels=16, hidden_size=8, num_layers=1)
    with pytest.raises(InputShapeError, match=match):
        model(torch.zeros(shape, dtype=dtype))


def test_bad_lengths_raise_input_shape_error() -> None:
    model = mz.create("ctc_lstm", sample_rate=SR, hidden_size=8, num_layers=1)
    x = torch.randn(2, 1000)
    with pytest.raises(InputShapeError, match=r"shape \(2,\)"):
        model(x, torch.tensor([1000]))
    with pytest.raises(InputShapeError, match=r"lengths in \[1, 1000\]"):
        model(x, torch.tensor([1000, 1001]))


# --- models --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("audio_cnn", dict(n_mels=32, channels=(8, 16, 16))),
        ("audio_lstm", dict(n_mels=32, hidden_size=16, num_layers=1)),
        ("audio_lstm", dict(n_mels=32, hidden_size=16, num_layers=2, pool="last")),
    ],
)
def test_classifier_shapes(name: str, kwargs: dict) -> None:
    model = mz.create(name, num_classes=5, sample_rate=SR, **kwargs).eval()
    x = torch.randn(3, 4000)
    assert model(x).shape == (3, 5)
    pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    assert pooled.shape == (3, model.num_features)
    model.reset_classifier(0)
    torch.testing.assert_close(model(x), pooled)


def test_audio_cnn_features_follow_feature_info() -> None:
    extractor = mz.create(
        "audio_cnn", features_only=True, sample_rate=SR, n_mels=32, channels=(8, 16, 16)
    )
    features = extractor(torch.randn(2, 4000))  # a 32 x 51 log-mel image
    for info, feature in zip(extractor.feature_info, features):
        assert feature.shape[1] == info["num_chs"]
        assert feature.shape[2] == math.ceil(32 / info["reduction"])
        assert feature.shape[3] == math.ceil(51 / info["reduction"])


def test_audio_lstm_pools_only_valid_frames() -> None:
    torch.manual_seed(0)
    model = mz.create("audio_lstm", sample_rate=SR, n_mels=16, hidden_size=8, num_layers=1)
    model.eval()
    x = torch.randn(2, 4000)
    lengths = torch.tensor([4000, 2000])
    padded = model(x, lengths)
    # Whatever follows a waveform's end leaves its result alone (up to the last frames,
    # whose windows reach past the end: compare against a zero-padded copy).
    x2 = x.clone()
    x2[1, 2000 + 200 :] = 100.0
    torch.testing.assert_close(model(x2, lengths), padded)


@pytest.mark.parametrize(
    "name, kwargs, steps",
    [
        ("ctc_lstm", dict(hidden_size=16, num_layers=1, frame_stride=2), lambda f: (f + 1) // 2),
        (
            "conformer_ctc",
            dict(n_mels=32, d_model=16, num_layers=1, num_heads=2, ffn_dim=32, kernel_size=3),
            lambda f: ((f - 1) // 2) // 2 + 1,
        ),
    ],
)
def test_ctc_models_give_log_probs_and_output_lengths(name: str, kwargs: dict, steps) -> None:
    model = mz.create(name, vocab_size=7, sample_rate=SR, **kwargs).eval()
    x = torch.randn(2, 4000)
    lengths = torch.tensor([4000, 1500])
    out = model(x, lengths)
    assert isinstance(out, CTCOutput)
    frames = lengths // 80 + 1
    assert out.lengths.tolist() == [steps(int(f)) for f in frames]
    assert out.log_probs.shape == (2, int(out.lengths.max()), 7)
    torch.testing.assert_close(out.log_probs.exp().sum(-1), torch.ones(2, out.log_probs.shape[1]))
    assert model(x).lengths is None


def test_wav2vec2_matches_torchaudio() -> None:
    """Same keys as torchaudio's Wav2Vec2Model; with its weights, log_softmax of its logits."""
    config = dict(
        extractor_mode="group_norm",
        extractor_conv_layer_config=[(16, 10, 5), (16, 3, 2), (16, 2, 2)],
        extractor_conv_bias=False,
        encoder_embed_dim=32,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=8,
        encoder_pos_conv_groups=4,
        encoder_num_layers=2,
        encoder_num_heads=4,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=64,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=False,
        encoder_layer_drop=0.0,
    )
    reference = torchaudio.models.wav2vec2_model(aux_num_out=9, **config).eval()
    ours = Wav2Vec2(vocab_size=9, **config).eval()
    ours.load_state_dict(reference.state_dict())
    x, lengths = torch.randn(2, 3000), torch.tensor([3000, 1800])
    with torch.no_grad():
        logits, ref_lengths = reference(x, lengths)
        out = ours(x, lengths)
    torch.testing.assert_close(out.log_probs, logits.log_softmax(-1))
    assert torch.equal(out.lengths, ref_lengths)
    # the registered Base configuration has torchaudio's keys and shapes
    with torch.device("meta"):
        base = mz.create("wav2vec2_base", vocab_size=29)
        ref_base = torchaudio.models.wav2vec2_base(aux_num_out=29)
    assert {k: v.shape for k, v in base.state_dict().items()} == {
        k: v.shape for k, v in ref_base.state_dict().items()
    }


def test_wav2vec2_without_head_returns_frame_features() -> None:
    model = Wav2Vec2(
        vocab_size=None,
        extractor_conv_layer_config=[(8, 10, 5), (8, 3, 2)],
        encoder_embed_dim=16,
        encoder_pos_conv_kernel=4,
        encoder_pos_conv_groups=2,
        encoder_num_layers=1,
        encoder_num_heads=2,
        encoder_ff_interm_features=32,
    ).eval()
    out = model(torch.randn(2, 1000))
    assert out.features.shape == (2, 99, 16)  # (1000 - 10) // 5 + 1 = 199, (199 - 3) // 2 + 1
    layers, _ = model.extract_features(torch.randn(2, 1000))
    assert len(layers) == 1
    with pytest.raises(InputShapeError, match="at least 20 samples"):  # the receptive field
        model(torch.randn(2, 10))


def test_conformer_layers_match_torchaudio_forward() -> None:
    """Running the layers with our own padding mask equals Conformer.forward (exportable)."""
    torch.manual_seed(0)
    model = mz.create(
        "conformer_ctc",
        sample_rate=SR,
        n_mels=32,
        d_model=16,
        num_layers=2,
        num_heads=2,
        ffn_dim=32,
        kernel_size=3,
    ).eval()
    x, lengths = torch.randn(2, 4000), torch.tensor([4000, 2400])
    with torch.no_grad():
        ours = model.encode(x, lengths)
        feats, frames = model.frontend(x, lengths)
        hidden = model.input_proj(model.subsample(feats))
        reference, _ = model.encoder(hidden, ours.lengths)
    torch.testing.assert_close(ours.features, reference)


def test_greedy_decode_collapses_repeats_and_drops_blanks() -> None:
    best = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 0, 2, 2, 2, 0, 2, 1, 1]])
    log_probs = F.one_hot(best, 4).float().log_softmax(-1)  # (2, 9, 4)
    assert greedy_decode(log_probs) == [[1, 1, 2, 3], [2, 2, 1]]
    assert greedy_decode(log_probs, torch.tensor([4, 6])) == [[1, 1], [2]]
    assert greedy_decode(log_probs, itos=["-", "a", "b", "c"]) == ["aabc", "bba"]


# --- a short real learning run -------------------------------------------------------------


def test_audio_cnn_learns_tones_well_above_chance() -> None:
    data = build_data("tones", n_train=320, n_val=96, n_test=0, sample_rate=SR, duration=0.8)
    torch.manual_seed(0)
    model = mz.create("audio_cnn", num_classes=8, sample_rate=SR, n_mels=32, channels=(8, 16, 32))
    config = dict(epochs=4, lr=1e-2, seed=0, progress=False, plots=False, tensorboard=False)
    trainer = Trainer(ClassificationTask(model), config, batch_size=32)
    metrics = trainer.fit(data.train, data.val)
    assert metrics["accuracy"] > 0.4  # chance is 1/8


# --- data ----------------------------------------------------------------------------------


def test_dtmf_keys_peak_at_their_two_frequencies() -> None:
    cfg = DTMFConfig(sample_rate=SR, tone_ms=(200.0, 200.0), gap_ms=(1.0, 1.0))
    for row in DTMF_KEYPAD:
        for key in row:
            wave = synthesize_dtmf(key, cfg, np.random.default_rng(0), noise=False).numpy()
            spectrum = np.abs(np.fft.rfft(wave, n=8 * len(wave)))
            freqs = np.fft.rfftfreq(8 * len(wave), 1 / SR)
            low, high = dtmf_frequencies(key)
            low_band, high_band = freqs < 1100, freqs >= 1100
            assert abs(freqs[low_band][spectrum[low_band].argmax()] - low) < 0.02 * low, key
            assert abs(freqs[high_band][spectrum[high_band].argmax()] - high) < 0.02 * high, key
            # nothing else comes close: the peaks are the two tones, not noise or harmonics
            peaks = (
                freqs[low_band][spectrum[low_band].argmax()],
                freqs[high_band][spectrum[high_band].argmax()],
            )
            far = (np.abs(freqs - peaks[0]) > 40) & (np.abs(freqs - peaks[1]) > 40)
            assert spectrum[far].max() < 0.1 * spectrum.max(), key


def test_dtmf_dataset_is_deterministic_and_transcribed() -> None:
    a = build_data("dtmf_ctc", n_train=8, n_val=4, n_test=4, sample_rate=SR, seed=3)
    b = build_data("dtmf_ctc", n_train=8, n_val=4, n_test=4, sample_rate=SR, seed=3)
    other = build_data("dtmf_ctc", n_train=8, n_val=4, n_test=4, sample_rate=SR, seed=4)
    for i in (5, 0, 7):  # any order gives the same item
        wave, target = a.train[i]
        assert torch.equal(wave, b.train[i][0]) and torch.equal(target, b.train[i][1])
    assert not torch.equal(a.train[0][0], a.val[0][0])
    assert not torch.equal(a.train[0][0][:100], other.train[0][0][:100])
    itos = a.info["itos"]
    assert itos[0] == "<blank>" and a.info["vocab_size"] == len(itos) == 13
    for i in range(8):
        wave, target = a.train[i]
        assert 1 <= len(target) <= 5 and int(target.min()) >= 1
        assert wave.dtype == torch.float32 and wave.abs().max() <= 0.9 + 1e-6
        # each key's tone dominates its own stretch: the transcript is in the audio
        keys = "".join(itos[t] for t in target.tolist())
        assert len(wave) > len(keys) * 0.05 * SR


def test_collate_ctc_pads_waveforms_and_targets() -> None:
    items = [(torch.ones(5), torch.tensor([3, 1])), (torch.ones(3), torch.tensor([2, 2, 4]))]
    waves, lengths, targets, target_lengths = collate_ctc(items)
    assert waves.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert lengths.tolist() == [5, 3] and target_lengths.tolist() == [2, 3]
    assert targets.tolist() == [[3, 1, 0], [2, 2, 4]]


def test_tones_are_balanced_fixed_length_and_deterministic() -> None:
    data = build_data("tones", n_train=16, n_val=8, n_test=8, sample_rate=SR, duration=0.8)
    assert data.info["num_classes"] == len(data.info["classes"]) == 8
    labels = [int(data.train[i][1]) for i in range(16)]
    assert sorted(labels) == sorted(list(range(8)) * 2)
    wave, _ = data.train[2]
    assert wave.shape == (int(0.8 * SR),)
    torch.testing.assert_close(wave, data.train[2][0], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="duration >= 0.8"):
        build_data("tones", duration=0.5)


def _write_folder(root: Path) -> None:
    t = np.arange(int(0.25 * SR)) / SR
    (root / "beep").mkdir(parents=True)
    (root / "hum").mkdir()
    soundfile.write(root / "beep" / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), SR)
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1)
    soundfile.write(root / "beep" / "b.flac", stereo, SR)
    for i in range(2):
        soundfile.write(root / "hum" / f"{i}.wav", 0.3 * np.sin(2 * np.pi * 60 * t), SR)
    (root / "hum" / "notes.txt").write_text("not audio")


def test_audio_folder_reads_resamples_and_pads(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    data = build_data(
        "audio_folder", root=str(tmp_path), sample_rate=16000, duration=0.5, val_fraction=0.0
    )
    assert data.info["classes"] == ["beep", "hum"] and data.info["num_classes"] == 2
    assert len(data.train) == 4 and data.val is None
    wave, label = data.train[0]  # beep/a.wav: 0.25 s at 8 kHz -> 4000 samples at 16 kHz
    assert int(label) == 0 and wave.shape == (8000,)
    assert (wave[4000:] == 0).all() and wave[:4000].abs().max() > 0.4
    spectrum = np.abs(np.fft.rfft(wave[:4000].numpy()))
    assert abs(np.fft.rfftfreq(4000, 1 / 16000)[spectrum.argmax()] - 440) < 8
    stereo, _ = data.train[1]  # channels are averaged
    torch.testing.assert_close(stereo.abs().max(), wave.abs().max() / 2, rtol=0.02, atol=0)
    cropped = build_data("audio_folder", root=str(tmp_path), sample_rate=SR, duration=0.1)
    assert cropped.train[0][0].shape == (int(0.1 * SR),)


def test_audio_folder_explains_a_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_data("audio_folder", root=str(tmp_path / "missing"))
    soundfile.write(tmp_path / "loose.wav", np.zeros(800), SR)
    with pytest.raises(ConfigError, match="no class subfolders"):
        build_data("audio_folder", root=str(tmp_path))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.wav").write_bytes(b"not a wav file")
    data = build_data("audio_folder", root=str(tmp_path), val_fraction=0.0)
    with pytest.raises(ConfigError, match="cannot read"):
        data.train[0]
