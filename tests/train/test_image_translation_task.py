"""pix2pix and CycleGAN training through the real Trainer: which optimizer moves what, the
losses and metrics by hand, the image pool, exact resume, learning on real data, recipes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import modelzoo as mz
import modelzoo.data.paired_images  # noqa: F401  (registers the datasets until they are built in)
import modelzoo.models.image_translation  # noqa: F401
from modelzoo.data import build_data
from modelzoo.errors import ConfigError
from modelzoo.metrics.image_quality import psnr, ssim
from modelzoo.models.image_translation import PatchDiscriminator
from modelzoo.train import Trainer
from modelzoo.train.checkpoint import load_checkpoint
from modelzoo.train.tasks import TASKS
from modelzoo.train.tasks.image_translation import CycleGANTask, ImagePool, Pix2PixTask

QUIET = dict(progress=False, plots=False, tensorboard=False)


def _config(**kwargs) -> dict:
    return {"epochs": 1, "seed": 0, "lr": 2e-4, "betas": [0.5, 0.999], **QUIET, **kwargs}


@pytest.fixture(scope="module")
def edges():
    return build_data("edges2digits", img_size=16)


@pytest.fixture(scope="module")
def styles():
    return build_data("digit_styles", img_size=16)


def _pix2pix(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    args = dict(in_chans=1, out_chans=1, img_size=16, base_channels=8, d_base_channels=8)
    return mz.create("pix2pix", d_layers=1, **(args | kwargs))


def _cyclegan(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    args = dict(base_channels=4, num_blocks=1, d_base_channels=8, d_layers=1, img_size=16)
    return mz.create("cyclegan", **(args | kwargs))


def _snapshot(*nets: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for net in nets for p in net.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_tasks_are_registered_by_name_and_named_by_the_data(edges, styles) -> None:
    assert TASKS["pix2pix"] is Pix2PixTask and TASKS["cyclegan"] is CycleGANTask
    assert edges.info["task"] == "pix2pix" and styles.info["task"] == "cyclegan"


# --- pix2pix ---------------------------------------------------------------------------------


def test_pix2pix_optimizers_touch_only_their_own_network(edges) -> None:
    model = _pix2pix()
    task = Pix2PixTask(model)
    trainer = Trainer(task, _config(lr=1e-2), batch_size=8)
    own = {n: {id(p) for _, p in task.parameters(n)} for n in task.optimizer_names}
    assert own["discriminator"] == {id(p) for p in model.discriminator.parameters()}
    assert own["generator"] == {id(p) for p in model.generator.parameters()}
    batch = tuple(t[:8] for t in edges.train.tensors)
    g0, d0 = _snapshot(model.generator), _snapshot(model.discriminator)
    trainer.fit(TensorDataset(*batch))  # one step of each optimizer
    g1, d1 = _snapshot(model.generator), _snapshot(model.discriminator)
    assert not _same(g0, g1) and not _same(d0, d1)
    assert set(trainer.step_losses[0]) == {
        "discriminator_loss", "discriminator_real_acc", "discriminator_fake_acc",
        "generator_loss", "generator_adv", "generator_l1",
    }  # fmt: skip

    # The discriminator's step made its fakes without gradients: the generator got none.
    model.zero_grad(set_to_none=True)
    task.training_step(batch, "discriminator")["loss"].backward()
    assert all(p.grad is None for p in model.generator.parameters())


def test_pix2pix_generator_loss_is_adversarial_plus_weighted_l1(edges) -> None:
    model = _pix2pix().eval()  # eval: no dropout or batch statistics, so the terms repeat
    task = Pix2PixTask(model, lambda_l1=50.0)
    source, target, _ = (t[:4] for t in edges.val.tensors)
    out = task.training_step((source, target), "generator")
    with torch.no_grad():
        fake = model.generator(source * 2 - 1)
        logits = model.discriminator(torch.cat([source * 2 - 1, fake], dim=1))
    l1 = (fake - (target * 2 - 1)).abs().mean()
    adv = nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    torch.testing.assert_close(out["l1"], l1)
    torch.testing.assert_close(out["adv"], adv)
    torch.testing.assert_close(out["loss"], adv + 50.0 * l1)


def test_l1_only_ablation_never_steps_the_discriminator(edges) -> None:
    model = _pix2pix()
    task = Pix2PixTask(model, lambda_adv=0.0)
    assert task.schedule() == ["generator"]
    trainer = Trainer(task, _config(max_steps=2), batch_size=8)
    d0 = _snapshot(model.discriminator)
    trainer.fit(TensorDataset(*(t[:16] for t in edges.train.tensors)))
    assert _same(d0, _snapshot(model.discriminator))
    assert set(trainer.step_losses[0]) == {"generator_loss", "generator_l1"}


class _Copy(nn.Module):
    """A "generator" that returns its input, to check the metrics by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_pix2pix_metrics_are_measured_in_unit_range_per_image() -> None:
    torch.manual_seed(0)
    model = nn.Module()
    model.generator = _Copy()
    model.discriminator = PatchDiscriminator(2, 4, 1, img_size=16)
    task = Pix2PixTask(model)
    source = torch.rand(6, 1, 16, 16)
    target = (source + 0.1 * torch.randn_like(source)).clamp(0, 1)
    with torch.no_grad():
        metrics = task.compute_metrics(task.validation_step((source, target)))
        perfect = task.compute_metrics(task.validation_step((source, source)))
    assert metrics["l1"] == pytest.approx((source - target).abs().mean().item(), rel=1e-5)
    assert metrics["psnr"] == pytest.approx(psnr(source, target).item(), rel=1e-6)
    assert metrics["ssim"] == pytest.approx(ssim(source, target).item(), rel=1e-6)
    assert perfect["l1"] == 0 and perfect["ssim"] == pytest.approx(1.0)
    assert perfect["psnr"] == 100.0  # identical images: capped, not inf


