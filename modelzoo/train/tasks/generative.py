"""Generative tasks: autoencoder reconstruction, the VAE's ELBO, and adversarial training.

- ``ReconstructionTask``: plain and denoising autoencoders (``AEOutput(recon, latent)``).
  A denoising model corrupts its input itself in training mode, so the target is
  always the clean input.
- ``VAETask``: the negative ELBO of Kingma & Welling (2014), with a KL weight
  ``beta`` (Higgins et al. 2017) warmed up from 0 (Bowman et al. 2016).
- ``GANTask``: the non-saturating GAN losses of Goodfellow et al. (2014) with
  two optimizers, ``"discriminator"`` and ``"generator"``, stepped in turn.

Each writes its figures (reconstructions, samples) in ``plot()`` at the end of a run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.train.loggers import save_figure
from modelzoo.train.tasks.base import Task, Totals, evaluating

__all__ = ["ReconstructionTask", "VAETask", "GANTask", "save_image_grid"]

_logger = logging.getLogger(__name__)

_LOSSES = ("mse", "bce")


# --- helpers ---------------------------------------------------------------------------------


def _images_of(batch: Any) -> torch.Tensor:
    """The images of a batch: the batch itself, or its first element ((images, labels))."""
    return batch[0] if isinstance(batch, (list, tuple)) else batch


def _check_loss(loss: str) -> None:
    if loss not in _LOSSES:
        raise ConfigError(f"unknown reconstruction loss {loss!r}; use one of {', '.join(_LOSSES)}")


def _recon_error(
    recon: torch.Tensor, target: torch.Tensor, loss: str, logits: bool
) -> torch.Tensor:
    """Per-element reconstruction error in float32, unreduced (shape of ``target``).

    ``bce`` of probabilities is written out rather than ``F.binary_cross_entropy``,
    which autocast refuses; its logs are clamped at -100 as torch's are.
    """
    recon, target = recon.float(), target.float()
    if loss == "mse":
        return (torch.sigmoid(recon) if logits else recon).sub(target).pow(2)
    if logits:
        return F.binary_cross_entropy_with_logits(recon, target, reduction="none")
    log_p = torch.log(recon).clamp_min(-100.0)
    log_not_p = torch.log1p(-recon).clamp_min(-100.0)
    return -(target * log_p + (1 - target) * log_not_p)


def _produces_logits(model: nn.Module) -> bool:
    """Whether reconstructions are logits: models say so with ``output_range = None``."""
    return hasattr(model, "output_range") and model.output_range is None


def _as_images(x: torch.Tensor, like: torch.Size | None = None) -> torch.Tensor:
    """(N, C, H, W) images for display: flat vectors become square single-channel images."""
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x[:, None]
    flat = x.reshape(x.shape[0], -1)
    if like is not None and len(like) == 3:
        return flat.reshape(-1, *like)
    side = math.isqrt(flat.shape[1])
    if side * side == flat.shape[1]:
        return flat.reshape(-1, 1, side, side)
    return flat.reshape(-1, 1, 1, flat.shape[1])  # no square shape: one row of pixels each


def save_image_grid(
    rows: Sequence[torch.Tensor],
    path: Path,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
) -> Path:
    """Write images as a grid PNG (matplotlib, Agg backend).

    Args:
        rows: image batches (N, C, H, W) with C of 1 or 3; each batch fills its own rows.
        path: the PNG to write.
        value_range: the values shown as black and white.
        titles: one label per batch, written left of its first row.
        ncols: images per row (default: the largest batch, at most 16).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = value_range
    ncols = ncols or min(16, max(len(r) for r in rows))
    layout = [(b, i) for b, r in enumerate(rows) for i in range(0, len(r), ncols)]
    fig, axes = plt.subplots(
        len(layout), ncols, figsize=(ncols * 0.9, len(layout) * 0.9 + 0.2), squeeze=False
    )
    for (b, start), ax_row in zip(layout, axes, strict=True):
        for j, ax in enumerate(ax_row):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axis("off")
            if start + j >= len(rows[b]):
                continue
            img = rows[b][start + j].detach().float().cpu()
            img = ((img - lo) / (hi - lo)).clamp(0, 1)
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img[:3].permute(1, 2, 0).numpy())
        if titles is not None and start == 0:
            ax_row[0].axis("on")
            ax_row[0].set_frame_on(False)
            ax_row[0].set_ylabel(titles[b], fontsize=8)
    fig.tight_layout(pad=0.2)
    return save_figure(fig, path)


