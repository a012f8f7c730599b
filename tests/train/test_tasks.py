"""The training tasks of the sequence and generative families, run through the real Trainer."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import modelzoo as mz
from modelzoo.data import build_data
from modelzoo.data.seq2seq import collate_seq2seq
from modelzoo.data.text import TextStreams
from modelzoo.errors import ConfigError
from modelzoo.models.autoencoder import AEOutput
from modelzoo.train import Trainer
from modelzoo.train.checkpoint import load_checkpoint
from modelzoo.train.tasks import (
    TASKS,
    GANTask,
    LanguageModelingTask,
    ReconstructionTask,
    Seq2SeqTask,
    VAETask,
)
from modelzoo.train.tasks.seq2seq import greedy_match_totals

QUIET = dict(progress=False, plots=False, tensorboard=False)


def _config(**kwargs) -> dict:
    return {"epochs": 1, "seed": 0, **QUIET, **kwargs}


def _first_last(trainer: Trainer, key: str = "loss", n: int = 3) -> tuple[float, float]:
    values = [s[key] for s in trainer.step_losses]
    return sum(values[:n]) / n, sum(values[-n:]) / n


@pytest.fixture(scope="module")
def digits():
    return build_data("digits")


def test_tasks_are_registered_by_name() -> None:
    assert TASKS["lm"] is LanguageModelingTask
    assert TASKS["seq2seq"] is Seq2SeqTask
    assert TASKS["reconstruction"] is ReconstructionTask
    assert TASKS["vae"] is VAETask
    assert TASKS["gan"] is GANTask
    assert TASKS["classification"].__name__ == "ClassificationTask"  # earlier entries stay


# --- language modelling ----------------------------------------------------------------------


def _pattern(n: int, vocab: int = 12, seed: int = 0) -> torch.Tensor:
    """A token stream a small model can learn: a fixed cycle with a random symbol every 4th."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(n) % (vocab - 2)
    noise = torch.randint(vocab - 2, vocab, (n,), generator=g)
    return torch.where(torch.arange(n) % 4 == 3, noise, ids)


def _windows(ids: torch.Tensor, seq_len: int) -> TensorDataset:
    starts = torch.arange(0, len(ids) - seq_len - 1, seq_len)
    x = torch.stack([ids[s : s + seq_len] for s in starts])
    y = torch.stack([ids[s + 1 : s + seq_len + 1] for s in starts])
    return TensorDataset(x, y)


def test_gpt_learns_and_perplexity_is_exp_of_the_mean_token_loss() -> None:
    data = _windows(_pattern(4000), seq_len=16)
    torch.manual_seed(0)
    model = mz.create("gpt_nano", vocab_size=12, max_len=16, num_layers=1, d_model=32)
    trainer = Trainer(LanguageModelingTask(model), _config(epochs=2, lr=3e-3), batch_size=16)
    metrics = trainer.fit(data, _windows(_pattern(600, seed=1), seq_len=16))
    first, last = _first_last(trainer)
    assert last < 0.6 * first
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    # Three of every four tokens follow the cycle: a learned model predicts them.
    assert 0.6 < metrics["accuracy"] <= 1.0
    assert metrics["loss"] < math.log(12) * 0.5


def test_lm_metrics_come_from_token_totals() -> None:
    task = LanguageModelingTask(nn.Identity())
    # Two evaluation batches of 10 and 30 tokens with mean losses 1 and 3: 100 / 40 tokens.
    metrics = task.compute_metrics({"loss": (10.0 + 90.0, 40), "accuracy": (20.0, 40)})
    assert metrics["loss"] == pytest.approx(2.5)
    assert metrics["perplexity"] == pytest.approx(math.exp(2.5))
    assert metrics["accuracy"] == pytest.approx(0.5)


def test_lm_validation_ignores_unscored_targets() -> None:
    logits = torch.full((1, 3, 4), -10.0)
    logits[0, 0, 1] = logits[0, 1, 2] = logits[0, 2, 0] = 10.0  # predicts 1, 2, 0
    task = LanguageModelingTask(lambda tokens: logits)  # a model returning plain logits
    totals = task.validation_step(
        (torch.zeros(1, 3, dtype=torch.long), torch.tensor([[1, 3, -100]]))
    )
    assert totals["accuracy"] == (1, 2)  # the -100 step is not counted
    assert totals["loss"][1] == 2


