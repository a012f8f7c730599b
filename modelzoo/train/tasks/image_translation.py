"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired) training.

- ``Pix2PixTask`` (Isola et al. 2017): the generator minimizes the conditional
  GAN loss plus ``lambda_l1`` times the L1 distance to the target; the PatchGAN
  discriminator reads (source, image) pairs and minimizes half the sum of its real
  and fake losses, as in the paper.
- ``CycleGANTask`` (Zhu et al. 2017): two generators minimize their adversarial
  losses plus ``lambda_cycle`` times the cycle losses ``|G_BA(G_AB(a)) - a|`` and
  ``|G_AB(G_BA(b)) - b|`` plus ``lambda_cycle * lambda_identity`` times the identity
  losses ``|G_BA(a) - a|`` and ``|G_AB(b) - b|``; each discriminator sees fakes
  drawn from a history of 50 generated images (``ImagePool``; Shrivastava et al.
  2017). The adversarial loss is least squares by default (LSGAN, Mao et al. 2017),
  as in the paper.

Both use the trainer's two optimizers, ``"discriminator"`` and ``"generator"``;
each holds only its own networks' parameters. pix2pix steps the discriminator,
then the generator (the fakes are made again without gradients for the
discriminator); CycleGAN steps the generators first and hands their fakes to the
discriminators' step, as the reference implementation does.

Data are in [0, 1] and scaled to the generators' [-1, 1]; metrics are measured
back in [0, 1]. ``plot()`` writes ``translations.png`` at the end of a run.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.metrics.image_quality import psnr, ssim
from modelzoo.train.tasks.base import Task, Totals, evaluating
from modelzoo.train.tasks.generative import save_image_grid

__all__ = ["ImagePool", "Pix2PixTask", "CycleGANTask", "adversarial_loss", "GAN_MODES"]

_logger = logging.getLogger(__name__)

GAN_MODES = ("vanilla", "lsgan")
_SSIM_WINDOW = 11