class _KeepsSamples:
    """Remembers a few inputs (the last validation batch, else the first training batch)."""

    num_plot: int
    _samples: torch.Tensor | None = None

    def _keep(self, x: torch.Tensor, *, replace: bool) -> None:
        if replace or self._samples is None:
            self._samples = x[: self.num_plot].detach().cpu()


# --- autoencoders ------------------------------------------------------------------------


class ReconstructionTask(_KeepsSamples, Task):
    """Reconstruct the input: ``model(x)`` returns ``AEOutput(recon, latent)`` (or a tensor).

    Batches are images (B, ...) or ``(images, labels)``; labels are ignored.
    Metrics: ``loss`` (the training loss, mean per element) and ``mse`` (mean
    squared error per element, of probabilities when the model returns logits).
    ``plot()`` writes ``reconstructions.png``: originals above their reconstructions.

    Args:
        model: an autoencoder; ``output_range = None`` on it means logits.
        loss: ``"mse"`` or ``"bce"`` (binary cross-entropy, for targets in [0, 1]).
        num_plot: images in the figure.
    """

    name = "reconstruction"
    monitor = "mse"

    def __init__(
        self, model: nn.Module, *, loss: Literal["mse", "bce"] = "mse", num_plot: int = 8
    ) -> None:
        super().__init__(model)
        _check_loss(loss)
        self.loss = loss
        self.num_plot = num_plot

    def _reconstruct(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = net(x)
        recon = out if isinstance(out, torch.Tensor) else getattr(out, "recon", None)
        if recon is None:
            recon = out[0]
        return recon.reshape(x.shape)

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        x = _images_of(batch)
        self._keep(x, replace=False)
        recon = self._reconstruct(self.net, x)
        return {"loss": _recon_error(recon, x, self.loss, _produces_logits(self.model)).mean()}

    def validation_step(self, batch: Any) -> Totals:
        x = _images_of(batch)
        self._keep(x, replace=True)
        recon = self._reconstruct(self.model, x)
        logits = _produces_logits(self.model)
        n = x.numel()
        totals = {"loss": (_recon_error(recon, x, self.loss, logits).sum().item(), n)}
        totals["mse"] = (_recon_error(recon, x, "mse", logits).sum().item(), n)
        return totals

    def predict_step(self, batch: Any) -> torch.Tensor:
        """Reconstructions, shaped like the inputs."""
        recon = self._reconstruct(self.model, _images_of(batch))
        return torch.sigmoid(recon) if _produces_logits(self.model) else recon

    @torch.no_grad()
    def plot(self, out_dir: Path, step: int) -> list[Path]:
        if self._samples is None:
            return []
        with evaluating(self.model) as device:
            x = self._samples.to(device)
            recon = self.predict_step(x).float().cpu()
        x = x.float().cpu()
        lo, hi = float(x.min()), float(x.max())
        path = save_image_grid(
            [_as_images(x), _as_images(recon, x.shape[1:])],
            Path(out_dir) / "reconstructions.png",
            value_range=(lo, hi if hi > lo else lo + 1),
            titles=["input", f"step {step}"],
        )
        return [path]


class VAETask(_KeepsSamples, Task):
    """The negative ELBO of a variational autoencoder, with a KL weight and its warm-up.

    ``model(x)`` returns ``VAEOutput(recon, mu, logvar)``; the loss per sample is
    ``recon_loss(recon, x)`` summed over pixels plus ``beta_t * KL(q(z|x) || N(0, I))``,
    averaged over the batch. ``beta_t`` rises linearly from 0 at the first training
    batch to ``beta`` after ``kl_warmup_steps`` batches (optimizer steps without
    gradient accumulation) and stays there; the count is part of the task's state,
    so a resumed run continues the same schedule.

    Logged per step: ``loss``, ``recon``, ``kl``, ``beta``. Metrics (per sample):
    ``elbo`` (the negative ELBO, ``recon + kl`` with weight 1; in eval mode the
    model decodes ``z = mu``), ``recon`` and ``kl``. ``plot()`` writes
    ``samples.png`` (decoded prior draws) and ``reconstructions.png``.

    Args:
        model: a VAE with ``sample(n, generator=...)``.
        recon_loss: ``"bce"`` (Bernoulli decoder, targets in [0, 1]) or ``"mse"``
            (squared error summed over pixels).
        beta: weight of the KL term after warm-up (1 is the ELBO).
        kl_warmup_steps: training batches over which the weight rises from 0; 0 for none.
        num_plot: images in each figure.
        plot_seed: seed of the prior draws in ``samples.png``.
    """

    name = "vae"
    monitor = "elbo"

    def __init__(
        self,
        model: nn.Module,
        *,
        recon_loss: Literal["mse", "bce"] = "bce",
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        num_plot: int = 16,
        plot_seed: int = 0,
    ) -> None:
        super().__init__(model)
        _check_loss(recon_loss)
        if beta < 0 or kl_warmup_steps < 0:
            raise ConfigError(
                f"need beta >= 0 and kl_warmup_steps >= 0; got beta={beta}, "
                f"kl_warmup_steps={kl_warmup_steps}"
            )
        self.recon_loss = recon_loss
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps
        self.num_plot = num_plot
        self.plot_seed = plot_seed
        self.steps = 0  # training batches seen: the warm-up's clock

    def current_beta(self) -> float:
        """The KL weight of the next training batch."""
        if self.kl_warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, self.steps / self.kl_warmup_steps)

    def _terms(self, net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction error and KL divergence per sample, each (B,)."""
        recon, mu, logvar = net(x)[:3]
        err = _recon_error(recon.reshape(x.shape), x, self.recon_loss, _produces_logits(self.model))
        mu, logvar = mu.float(), logvar.float()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
        return err.flatten(1).sum(dim=1), kl

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        x = _images_of(batch)
        self._keep(x, replace=False)
        beta = self.current_beta()
        self.steps += 1
        recon, kl = self._terms(self.net, x)
        recon, kl = recon.mean(), kl.mean()
        return {
            "loss": recon + beta * kl,
            "recon": recon,
            "kl": kl,
            "beta": torch.tensor(beta),
        }

    def validation_step(self, batch: Any) -> Totals:
        x = _images_of(batch)
        self._keep(x, replace=True)
        recon, kl = self._terms(self.model, x)
        n = len(x)
        return {
            "elbo": ((recon + kl).sum().item(), n),
            "recon": (recon.sum().item(), n),
            "kl": (kl.sum().item(), n),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state.get("steps", 0))

    def predict_step(self, batch: Any) -> torch.Tensor:
        """Reconstructions (decoded from ``z = mu`` in eval mode), shaped like the inputs."""
        x = _images_of(batch)
        recon = self.model(x)[0].reshape(x.shape)
        return torch.sigmoid(recon) if _produces_logits(self.model) else recon

    @torch.no_grad()
    def plot(self, out_dir: Path, step: int) -> list[Path]:
        model = self.model
        shape = self._samples.shape[1:] if self._samples is not None else None
        with evaluating(model) as device:
            generator = torch.Generator(device=device).manual_seed(self.plot_seed)
            samples = model.sample(self.num_plot, generator=generator).float()
            if _produces_logits(model):
                samples = torch.sigmoid(samples)
            recon = None
            if self._samples is not None:
                recon = self.predict_step(self._samples.to(device)).float().cpu()
        out_dir = Path(out_dir)
        paths = [
            save_image_grid(
                [_as_images(samples.cpu(), shape)],
                out_dir / "samples.png",
                titles=[f"step {step}"],
                ncols=min(8, self.num_plot),
            )
        ]
        if recon is not None:
            x = self._samples.float()
            paths.append(
                save_image_grid(
                    [_as_images(x), _as_images(recon, shape)],
                    out_dir / "reconstructions.png",
                    titles=["input", f"step {step}"],
                )
            )
        return paths


# --- GANs ------------------------------------------------------------------------------------


class GANTask(Task):
    """Adversarial training with the non-saturating losses; two optimizers, stepped in turn.

    For each batch the discriminator steps ``d_steps`` times, then the generator
    once (``schedule()``). The discriminator minimizes
    ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` with the fakes generated without gradients
    (detached); the generator minimizes ``BCE(D(G(z)), 1)`` (Goodfellow et al.'s
    non-saturating form). Each optimizer holds only its own network's parameters.
    A conditional model (``num_classes > 0``, e.g. ``cgan``) takes the batch's
    labels for both real and generated images.

    Logged per step: ``discriminator_loss``, ``discriminator_real_acc``,
    ``discriminator_fake_acc``, ``generator_loss``. Metrics on the validation data,
    with z drawn from a generator seeded by ``eval_seed`` (evaluation leaves the
    global random state alone): ``d_loss``, ``g_loss``, ``d_real_acc``,
    ``d_fake_acc`` (shares of real and fake images the discriminator classifies
    right). ``plot()`` writes ``samples.png``.

    Args:
        model: has ``.generator`` (``G(z[, labels])``), ``.discriminator``
            (``D(x[, labels])`` -> logits (B,)), ``latent_dim`` and ``sample(n, generator=)``.
        d_steps: discriminator steps per generator step.
        scale_inputs: map real images from [0, 1] to the generator's [-1, 1].
        num_plot: images in the sample grid.
        eval_seed: seed of the latents used in evaluation and in the figure.
    """

    name = "gan"
    optimizer_names = ("discriminator", "generator")
    monitor = "g_loss"

    def __init__(
        self,
        model: nn.Module,
        *,
        d_steps: int = 1,
        scale_inputs: bool = True,
        num_plot: int = 64,
        eval_seed: int = 0,
    ) -> None:
        super().__init__(model)
        for part in ("generator", "discriminator"):
            if not isinstance(getattr(model, part, None), nn.Module):
                raise ConfigError(
                    f"the gan task trains a model with .generator and .discriminator; "
                    f"{type(model).__name__} has no .{part}. Use e.g. dcgan or cgan."
                )
        if d_steps < 1:
            raise ConfigError(f"d_steps must be >= 1; got {d_steps}")
        self.d_steps = d_steps
        self.scale_inputs = scale_inputs
        self.num_plot = num_plot
        self.eval_seed = eval_seed
        self.conditional = bool(getattr(model, "num_classes", 0))
        self._generator: nn.Module | None = None
        self._discriminator: nn.Module | None = None
        self._eval_rng: torch.Generator | None = None

    # --- the two networks ------------------------------------------------------------------

    @property
    def gen(self) -> nn.Module:
        """The generator to call in training steps (its DDP wrapper when distributed)."""
        return self._generator if self._generator is not None else self.model.generator

    @property
    def disc(self) -> nn.Module:
        """The discriminator to call in training steps (its DDP wrapper when distributed)."""
        return self._discriminator if self._discriminator is not None else self.model.discriminator

    def wrap(self, wrap_fn: Callable[[nn.Module], nn.Module]) -> list[nn.Module]:
        # Wrapped apart: each optimizer's backward then syncs only its own network's grads.
        self._generator = wrap_fn(self.model.generator)
        self._discriminator = wrap_fn(self.model.discriminator)
        return [self._generator, self._discriminator]

    def parameters(self, optimizer: str) -> Iterator[tuple[str, nn.Parameter]]:
        if optimizer not in self.optimizer_names:
            raise ConfigError(
                f"the gan task has optimizers {self.optimizer_names}; got {optimizer!r}"
            )
        return getattr(self.model, optimizer).named_parameters()

    def schedule(self) -> list[str]:
        return ["discriminator"] * self.d_steps + ["generator"]

    # --- steps -----------------------------------------------------------------------------

    def _real(self, batch: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Real images in [-1, 1] and the conditioning (labels) to pass to both networks."""
        images = _images_of(batch)
        if self.scale_inputs:
            images = images * 2 - 1
        cond: tuple[torch.Tensor, ...] = ()
        if self.conditional:
            if not isinstance(batch, (list, tuple)) or len(batch) < 2:
                raise ConfigError(
                    "a conditional GAN needs (images, labels) batches; the data gives images only"
                )
            cond = (batch[1],)
        return images, cond

    def _latent(self, n: int, like: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
        device = rng.device if rng is not None else like.device
        z = torch.randn(n, self.model.latent_dim, generator=rng, device=device)
        return z.to(device=like.device, dtype=like.dtype)

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        real, cond = self._real(batch)
        z = self._latent(len(real), real, None)
        if optimizer == "discriminator":
            with torch.no_grad():  # the fakes are constants for the discriminator's step
                fake = self.gen(z, *cond)
            real_logits = self.disc(real, *cond).float()
            fake_logits = self.disc(fake, *cond).float()
            loss = F.binary_cross_entropy_with_logits(
                real_logits, torch.ones_like(real_logits)
            ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
            return {
                "loss": loss,
                "real_acc": (real_logits > 0).float().mean(),
                "fake_acc": (fake_logits < 0).float().mean(),
            }
        logits = self.disc(self.gen(z, *cond), *cond).float()
        # Non-saturating: maximize log D(G(z)) rather than minimize log(1 - D(G(z))).
        return {"loss": F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))}

    def validation_step(self, batch: Any) -> Totals:
        real, cond = self._real(batch)
        if self._eval_rng is None:
            # On the CPU: the same latents on every device, and the global RNG is left alone.
            self._eval_rng = torch.Generator().manual_seed(self.eval_seed)
        z = self._latent(len(real), real, self._eval_rng)
        generator, discriminator = self.model.generator, self.model.discriminator
        fake = generator(z, *cond)
        real_logits = discriminator(real, *cond).float()
        fake_logits = discriminator(fake, *cond).float()
        ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
        d_loss = F.binary_cross_entropy_with_logits(real_logits, ones, reduction="sum")
        d_loss = d_loss + F.binary_cross_entropy_with_logits(fake_logits, zeros, reduction="sum")
        g_loss = F.binary_cross_entropy_with_logits(fake_logits, ones, reduction="sum")
        n = len(real)
        return {
            "d_loss": (d_loss.item(), n),
            "g_loss": (g_loss.item(), n),
            "d_real_acc": ((real_logits > 0).sum().item(), n),
            "d_fake_acc": ((fake_logits < 0).sum().item(), n),
        }

    def compute_metrics(self, totals: Totals) -> dict[str, float]:
        self._eval_rng = None  # every evaluation draws the same latents
        return super().compute_metrics(totals)

    def predict_step(self, batch: Any) -> torch.Tensor:
        """Generated images in [-1, 1], one per batch row (of the batch's labels if conditional)."""
        real, cond = self._real(batch)
        return self.model.generator(self._latent(len(real), real, None), *cond)

    @torch.no_grad()
    def plot(self, out_dir: Path, step: int) -> list[Path]:
        model = self.model
        with evaluating(model) as device:
            rng = torch.Generator(device=device).manual_seed(self.eval_seed)
            n, ncols = self.num_plot, min(self.num_plot, 8)
            if self.conditional:  # whole rows of the classes in turn: one class per column
                ncols = self.model.num_classes
                n = max(1, n // ncols) * ncols
            samples = model.sample(n, generator=rng).float().cpu()
        path = save_image_grid(
            [samples],
            Path(out_dir) / "samples.png",
            value_range=(-1.0, 1.0),
            ncols=ncols,
        )
        return [path]