def _lstm_lm(vocab: int = 12) -> nn.Module:
    return mz.create(
        "lstm_lm", vocab_size=vocab, embed_dim=16, hidden_size=16, num_layers=1, drop_rate=0.1
    )


def _stream_trainer(run_dir: Path | None, max_steps: int | None = None) -> Trainer:
    torch.manual_seed(0)
    task = LanguageModelingTask(_lstm_lm(), stateful=True)
    config = _config(epochs=2, lr=1e-2, max_steps=max_steps)
    return Trainer(task, config, run_dir=run_dir, batch_size=4, shuffle=False)


STREAM = TextStreams(_pattern(4 * (8 * 6 + 1)), seq_len=8, batch_size=4)  # 6 batches an epoch


def test_tbptt_carries_a_detached_state_across_batches() -> None:
    trainer = _stream_trainer(None, max_steps=2)
    task = trainer.task
    seen = []
    forward = task.model.forward

    def spy(tokens, hidden=None):
        seen.append(hidden)
        return forward(tokens, hidden)

    task.model.forward = spy
    trainer.fit(STREAM)
    assert seen[0] is None  # the epoch starts from zeros
    h, c = seen[1]  # the second batch continues from the first's final (h, c)
    assert h.shape == c.shape == (1, 4, 16)
    assert h.grad_fn is None and c.grad_fn is None  # detached: BPTT is truncated
    h_last, _ = task._hidden
    assert h_last.grad_fn is None and not torch.equal(h_last, h)
    task.on_epoch_start(1)
    assert task.state_dict() == {}
    # A batch of another size cannot continue the streams: it starts from zeros.
    task._hidden = (torch.ones(1, 3, 16), torch.ones(1, 3, 16))
    task.model.forward = forward
    task.training_step((torch.zeros(4, 8, dtype=torch.long),) * 2, "main")
    assert task._hidden[0].shape == (1, 4, 16)


def test_tbptt_state_survives_a_checkpoint_for_exact_resume(tmp_path: Path) -> None:
    full = _stream_trainer(None)
    full.fit(STREAM)
    assert len(full.step_losses) == 12

    _stream_trainer(tmp_path / "run", max_steps=4).fit(STREAM)
    mid = tmp_path / "step4.ckpt"
    shutil.copy(tmp_path / "run/checkpoints/last.ckpt", mid)
    state = load_checkpoint(mid)
    assert [t.shape for t in state["task"]["hidden"]] == [(1, 4, 16), (1, 4, 16)]

    resumed = _stream_trainer(tmp_path / "resumed")
    resumed.fit(STREAM, resume_from=mid)
    assert resumed.step_losses == full.step_losses[4:]  # bit-exact, across an epoch boundary
    for key, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key

    # Without the carried state the continuation differs: the state is what made it exact.
    forgetful = _stream_trainer(None)
    forgetful.task.load_state_dict = lambda state: None
    forgetful.fit(STREAM, resume_from=mid)
    assert forgetful.step_losses[0] != full.step_losses[4]


def test_stateful_streams_and_token_ids_come_from_a_recipe() -> None:
    from modelzoo.config import recipe_from_dict
    from modelzoo.train.recipes import build_run

    recipe = recipe_from_dict(
        {
            "model": {"name": "lstm_lm", "embed_dim": 16, "hidden_size": 16, "num_layers": 1},
            "data": {"name": "stdlib_chars_stream", "batch_size": 8, "seq_len": 16,
                     "max_chars": 20_000},
            "task": {"name": "lm"},
            "train": {"max_steps": 1, **QUIET},
        }
    )  # fmt: skip
    trainer, data = build_run(recipe)
    assert trainer.task.stateful and not trainer.shuffle
    assert data.info["batch_size"] == trainer.batch_size == 8


# --- sequence to sequence --------------------------------------------------------------------