def adversarial_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """The mean GAN loss of (patch) logits against an all-real or all-fake target.

    ``vanilla``: binary cross-entropy with logits (Goodfellow et al. 2014);
    ``lsgan``: squared error to 1 or 0 (Mao et al. 2017).
    """
    logits = logits.float()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    raise ConfigError(f"unknown gan_mode {mode!r}; use one of {', '.join(GAN_MODES)}")


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ConfigError(f"unknown gan_mode {mode!r}; use one of {', '.join(GAN_MODES)}")


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] to [0, 1], clamped, float32 (for metrics and figures)."""
    return ((x.float() + 1) / 2).clamp(0, 1)


def _pair(batch: Any, task: str, first: str, second: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise ConfigError(
            f"the {task} task needs batches of ({first}, {second}, ...); got "
            f"{type(batch).__name__}. Use a paired dataset such as "
            f"{'edges2digits or masks2scenes' if task == 'pix2pix' else 'digit_styles'}."
        )
    return batch[0], batch[1]


def _quality_totals(fake: torch.Tensor, target: torch.Tensor) -> Totals:
    """L1, MSE, PSNR and (when the window fits) SSIM sums in [0, 1], per image."""
    n = len(target)
    out: Totals = {
        "l1": (float((fake - target).abs().flatten(1).mean(dim=1).sum()), n),
        "mse": (float((fake - target).pow(2).flatten(1).mean(dim=1).sum()), n),
    }
    values = psnr(fake, target, reduction="none")
    out["psnr"] = (float(values.clamp(max=100.0).sum()), n)  # identical images: capped at 100 dB
    if min(target.shape[-2:]) >= _SSIM_WINDOW:
        out["ssim"] = (float(ssim(fake, target, reduction="none").sum()), n)
    return out


def _named(modules: dict[str, nn.Module]) -> Iterator[tuple[str, nn.Parameter]]:
    return itertools.chain.from_iterable(
        m.named_parameters(prefix=name) for name, m in modules.items()
    )


class _TwoOptimizers(Task):
    """Shared machinery: the two optimizers, which parts each trains, DDP wrapping."""

    optimizer_names = ("discriminator", "generator")
    # attribute names of the model's parts, per optimizer
    parts: dict[str, tuple[str, ...]] = {}

    # names of the two images of a batch, for the error on a batch that is not a pair
    pair_names: tuple[str, str] = ("source", "target")

    def __init__(
        self, model: nn.Module, *, gan_mode: str, scale_inputs: bool, num_plot: int
    ) -> None:
        super().__init__(model)
        for names in self.parts.values():
            for part in names:
                if not isinstance(getattr(model, part, None), nn.Module):
                    raise ConfigError(
                        f"the {self.name} task trains a model with "
                        f"{', '.join('.' + p for ps in self.parts.values() for p in ps)}; "
                        f"{type(model).__name__} has no .{part}. Use '{self.name}' "
                        f"(mz.create('{self.name}', ...))."
                    )
        _check_mode(gan_mode)
        self.gan_mode = gan_mode
        self.scale_inputs = scale_inputs
        self.num_plot = num_plot
        self._wrapped: dict[str, nn.Module] = {}

    def _scaled(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's two images, in [-1, 1] when ``scale_inputs``."""
        first, second = _pair(batch, self.name, *self.pair_names)
        if self.scale_inputs:
            first, second = first * 2 - 1, second * 2 - 1
        return first, second

    def _scaled_first(self, batch: Any) -> torch.Tensor:
        """The images to translate at prediction time: the batch, or its first element."""
        first = batch[0] if isinstance(batch, (list, tuple)) else batch
        return first * 2 - 1 if self.scale_inputs else first

    def part(self, name: str) -> nn.Module:
        """A part to call in training steps (its DDP wrapper when distributed)."""
        wrapped = self._wrapped.get(name)
        return wrapped if wrapped is not None else getattr(self.model, name)

    def wrap(self, wrap_fn: Callable[[nn.Module], nn.Module]) -> list[nn.Module]:
        # Each network apart: an optimizer's backward then syncs only its own gradients.
        self._wrapped = {
            p: wrap_fn(getattr(self.model, p)) for ps in self.parts.values() for p in ps
        }
        return list(self._wrapped.values())

    def parameters(self, optimizer: str) -> Iterator[tuple[str, nn.Parameter]]:
        if optimizer not in self.parts:
            raise ConfigError(
                f"the {self.name} task has optimizers {tuple(self.parts)}; got {optimizer!r}"
            )
        return _named({p: getattr(self.model, p) for p in self.parts[optimizer]})

    def _keep(self, batch: tuple[torch.Tensor, ...], *, validation: bool) -> None:
        """Remember the figure's inputs: the first batch of the latest evaluation, else the
        first training batch."""
        if (validation and self._new_evaluation) or self._samples is None:
            self._samples = tuple(t[: self.num_plot].detach().cpu() for t in batch)
        if validation:
            self._new_evaluation = False

    def compute_metrics(self, totals: Totals) -> dict[str, float]:
        self._new_evaluation = True  # the next validation batch starts another evaluation
        return super().compute_metrics(totals)

    _samples: tuple[torch.Tensor, ...] | None = None
    _new_evaluation = True


