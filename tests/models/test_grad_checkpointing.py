"""Gradient checkpointing: same outputs and gradients, fewer stored activations, recipe key."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import modelzoo as mz
from modelzoo.config import TrainConfig
from modelzoo.errors import ConfigError
from modelzoo.layers import checkpointing
from modelzoo.train import Trainer
from modelzoo.train.tasks import ClassificationTask

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "grad_checkpointing_memory.py"


def _tokens(shape: tuple[int, ...], vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def _resnet() -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], int]:
    # Bottlenecks with projection shortcuts (BatchNorm in both branches) and dropout.
    model = mz.create("resnet50", layers=(1, 2), widths=(8, 16), num_classes=5, drop_rate=0.2)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    return model, lambda m: m(x).logsumexp(-1).sum(), 3


def _vit() -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], int]:
    model = mz.create(
        "vit_tiny_patch4_32", depth=3, drop_path_rate=0.2, proj_drop_rate=0.1, attn_drop_rate=0.1
    )
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return model, lambda m: m(x).logsumexp(-1).sum(), 3


def _gpt() -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], int]:
    model = mz.create("gpt_nano", num_layers=3, drop_rate=0.1, attn_drop_rate=0.1)
    tokens = _tokens((2, 24), 256, 0)
    return model, lambda m: m(tokens[:, :-1], tokens[:, 1:]).loss, 3


def _seq2seq() -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], int]:
    model = mz.create(
        "transformer_seq2seq", d_model=32, num_layers=2, num_heads=2, d_ff=64, max_len=32
    )
    src, tgt = _tokens((2, 12), 256, 1), _tokens((2, 9), 256, 2)
    src_mask = torch.zeros(2, 12, dtype=torch.bool)
    src_mask[1, 8:] = True  # padding in one row: the masks go through the checkpoint too
    return model, lambda m: m(src, tgt, src_padding_mask=src_mask).logsumexp(-1).sum(), 4


def _encoder_classifier() -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], int]:
    model = mz.create(
        "transformer_encoder_classifier", d_model=32, num_layers=2, num_heads=2, d_ff=64
    )
    tokens = _tokens((3, 10), 256, 3)
    lengths = torch.tensor([10, 7, 4])
    return model, lambda m: m(tokens, lengths=lengths).logsumexp(-1).sum(), 2


def _conformer() -> tuple[nn.Module, Callable[[nn.Module], torch.Tensor], int]:
    # The Conformer's convolution module holds a BatchNorm1d.
    model = mz.create(
        "conformer_ctc",
        n_mels=40,
        d_model=32,
        num_layers=2,
        num_heads=2,
        ffn_dim=64,
        kernel_size=7,
    )
    wave = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    return model, lambda m: m(wave, lengths=[4000, 3000]).log_probs.logsumexp(-1).sum(), 2


CASES = {
    "resnet": _resnet,
    "vit": _vit,
    "gpt": _gpt,
    "transformer_seq2seq": _seq2seq,
    "transformer_encoder_classifier": _encoder_classifier,
    "conformer": _conformer,
}


class _CountCheckpoints:
    """Counts the blocks that go through torch's checkpoint, calling the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = checkpointing.checkpoint

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(checkpointing, "checkpoint", counting)