@pytest.fixture(scope="module")
def reverse():
    return build_data("reverse", num_symbols=6, min_len=2, max_len=5, n_train=640, n_val=64)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("gru_seq2seq", dict(embed_dim=32, hidden_size=64)),
        ("transformer_seq2seq", dict(d_model=32, num_layers=1, num_heads=2, d_ff=64, max_len=16)),
    ],
)
def test_seq2seq_learns_to_reverse(reverse, name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = mz.create(name, vocab_size=reverse.info["vocab_size"], drop_rate=0.0, **kwargs)
    task = Seq2SeqTask(model, label_smoothing=0.05)
    trainer = Trainer(
        task, _config(epochs=2, lr=1e-2), batch_size=32, collate_fn=reverse.collate_fn
    )
    before = trainer.evaluate(reverse.val)
    metrics = trainer.fit(reverse.train, reverse.val)
    first, last = _first_last(trainer)
    assert last < 0.7 * first
    assert metrics["loss"] < 0.7 * before["loss"]
    assert metrics["token_accuracy_greedy"] > before["token_accuracy_greedy"]
    assert set(metrics) == {"loss", "accuracy", "exact_match", "token_accuracy_greedy"}


class _Scripted(nn.Module):
    """A seq2seq stand-in: fixed logits and fixed greedy outputs; records its arguments."""

    def __init__(self, logits: torch.Tensor, decoded: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.logits, self.decoded, self.calls = logits, decoded, []

    def forward(self, src, tgt_in, src_lengths=None):
        self.calls.append(("forward", tgt_in, src_lengths))
        return self.logits + self.weight

    def generate(self, src, max_len, beam_size=1, src_lengths=None):
        self.calls.append(("generate", max_len, src_lengths))
        return self.decoded


def test_exact_match_and_greedy_token_accuracy_by_hand() -> None:
    pad, bos, eos = 0, 1, 2
    tgt = torch.tensor(
        [
            [bos, 3, 4, 5, eos],
            [bos, 3, 4, 5, eos],
            [bos, 4, eos, pad, pad],
            [bos, 5, 3, eos, pad],
        ]
    )
    decoded = torch.tensor(
        [
            [3, 4, 5, eos],  # right
            [3, 6, 5, eos],  # one wrong token
            [4, eos, pad, pad],  # right
            [5, 3, 4, eos],  # right tokens, then one too many before the end
        ]
    )[:, :4]
    src = torch.tensor([[5, 4, 3, eos], [5, 4, 3, eos], [4, eos, pad, pad], [3, 5, eos, pad]])
    labels = tgt[:, 1:]
    logits = torch.nn.functional.one_hot(labels, 8).float() * 10  # teacher forcing: all right
    model = _Scripted(logits, decoded)
    task = Seq2SeqTask(model, pad_id=pad, bos_id=bos, eos_id=eos)
    metrics = task.compute_metrics(task.validation_step((src, tgt)))
    assert metrics["exact_match"] == pytest.approx(2 / 4)
    # 13 label tokens (pad excluded); row 2 misses one, row 4 its last one (4 for eos).
    assert metrics["token_accuracy_greedy"] == pytest.approx(11 / 13)
    assert metrics["accuracy"] == 1.0
    _, tgt_in, lengths = model.calls[0]
    assert torch.equal(tgt_in, tgt[:, :-1])  # teacher forcing reads the target shifted right
    assert lengths.tolist() == [4, 4, 2, 3]  # padded sources go to src_lengths
    assert model.calls[1][:2] == ("generate", 4)
    assert task.monitor == "exact_match" and task.monitor_mode == "max"
    # Decoded past the label's end: wrong unless the extra steps are padding.
    longer = torch.tensor([[4, eos, 0, 0, 0], [4, eos, 0, 0, 7]])
    totals = greedy_match_totals(longer, torch.tensor([[4, eos, 0, 0]] * 2), pad_id=0)
    assert totals["exact_match"] == (1.0, 2)
    assert totals["token_accuracy_greedy"] == (4.0, 4)


def test_seq2seq_token_ids_must_match_the_model() -> None:
    model = mz.create("gru_seq2seq", vocab_size=12, embed_dim=8, hidden_size=8)
    with pytest.raises(ConfigError, match="pad_id"):
        Seq2SeqTask(model, pad_id=3)


def test_seq2seq_padding_reaches_the_transformer_as_a_mask() -> None:
    seen = {}

    class Spy(nn.Module):
        def forward(self, src, tgt_in, src_padding_mask=None, tgt_padding_mask=None):
            seen["mask"] = src_padding_mask
            return torch.zeros(*tgt_in.shape, 5, requires_grad=True)

    src, tgt = collate_seq2seq(
        [
            (torch.tensor([3, 2]), torch.tensor([1, 3, 2])),
            (torch.tensor([3, 4, 2]), torch.tensor([1, 4, 3, 2])),
        ]
    )
    Seq2SeqTask(Spy(), greedy_eval=False).training_step((src, tgt), "main")
    assert seen["mask"].tolist() == [[False, False, True], [False, False, False]]


# --- autoencoders ----------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_autoencoder_learns_and_plots_reconstructions(digits, tmp_path: Path, loss: str) -> None:
    torch.manual_seed(0)
    model = mz.create("conv_autoencoder", img_size=8, latent_dim=8, channels=(8, 16))
    task = ReconstructionTask(model, loss=loss)
    trainer = Trainer(task, _config(lr=3e-3, max_steps=30), batch_size=32)
    before = trainer.evaluate(digits.val)
    trainer.fit(digits.train)
    metrics = trainer.evaluate(digits.val)
    first, last = _first_last(trainer)
    assert last < first
    assert metrics["mse"] < 0.7 * before["mse"]
    # The reported mse is the mean squared error per pixel of the whole split.
    model.eval()
    x = digits.val.tensors[0]
    with torch.no_grad():
        expected = (model(x).recon - x).pow(2).mean().item()
    assert metrics["mse"] == pytest.approx(expected, rel=1e-5)
    paths = task.plot(tmp_path, trainer.step)
    assert paths == [tmp_path / "reconstructions.png"] and paths[0].stat().st_size > 0


def test_denoising_is_scored_against_the_clean_input() -> None:
    class Denoiser(nn.Module):  # reconstructs its corrupted input perfectly
        def forward(self, x):
            noisy = x + 1.0 if self.training else x
            return AEOutput(noisy, x.flatten(1))

    task = ReconstructionTask(Denoiser())
    x = torch.rand(4, 1, 8, 8)
    assert task.training_step(x, "main")["loss"].item() == pytest.approx(1.0)


def test_flat_autoencoder_plots_square_images(digits, tmp_path: Path) -> None:
    model = mz.create("mlp_autoencoder", in_features=64, latent_dim=4, hidden_sizes=(16,))
    task = ReconstructionTask(model)
    x = digits.train.tensors[0][:8].flatten(1)
    task.validation_step((x, torch.zeros(8)))
    assert task.plot(tmp_path, 0)[0].is_file()


# --- VAE -------------------------------------------------------------------------------------


def test_vae_warms_up_beta_and_learns(digits, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = mz.create("vae", in_features=64, latent_dim=4, hidden_sizes=(64,))
    task = VAETask(model, beta=2.0, kl_warmup_steps=4)
    trainer = Trainer(task, _config(lr=3e-3, max_steps=40), batch_size=32)
    train = TensorDataset(digits.train.tensors[0].flatten(1), digits.train.tensors[1])
    val = TensorDataset(digits.val.tensors[0].flatten(1), digits.val.tensors[1])
    trainer.fit(train)
    metrics = trainer.evaluate(val)
    steps = trainer.step_losses
    assert [s["beta"] for s in steps[:6]] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    for s in steps:  # the logged loss is the weighted sum of the logged terms
        assert s["loss"] == pytest.approx(s["recon"] + s["beta"] * s["kl"], rel=1e-5)
    assert _first_last(trainer, "recon")[1] < 0.8 * _first_last(trainer, "recon")[0]
    assert metrics["elbo"] == pytest.approx(metrics["recon"] + metrics["kl"])
    assert metrics["kl"] > 0
    assert task.state_dict() == {"steps": 40}

    resumed = VAETask(model, beta=2.0, kl_warmup_steps=4)
    resumed.load_state_dict({"steps": 3})
    assert resumed.current_beta() == pytest.approx(1.5)  # the schedule continues, not restarts

    paths = task.plot(tmp_path, trainer.step)
    assert [p.name for p in paths] == ["samples.png", "reconstructions.png"]
    assert all(p.stat().st_size > 0 for p in paths)


# --- GAN -------------------------------------------------------------------------------------


def _gan(name: str = "dcgan") -> nn.Module:
    torch.manual_seed(0)
    return mz.create(name, img_size=8, base_channels=8, latent_dim=8)


def test_gan_optimizers_touch_only_their_own_network(digits) -> None:
    model = _gan()
    task = GANTask(model, d_steps=2)
    assert task.schedule() == ["discriminator", "discriminator", "generator"]
    trainer = Trainer(task, _config(lr=1e-2), batch_size=16)
    own = {n: {id(p) for _, p in task.parameters(n)} for n in task.optimizer_names}
    assert own["discriminator"] == {id(p) for p in model.discriminator.parameters()}
    assert own["generator"] == {id(p) for p in model.generator.parameters()}

    batch = (digits.train.tensors[0][:16], digits.train.tensors[1][:16])

    def step(name: str) -> None:
        optimizer = trainer.optimizers[name]
        model.zero_grad(set_to_none=True)
        task.training_step(batch, name)["loss"].backward()
        optimizer.step()

    def snapshot(net: nn.Module) -> list[torch.Tensor]:
        return [p.detach().clone() for p in net.parameters()]

    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    step("discriminator")
    # The fakes were detached: no gradient reached the generator, and it did not move.
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(g0, snapshot(model.generator)))
    d1 = snapshot(model.discriminator)
    assert not all(torch.equal(a, b) for a, b in zip(d0, d1))
    step("generator")
    assert all(torch.equal(a, b) for a, b in zip(d1, snapshot(model.discriminator)))
    assert not all(torch.equal(a, b) for a, b in zip(g0, snapshot(model.generator)))


def test_gan_wraps_both_networks_for_ddp() -> None:
    model = _gan()
    task = GANTask(model)
    wrappers = task.wrap(lambda m: nn.Sequential(m))
    assert len(wrappers) == 2
    assert wrappers[0][0] is model.generator and wrappers[1][0] is model.discriminator
    assert task.gen is wrappers[0] and task.disc is wrappers[1]


def test_gan_learns_towards_the_data(digits, tmp_path: Path) -> None:
    model = _gan()
    real = digits.train.tensors[0][:256] * 2 - 1  # the [-1, 1] images the discriminator sees

    def gap() -> float:
        fake = model.sample(256, generator=torch.Generator().manual_seed(1))
        return abs(fake.mean() - real.mean()).item() + abs(fake.std() - real.std()).item()

    model.eval()
    before = gap()
    task = GANTask(model, num_plot=16)
    config = _config(epochs=4, lr=2e-3, betas=[0.5, 0.999])
    trainer = Trainer(task, config, batch_size=32)
    data = TensorDataset(digits.train.tensors[0][:256], digits.train.tensors[1][:256])
    trainer.fit(data)
    assert set(trainer.step_losses[0]) == {
        "discriminator_loss", "discriminator_real_acc", "discriminator_fake_acc", "generator_loss"
    }  # fmt: skip
    first, last = _first_last(trainer, "discriminator_loss")
    assert last < first  # the discriminator learns to tell them apart
    model.eval()
    assert gap() < 0.75 * before  # and the generator's pixel statistics move towards the data's

    metrics = trainer.evaluate(digits.val)
    assert trainer.evaluate(digits.val) == metrics  # seeded latents: the same every time
    rng = torch.get_rng_state()
    with torch.no_grad():
        task.validation_step((digits.val.tensors[0], digits.val.tensors[1]))
    assert torch.equal(torch.get_rng_state(), rng)  # and the global RNG is left alone
    assert set(metrics) == {"d_loss", "g_loss", "d_real_acc", "d_fake_acc"}
    # d_real_acc is the share of real validation images the discriminator calls real
    real, cond = task._real((digits.val.tensors[0], digits.val.tensors[1]))
    z = task._latent(len(real), real, torch.Generator().manual_seed(task.eval_seed))
    with torch.no_grad():
        called_real = (model.discriminator(real, *cond) > 0).float().mean().item()
        called_fake = (model.discriminator(model.generator(z, *cond), *cond) < 0).float().mean()
    assert metrics["d_real_acc"] == pytest.approx(called_real)
    assert metrics["d_fake_acc"] == pytest.approx(called_fake.item())  # the seeded latents
    path = task.plot(tmp_path, trainer.step)[0]
    assert path.name == "samples.png" and path.stat().st_size > 0


def test_conditional_gan_takes_the_batch_labels(digits) -> None:
    model = _gan("cgan")
    task = GANTask(model)
    seen = []
    forward = model.discriminator.forward
    model.discriminator.forward = lambda x, labels=None: seen.append(labels) or forward(x, labels)
    images, labels = digits.train.tensors[0][:8], digits.train.tensors[1][:8]
    for name in task.schedule():
        task.training_step((images, labels), name)
    assert len(seen) == 3 and all(torch.equal(s, labels) for s in seen)
    with pytest.raises(ConfigError, match="labels"):
        task.training_step(images, "generator")