class Pix2PixTask(_TwoOptimizers):
    """pix2pix: conditional GAN plus L1 on paired ``(source, target, ...)`` batches.

    Logged per step: ``discriminator_loss``, ``discriminator_real_acc``,
    ``discriminator_fake_acc`` (shares of patches classified right),
    ``generator_loss``, ``generator_adv``, ``generator_l1``. Validation metrics, in
    [0, 1] and per image: ``l1``, ``mse``, ``psnr`` (dB) and ``ssim`` (for images of at
    least 11x11), and the discriminator's ``d_real_acc`` and ``d_fake_acc``.

    Args:
        model: has ``.generator`` (source -> image) and ``.discriminator`` (reads
            ``cat([source, image], 1)``), e.g. ``pix2pix``.
        lambda_l1: weight of the L1 term (100 in the paper).
        lambda_adv: weight of the adversarial term; 0 trains the generator on L1 alone
            (the paper's "L1" ablation) and skips the discriminator's steps.
        gan_mode: ``"vanilla"`` (the paper's) or ``"lsgan"``.
        scale_inputs: map source and target from [0, 1] to [-1, 1].
        num_plot: pairs in the figure.
    """

    name = "pix2pix"
    monitor = "l1"
    parts = {"discriminator": ("discriminator",), "generator": ("generator",)}

    def __init__(
        self,
        model: nn.Module,
        *,
        lambda_l1: float = 100.0,
        lambda_adv: float = 1.0,
        gan_mode: Literal["vanilla", "lsgan"] = "vanilla",
        scale_inputs: bool = True,
        num_plot: int = 8,
    ) -> None:
        super().__init__(model, gan_mode=gan_mode, scale_inputs=scale_inputs, num_plot=num_plot)
        if lambda_l1 < 0 or lambda_adv < 0 or lambda_l1 + lambda_adv == 0:
            raise ConfigError(
                f"need lambda_l1 >= 0 and lambda_adv >= 0, not both 0; got lambda_l1={lambda_l1}, "
                f"lambda_adv={lambda_adv}"
            )
        self.lambda_l1 = lambda_l1
        self.lambda_adv = lambda_adv

    def schedule(self) -> list[str]:
        return ["generator"] if self.lambda_adv == 0 else ["discriminator", "generator"]

    def _discriminate(self, net: nn.Module, source: torch.Tensor, image: torch.Tensor) -> Any:
        return net(torch.cat([source, image.to(source.dtype)], dim=1))

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        source, target = self._scaled(batch)
        self._keep(tuple(batch[:2]), validation=False)
        disc = self.part("discriminator")
        if optimizer == "discriminator":
            with torch.no_grad():  # the fakes are constants for the discriminator's step
                fake = self.part("generator")(source)
            real_logits = self._discriminate(disc, source, target).float()
            fake_logits = self._discriminate(disc, source, fake).float()
            loss = 0.5 * (
                adversarial_loss(real_logits, True, self.gan_mode)
                + adversarial_loss(fake_logits, False, self.gan_mode)
            )
            threshold = 0.0 if self.gan_mode == "vanilla" else 0.5
            return {
                "loss": loss,
                "real_acc": (real_logits > threshold).float().mean(),
                "fake_acc": (fake_logits < threshold).float().mean(),
            }
        fake = self.part("generator")(source)
        l1 = (fake.float() - target.float()).abs().mean()
        if self.lambda_adv == 0:
            return {"loss": self.lambda_l1 * l1, "l1": l1}
        adv = adversarial_loss(self._discriminate(disc, source, fake), True, self.gan_mode)
        return {"loss": self.lambda_adv * adv + self.lambda_l1 * l1, "adv": adv, "l1": l1}

    def validation_step(self, batch: Any) -> Totals:
        source, target = self._scaled(batch)
        self._keep(tuple(batch[:2]), validation=True)
        fake = self.model.generator(source)
        totals = _quality_totals(_unit(fake), _unit(target))
        real_logits = self._discriminate(self.model.discriminator, source, target).float()
        fake_logits = self._discriminate(self.model.discriminator, source, fake).float()
        threshold = 0.0 if self.gan_mode == "vanilla" else 0.5
        patches = real_logits.numel()
        totals["d_real_acc"] = (float((real_logits > threshold).sum()), patches)
        totals["d_fake_acc"] = (float((fake_logits < threshold).sum()), patches)
        return totals

    def predict_step(self, batch: Any) -> torch.Tensor:
        """Translations of the batch's sources, in [0, 1]."""
        return _unit(self.model.generator(self._scaled_first(batch)))

    @torch.no_grad()
    def plot(self, out_dir: Path, step: int) -> list[Path]:
        if self._samples is None:
            return []
        with evaluating(self.model) as device:
            source, target = (t.to(device) for t in self._samples[:2])
            fake = self.predict_step((source, target)).cpu()
        path = save_image_grid(
            [_rgb(source.cpu()), _rgb(fake), _rgb(target.cpu())],
            Path(out_dir) / "translations.png",
            titles=["source", f"step {step}", "target"],
        )
        return [path]


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Images with 1 or 3 channels as they are; others (e.g. one-hot maps) as their first 3."""
    return x if x.shape[1] in (1, 3) else x[:, :3]


class ImagePool:
    """A history of generated images for the discriminator (Shrivastava et al. 2017).

    Until ``size`` images are stored, each new image is stored and returned. Then
    each new image is, with probability 1/2, returned as it is; otherwise a stored
    image chosen uniformly is returned and the new one takes its place. Draws come
    from torch's global generator, which the trainer seeds and checkpoints, so a
    resumed run continues the same draws; the stored images are in ``state_dict``.

    Args:
        size: images kept; 0 turns the pool off (every image is returned as it is).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ConfigError(f"pool_size must be >= 0; got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images for the discriminator, one per input (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                i = int(torch.randint(len(self.images), ()).item())
                out.append(self.images[i].to(image))
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.stack([i.cpu() for i in self.images]) if self.images else None
        return {"size": self.size, "images": stored}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        stored = state.get("images")
        self.images = [] if stored is None else [image.clone() for image in stored]


class CycleGANTask(_TwoOptimizers):
    """CycleGAN on unpaired ``(a, b, ...)`` batches: A and B images, any pairing.

    Logged per step: ``generator_loss``, ``generator_adv_ab``, ``generator_adv_ba``,
    ``generator_cycle_a``, ``generator_cycle_b``, ``generator_idt_a``,
    ``generator_idt_b`` (the unweighted terms) and ``discriminator_loss``,
    ``discriminator_a``, ``discriminator_b``. Validation metrics, in [0, 1] and per
    image: ``cycle_a`` and ``cycle_b`` (mean absolute cycle reconstruction error),
    ``cycle`` (their mean), ``g_adv`` (the generators' adversarial loss), and
    ``d_real_acc``/``d_fake_acc`` of both discriminators together.

    Args:
        model: has ``.generator_ab``, ``.generator_ba``, ``.discriminator_a`` and
            ``.discriminator_b``, e.g. ``cyclegan``.
        lambda_cycle: weight of the cycle losses (10 in the paper).
        lambda_identity: identity loss weight relative to ``lambda_cycle`` (0.5 in the
            paper's code); needs both domains to have the same channels.
        pool_size: generated images each discriminator's history keeps (50).
        gan_mode: ``"lsgan"`` (the paper's) or ``"vanilla"``.
        scale_inputs: map images from [0, 1] to [-1, 1].
        num_plot: images per row in the figure.
    """

    name = "cyclegan"
    monitor = "cycle"
    pair_names = ("images_a", "images_b")
    parts = {
        "discriminator": ("discriminator_a", "discriminator_b"),
        "generator": ("generator_ab", "generator_ba"),
    }

    def __init__(
        self,
        model: nn.Module,
        *,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        gan_mode: Literal["vanilla", "lsgan"] = "lsgan",
        scale_inputs: bool = True,
        num_plot: int = 8,
    ) -> None:
        super().__init__(model, gan_mode=gan_mode, scale_inputs=scale_inputs, num_plot=num_plot)
        if lambda_cycle < 0 or lambda_identity < 0:
            raise ConfigError(
                f"need lambda_cycle >= 0 and lambda_identity >= 0; got {lambda_cycle}, "
                f"{lambda_identity}"
            )
        chans_a = getattr(model, "in_chans", None)
        chans_b = getattr(model, "out_chans", None)
        if lambda_identity > 0 and chans_a != chans_b:
            raise ConfigError(
                f"the identity loss feeds domain B images ({chans_b} channels) to G_AB, which "
                f"takes domain A images ({chans_a} channels); set task.lambda_identity=0 for "
                "domains with different channels"
            )
        self.lambda_cycle = lambda_cycle
        self.lambda_identity = lambda_identity
        self.pool_a = ImagePool(pool_size)
        self.pool_b = ImagePool(pool_size)
        # Fakes of the generator step, handed to the discriminator step of the same batch.
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def schedule(self) -> list[str]:
        return ["generator", "discriminator"]

    def _generator_step(self, batch: Any) -> dict[str, torch.Tensor]:
        a, b = self._scaled(batch)
        g_ab, g_ba = self.part("generator_ab"), self.part("generator_ba")
        fake_b, fake_a = g_ab(a), g_ba(b)
        # The discriminators' gradients from this step are discarded: their own step
        # starts from zeroed gradients.
        adv_ab = adversarial_loss(self.part("discriminator_b")(fake_b), True, self.gan_mode)
        adv_ba = adversarial_loss(self.part("discriminator_a")(fake_a), True, self.gan_mode)
        cycle_a = (g_ba(fake_b).float() - a.float()).abs().mean()
        cycle_b = (g_ab(fake_a).float() - b.float()).abs().mean()
        loss = adv_ab + adv_ba + self.lambda_cycle * (cycle_a + cycle_b)
        out = {"adv_ab": adv_ab, "adv_ba": adv_ba, "cycle_a": cycle_a, "cycle_b": cycle_b}
        if self.lambda_identity > 0:
            idt_a = (g_ba(a).float() - a.float()).abs().mean()
            idt_b = (g_ab(b).float() - b.float()).abs().mean()
            loss = loss + self.lambda_cycle * self.lambda_identity * (idt_a + idt_b)
            out |= {"idt_a": idt_a, "idt_b": idt_b}
        del self._pending[:-8]  # never more than a few (grad_accum) batches in flight
        self._pending.append((batch[0], fake_a.detach(), fake_b.detach()))
        return {"loss": loss, **out}

    def _fakes(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        for i, (key, fake_a, fake_b) in enumerate(self._pending):
            if key is batch[0]:
                del self._pending[i]
                return fake_a, fake_b
        a, b = self._scaled(batch)  # no generator step before this one: make them now
        with torch.no_grad():
            return self.part("generator_ba")(b), self.part("generator_ab")(a)

    def _discriminator_step(self, batch: Any) -> dict[str, torch.Tensor]:
        a, b = self._scaled(batch)
        fake_a, fake_b = self._fakes(batch)
        fake_a, fake_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        d_a, d_b = self.part("discriminator_a"), self.part("discriminator_b")
        loss_a = 0.5 * (
            adversarial_loss(d_a(a), True, self.gan_mode)
            + adversarial_loss(d_a(fake_a), False, self.gan_mode)
        )
        loss_b = 0.5 * (
            adversarial_loss(d_b(b), True, self.gan_mode)
            + adversarial_loss(d_b(fake_b), False, self.gan_mode)
        )
        return {"loss": loss_a + loss_b, "a": loss_a, "b": loss_b}

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        _pair(batch, self.name, "images_a", "images_b")
        self._keep(tuple(batch[:2]), validation=False)
        if optimizer == "generator":
            return self._generator_step(batch)
        return self._discriminator_step(batch)

    def validation_step(self, batch: Any) -> Totals:
        a, b = self._scaled(batch)
        self._keep(tuple(batch[:2]), validation=True)
        m = self.model
        fake_b, fake_a = m.generator_ab(a), m.generator_ba(b)
        rec_a, rec_b = m.generator_ba(fake_b), m.generator_ab(fake_a)
        n = len(a)
        err_a = (_unit(rec_a) - _unit(a)).abs().flatten(1).mean(dim=1)
        err_b = (_unit(rec_b) - _unit(b)).abs().flatten(1).mean(dim=1)
        logits = {
            "real": torch.cat([m.discriminator_a(a).flatten(), m.discriminator_b(b).flatten()]),
            "fake": torch.cat(
                [m.discriminator_a(fake_a).flatten(), m.discriminator_b(fake_b).flatten()]
            ),
        }
        adv = adversarial_loss(m.discriminator_b(fake_b), True, self.gan_mode) + adversarial_loss(
            m.discriminator_a(fake_a), True, self.gan_mode
        )
        threshold = 0.0 if self.gan_mode == "vanilla" else 0.5
        patches = logits["real"].numel()
        return {
            "cycle_a": (float(err_a.sum()), n),
            "cycle_b": (float(err_b.sum()), n),
            "cycle": (float((err_a + err_b).sum()) / 2, n),
            "g_adv": (float(adv) * n, n),
            "d_real_acc": (float((logits["real"].float() > threshold).sum()), patches),
            "d_fake_acc": (float((logits["fake"].float() < threshold).sum()), patches),
        }

    def predict_step(self, batch: Any) -> torch.Tensor:
        """A-to-B translations of the batch's A images, in [0, 1]."""
        return _unit(self.model.generator_ab(self._scaled_first(batch)))

    def state_dict(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "pool_a" in state:
            self.pool_a.load_state_dict(state["pool_a"])
            self.pool_b.load_state_dict(state["pool_b"])

    @torch.no_grad()
    def plot(self, out_dir: Path, step: int) -> list[Path]:
        if self._samples is None:
            return []
        model = self.model
        with evaluating(model) as device:
            a, b = (t.to(device) for t in self._samples[:2])
            if self.scale_inputs:
                a, b = a * 2 - 1, b * 2 - 1
            fake_b, fake_a = model.generator_ab(a), model.generator_ba(b)
            rows = [a, fake_b, model.generator_ba(fake_b), b, fake_a, model.generator_ab(fake_a)]
            rows = [_rgb(_unit(r).cpu()) for r in rows]
        path = save_image_grid(
            rows,
            Path(out_dir) / "translations.png",
            titles=["A", "A->B", "A->B->A", "B", "B->A", "B->A->B"],
        )
        return [path]