@pytest.mark.parametrize("family", list(CASES))
def test_same_outputs_gradients_and_running_stats(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    plain, loss_of, blocks = CASES[family]()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    assert ckpt.grad_checkpointing and not plain.grad_checkpointing
    plain.train()
    ckpt.train()
    counter = _CountCheckpoints(monkeypatch)

    results = []
    for model in (plain, ckpt):
        torch.manual_seed(1)  # the same dropout masks, if the recomputation keeps them
        loss = loss_of(model)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    assert counter.calls == blocks  # every block checkpointed, once (the plain model: none)

    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_b, loss_a, atol=1e-6, rtol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name, grad in grads_a.items():
        assert grad is not None, name
        torch.testing.assert_close(grads_b[name], grad, atol=1e-6, rtol=1e-5, msg=name)
    # BatchNorm's running statistics move once per step, not again in the recomputation.
    for (name, a), b in zip(plain.named_buffers(), ckpt.buffers(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-7, rtol=1e-6, msg=name)


@pytest.mark.parametrize("family", ["resnet", "gpt"])
def test_eval_and_no_grad_run_the_plain_forward(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    plain, loss_of, _ = CASES[family]()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    counter = _CountCheckpoints(monkeypatch)
    plain.eval()
    ckpt.eval()
    with torch.no_grad():
        torch.testing.assert_close(loss_of(ckpt), loss_of(plain), atol=0, rtol=0)
    loss_of(ckpt).backward()  # eval mode with gradients (e.g. input attribution)
    ckpt.train()
    with torch.no_grad():
        loss_of(ckpt)
    assert counter.calls == 0
    ckpt.set_grad_checkpointing(False)
    ckpt.train()
    loss_of(ckpt).backward()
    assert counter.calls == 0


def test_checkpointing_off_keeps_the_model_traceable() -> None:
    model = mz.create("vit_tiny_patch4_32", depth=2).eval()
    model.set_grad_checkpointing(True)  # inactive in eval mode: the plain graph is traced
    x = torch.randn(1, 3, 32, 32)
    traced = torch.fx.symbolic_trace(model)
    assert "checkpoint" not in traced.code
    torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize(
    "name",
    [n for family in ("resnet", "vit", "transformer") for n in mz.list_models(family=family)]
    + ["conformer_ctc"],
)
def test_every_model_of_the_supported_families_has_it(name: str) -> None:
    with torch.device("meta"):
        model = mz.create(name)
    assert checkpointing.supports_grad_checkpointing(model)
    assert model.grad_checkpointing is False  # off until asked for
    model.set_grad_checkpointing()
    assert model.grad_checkpointing is True


def test_set_grad_checkpointing_refuses_a_non_bool() -> None:
    with pytest.raises(ConfigError, match="True or False"):
        mz.create("gpt_nano").set_grad_checkpointing("yes")  # type: ignore[arg-type]


def _digits(n: int = 24) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(
        torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    )


def _fit(grad_checkpointing: bool) -> Trainer:
    torch.manual_seed(0)
    model = mz.create("resnet20", num_classes=10)
    config = dict(
        epochs=1,
        max_steps=3,
        lr=0.05,
        optimizer="sgd",
        grad_checkpointing=grad_checkpointing,
        progress=False,
        plots=False,
        tensorboard=False,
    )
    trainer = Trainer(ClassificationTask(model), config, batch_size=8)
    trainer.fit(_digits())
    return trainer


def test_recipe_key_trains_the_same_model() -> None:
    assert TrainConfig.from_dict({"grad_checkpointing": "true"}).grad_checkpointing is True
    plain, ckpt = _fit(False), _fit(True)
    assert ckpt.model.grad_checkpointing and not plain.model.grad_checkpointing
    assert [s["loss"] for s in ckpt.step_losses] == pytest.approx(
        [s["loss"] for s in plain.step_losses], rel=1e-5
    )
    for (name, a), b in zip(
        plain.model.state_dict().items(), ckpt.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)


def test_recipe_key_refuses_a_model_without_support() -> None:
    model = mz.create("mlp", in_features=8, num_classes=2)
    with pytest.raises(ConfigError) as err:
        Trainer(ClassificationTask(model), {"grad_checkpointing": True, "progress": False})
    message = str(err.value)
    assert "mlp" in message and "gradient checkpointing" in message
    for supported in ("resnet", "vit", "transformer", "conformer_ctc"):
        assert supported in message
    assert not hasattr(model, "grad_checkpointing")  # nothing was half set


def test_checkpointing_lowers_peak_activation_memory() -> None:
    """The measurement behind benchmarks/grad_checkpointing.md, on tiny deep models: storing
    one input per block instead of every activation must cut the step's peak by >= 1.5x."""
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--print"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    rows = json.loads(out.stdout)["rows"]
    assert {r["model"] for r in rows} == {"gpt_tiny", "vit_tiny"}
    for row in rows:
        assert row["peak_bytes_checkpointed"] > 0
        assert row["ratio"] == pytest.approx(
            row["peak_bytes_plain"] / row["peak_bytes_checkpointed"]
        )
        assert row["ratio"] >= 1.5, row


@pytest.mark.slow
def test_published_memory_figures_hold() -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        check=True,
        timeout=1800,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_a_feature_extractor_checkpoints_its_backbone(monkeypatch: pytest.MonkeyPatch) -> None:
    """features_only models pass set_grad_checkpointing on (as timm's feature wrappers do):
    the same feature maps and gradients, with every residual block recomputed."""
    torch.manual_seed(0)
    plain = mz.create("resnet20", features_only=True, in_chans=1).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_grad_checkpointing(True)
    x = torch.randn(4, 1, 16, 16)
    counter = _CountCheckpoints(monkeypatch)
    grads = []
    for model in (plain, checkpointed):
        model.zero_grad()
        sum(f.square().mean() for f in model(x)).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert counter.calls == 9  # resnet20's nine residual blocks, in the checkpointed model only
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="does not support gradient checkpointing"):
        mz.create("mlp", features_only=True).set_grad_checkpointing(True)