@pytest.mark.parametrize("lambda_adv", [1.0, pytest.param(0.0, marks=pytest.mark.slow)])
def test_pix2pix_learns_edges_to_digits(edges, tmp_path: Path, lambda_adv: float) -> None:
    """A few hundred real steps: the test L1 falls well below the untrained generator's."""
    model = _pix2pix()
    task = Pix2PixTask(model, lambda_adv=lambda_adv, num_plot=4)
    trainer = Trainer(task, _config(epochs=2, lr=1e-3, plots=True), run_dir=tmp_path, batch_size=16)
    train = TensorDataset(*(t[:320] for t in edges.train.tensors))
    test = TensorDataset(*(t[:120] for t in edges.test.tensors))
    before = trainer.evaluate(test)
    trainer.fit(train)
    after = trainer.evaluate(test)
    assert after["l1"] < 0.75 * before["l1"]
    assert after["psnr"] > before["psnr"] + 2
    assert (tmp_path / "plots" / "translations.png").stat().st_size > 0
    prediction = trainer.predict(TensorDataset(edges.test.tensors[0][:5]))[0]
    assert prediction.shape == (5, 1, 16, 16) and 0 <= prediction.min() <= prediction.max() <= 1


def test_pix2pix_errors() -> None:
    with pytest.raises(ConfigError, match="ResnetGenerator has no .discriminator"):
        Pix2PixTask(mz.create("cyclegan_generator"))
    with pytest.raises(ConfigError, match="not both 0"):
        Pix2PixTask(_pix2pix(), lambda_l1=0.0, lambda_adv=0.0)
    with pytest.raises(ConfigError, match="gan_mode"):
        Pix2PixTask(_pix2pix(), gan_mode="wgan")
    with pytest.raises(ConfigError, match="source, target"):
        Pix2PixTask(_pix2pix()).training_step(torch.rand(2, 1, 16, 16), "generator")


# --- the image pool --------------------------------------------------------------------------


def test_image_pool_fills_then_swaps_half_the_time() -> None:
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = -torch.arange(1.0, 5.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: every image comes back
    assert len(pool.images) == 4
    new = torch.arange(1000.0).view(1000, 1, 1, 1)
    out = pool.query(new)
    swapped = (out != new).flatten()
    assert 0.45 < swapped.float().mean().item() < 0.55  # about half come from the history
    # A swapped-out image is one stored before: an old one, or a new one stored earlier.
    assert (out[swapped] < new[swapped]).all()
    assert sorted(pool.images[i].item() for i in range(4)) != [-4.0, -3.0, -2.0, -1.0]
    assert torch.equal(ImagePool(0).query(new), new)  # size 0: no history


def test_image_pool_state_round_trips() -> None:
    torch.manual_seed(0)
    pool = ImagePool(3)
    pool.query(torch.randn(5, 2, 4, 4))
    other = ImagePool(3)
    other.load_state_dict(pool.state_dict())
    torch.manual_seed(1)
    a = pool.query(torch.ones(6, 2, 4, 4))
    torch.manual_seed(1)
    b = other.query(torch.ones(6, 2, 4, 4))
    assert torch.equal(a, b)


# --- CycleGAN --------------------------------------------------------------------------------


def test_cyclegan_steps_generators_then_discriminators_with_the_same_fakes(styles) -> None:
    model = _cyclegan()
    task = CycleGANTask(model, pool_size=0)
    assert task.schedule() == ["generator", "discriminator"]
    own = {n: {id(p) for _, p in task.parameters(n)} for n in task.optimizer_names}
    assert own["generator"] == {
        id(p) for net in (model.generator_ab, model.generator_ba) for p in net.parameters()
    }
    assert own["discriminator"] == {
        id(p) for net in (model.discriminator_a, model.discriminator_b) for p in net.parameters()
    }
    batch = tuple(t[:4] for t in styles.train.tensors)
    out = task.training_step(batch, "generator")
    assert set(out) == {"loss", "adv_ab", "adv_ba", "cycle_a", "cycle_b", "idt_a", "idt_b"}
    terms = out["adv_ab"] + out["adv_ba"] + 10 * (out["cycle_a"] + out["cycle_b"])
    torch.testing.assert_close(out["loss"], terms + 10 * 0.5 * (out["idt_a"] + out["idt_b"]))
    _, fake_a, fake_b = task._pending[-1]

    # The discriminators' step reads exactly those fakes (no pool): recompute its loss.
    d_out = task.training_step(batch, "discriminator")
    assert not task._pending
    a, b = batch[0] * 2 - 1, batch[1] * 2 - 1
    d_a, d_b = model.discriminator_a, model.discriminator_b
    mse = nn.functional.mse_loss
    expected_a = 0.5 * (
        mse(d_a(a), torch.ones(4, 1, 6, 6)) + mse(d_a(fake_a), torch.zeros(4, 1, 6, 6))
    )
    expected_b = 0.5 * (
        mse(d_b(b), torch.ones(4, 1, 6, 6)) + mse(d_b(fake_b), torch.zeros(4, 1, 6, 6))
    )
    torch.testing.assert_close(d_out["a"], expected_a)
    torch.testing.assert_close(d_out["b"], expected_b)
    d_out["loss"].backward()
    assert all(p.grad is None for p in model.generator_ab.parameters())


def test_cyclegan_validation_reports_the_cycle_error(styles) -> None:
    model = _cyclegan().eval()
    task = CycleGANTask(model)
    a, b = styles.val.tensors[0][:5], styles.val.tensors[1][:5]
    with torch.no_grad():
        metrics = task.compute_metrics(task.validation_step((a, b)))
        rec_a = (model.generator_ba(model.generator_ab(a * 2 - 1)) + 1) / 2
    assert metrics["cycle_a"] == pytest.approx((rec_a.clamp(0, 1) - a).abs().mean().item(), 1e-5)
    assert metrics["cycle"] == pytest.approx((metrics["cycle_a"] + metrics["cycle_b"]) / 2)
    assert {"g_adv", "d_real_acc", "d_fake_acc"} <= set(metrics)


def _cycle_trainer(run_dir: Path | None, **config) -> Trainer:
    task = CycleGANTask(_cyclegan(), pool_size=6)
    return Trainer(task, _config(epochs=2, **config), run_dir=run_dir, batch_size=4)


def test_cyclegan_resumes_exactly_with_its_image_pools(styles, tmp_path: Path) -> None:
    data = TensorDataset(*(t[:24] for t in styles.train.tensors))  # 6 steps per epoch
    full = _cycle_trainer(None)
    full.fit(data)
    assert len(full.step_losses) == 12

    _cycle_trainer(tmp_path / "run", max_steps=5).fit(data)
    mid = tmp_path / "step5.ckpt"
    shutil.copy(tmp_path / "run/checkpoints/last.ckpt", mid)
    pools = load_checkpoint(mid)["task"]
    assert pools["pool_a"]["images"].shape == (6, 3, 16, 16)  # full after 5 steps of 4

    resumed = _cycle_trainer(None)
    resumed.fit(data, resume_from=mid)
    assert resumed.step_losses == full.step_losses[5:]  # bit-exact, across an epoch boundary
    for key, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key

    forgetful = _cycle_trainer(None)  # without the pools the continuation differs
    forgetful.task.load_state_dict = lambda state: None
    forgetful.fit(data, resume_from=mid)
    assert forgetful.step_losses != full.step_losses[5:]


@pytest.mark.slow
def test_cyclegan_learns_the_style(styles, tmp_path: Path) -> None:
    """Real steps on the unpaired digits: A->B images move towards the B style's colours
    (the true B rendering of the same test digits, which training never saw)."""
    model = _cyclegan()
    task = CycleGANTask(model, num_plot=4)
    trainer = Trainer(task, _config(epochs=2, lr=2e-3, plots=True), run_dir=tmp_path, batch_size=8)
    a, b = styles.test.tensors[0][:64], styles.test.tensors[1][:64]

    def distance() -> float:
        with torch.no_grad():
            model.eval()
            fake = task.predict_step((a,))
        return (fake - b).abs().mean().item()

    before = distance()
    trainer.fit(TensorDataset(*(t[:320] for t in styles.train.tensors)), styles.val)
    assert distance() < 0.6 * before
    assert (tmp_path / "plots" / "translations.png").stat().st_size > 0


def test_cyclegan_errors() -> None:
    with pytest.raises(ConfigError, match="lambda_identity=0"):
        CycleGANTask(_cyclegan(in_chans=1, out_chans=3))
    CycleGANTask(_cyclegan(in_chans=1, out_chans=3), lambda_identity=0.0)  # fine without it
    with pytest.raises(ConfigError, match="Pix2Pix has no .discriminator_a"):
        CycleGANTask(_pix2pix())
    with pytest.raises(ConfigError, match="pool_size"):
        CycleGANTask(_cyclegan(), pool_size=-1)


# --- recipes ---------------------------------------------------------------------------------

RECIPES = [
    "configs/gan/pix2pix_edges2digits.yaml",
    "configs/gan/pix2pix_edges2digits_l1only.yaml",
    "configs/gan/pix2pix_masks2scenes.yaml",
    "configs/gan/pix2pix_masks2scenes_l1only.yaml",
    "configs/gan/cyclegan_digit_styles.yaml",
    "configs/gan/cyclegan_digit_styles_judge.yaml",
]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_say_how_to_run_them_and_how_long_they_took(recipe: str) -> None:
    from modelzoo.config import load_recipe
    from modelzoo.train.recipes import validate_recipe

    root = Path(__file__).resolve().parents[2]
    text = (root / recipe).read_text()
    assert text.startswith(f"# modelzoo train {recipe}\n")
    assert re.search(r"Took \d+ min here", text), "the recipe states how long it took"
    validate_recipe(load_recipe(root / recipe))


@pytest.mark.parametrize("recipe", [RECIPES[0], RECIPES[4]])
def test_recipe_dry_run_writes_the_translation_figure(recipe: str, tmp_path: Path) -> None:
    """(tests/test_config.py dry-runs every recipe; this checks the task's figure too.)"""
    from modelzoo.config import load_recipe
    from modelzoo.train.recipes import train_recipe

    root = Path(__file__).resolve().parents[2]
    loaded = load_recipe(root / recipe, ["train.dry_run=true", "data.img_size=16"])
    result = train_recipe(loaded, tmp_path / "run")
    assert (tmp_path / "run/plots/translations.png").stat().st_size > 0
    assert 0 <= result.test_metrics.get("l1", result.test_metrics.get("cycle")) <= 1
