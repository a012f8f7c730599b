"""Generative adversarial networks: DCGAN and its class-conditional form.

- Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep
  Convolutional Generative Adversarial Networks" (arXiv 1511.06434, 2015; ICLR
  2016): the all-convolutional generator and discriminator, batch norm, ReLU in
  the generator, LeakyReLU(0.2) in the discriminator, tanh output and weights
  drawn from N(0, 0.02).
- Mirza & Osindero, "Conditional Generative Adversarial Nets" (arXiv 1411.1784,
  2014): both networks see the class label. Here the generator appends a label
  embedding to z, and the discriminator reads a learned label map as one extra
  input channel.

Any even ``img_size`` of at least 8 works. The generator starts from an
``s x s`` map, where ``s`` is what is left after halving ``img_size`` while it
stays even and at least 4 (64 -> 4, 32 -> 4, 28 -> 7, 16 -> 4, 8 -> 4), and
doubles the size with stride-2 4x4 transposed convolutions; the discriminator
mirrors it and ends with an ``s x s`` convolution to one logit. With
``img_size=64, in_chans=3, base_channels=64`` this is the paper's network.

Images are in [-1, 1] (the generator ends with tanh): scale real images to
that range before showing them to the discriminator. Discriminator outputs are
logits, one per image, shape ``(B,)``: use ``binary_cross_entropy_with_logits``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, NamedTuple

import torch
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import (
    LayerType,
    check_image,
    get_act_layer,
    graph_leaf,
    param_dtype,
)
from modelzoo.layers.checks import skip_value_checks
from modelzoo.layers.helpers import get_norm_layer_or_none, model_name
from modelzoo.layers.specs import TensorSpec
from modelzoo.registry import register_model

__all__ = ["GANOutput", "DCGANGenerator", "DCGANDiscriminator", "DCGAN", "ConditionalGAN"]

_DCGAN_PAPER = (
    "Radford et al., Unsupervised Representation Learning with Deep Convolutional "
    "Generative Adversarial Networks, arXiv:1511.06434 2015"
)
_CGAN_PAPER = "Mirza & Osindero, Conditional Generative Adversarial Nets, arXiv:1411.1784 2014"


class GANOutput(NamedTuple):
    """What a GAN's forward returns: generated images and the discriminator's verdict."""

    fake: torch.Tensor  # (B, C, H, W) in [-1, 1]
    logits: torch.Tensor  # (B,) discriminator logits on ``fake``


def _plan(img_size: int) -> tuple[int, int]:
    """The start size and the number of stride-2 stages that reach ``img_size``."""
    if not isinstance(img_size, int) or img_size < 8 or img_size % 2:
        raise ConfigError(
            f"img_size must be an even int of at least 8 (e.g. 16, 28, 32, 64); got {img_size!r}. "
            "Resize the images to such a size."
        )
    start, num_up = img_size, 0
    while start % 2 == 0 and start // 2 >= 4:
        start, num_up = start // 2, num_up + 1
    return start, num_up


def dcgan_init(module: nn.Module) -> None:
    """The paper's init: convolutions N(0, 0.02); batch norm weights N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@graph_leaf  # reads shapes and values, which FX symbolic tracing cannot
def _check_labels(
    labels: torch.Tensor | None, batch: int | torch.Tensor, num_classes: int, model: str
) -> None:
    if num_classes == 0:
        if labels is not None:
            raise InputShapeError(
                f"{model} is unconditional and takes no labels; build it with num_classes>0 "
                "(e.g. 'cgan') for a class-conditional model."
            )
        return
    if labels is None:
        raise InputShapeError(
            f"{model} is class-conditional: pass labels of shape ({batch},), ints in "
            f"[0, {num_classes})."
        )
    if labels.ndim != 1 or labels.shape[0] != batch:
        raise InputShapeError(
            f"{model} expects labels of shape ({batch},), one per sample; got shape "
            f"{tuple(labels.shape)}."
        )
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise InputShapeError(
            f"{model} expects integer class labels; got dtype {labels.dtype}. Use labels.long()."
        )
    if skip_value_checks(labels) or labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise InputShapeError(
            f"{model} expects labels in [0, {num_classes}); got labels in [{low}, {high}]. "
            f"Check the labels, or build the model with num_classes>={high + 1}."
        )


def _draw_latent(
    n: int, latent_dim: int, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    z = torch.randn(n, latent_dim, generator=generator, device=device, dtype=like.dtype)
    return z.to(like.device)


@graph_leaf  # branches on the latent's shape, which FX symbolic tracing cannot
def _as_latent(z: torch.Tensor, latent_dim: int, model: str) -> torch.Tensor:
    """Check float latents (B, latent_dim), also taken as (B, latent_dim, 1, 1)."""
    if z.ndim == 4 and z.shape[2] == 1 and z.shape[3] == 1:
        z = z.flatten(1)  # the (B, latent_dim, 1, 1) form of the DCGAN reference code
    if z.ndim != 2 or z.shape[1] != latent_dim or not z.dtype.is_floating_point:
        raise InputShapeError(
            f"{model} expects float latents of shape (B, {latent_dim}); got shape "
            f"{tuple(z.shape)} of dtype {z.dtype}. Draw z with torch.randn(B, {latent_dim}), "
            f"or build the model with latent_dim={z.shape[-1] if z.ndim == 2 else '...'}."
        )
    return z


class DCGANGenerator(nn.Module):
    """Latent vector (and optional class label) to an image in [-1, 1].

    Args:
        latent_dim: size of z.
        img_size: output height and width; an even int of at least 8.
        in_chans: output image channels.
        base_channels: width of the last hidden stage; each earlier stage doubles it.
        num_classes: classes to condition on; 0 for an unconditional generator.
        embed_dim: size of the label embedding appended to z (conditional only).
        act_layer: activation type or name.
        norm_layer: normalization after each hidden convolution; None or "identity" for none.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        img_size: int = 28,
        in_chans: int = 1,
        base_channels: int = 64,
        num_classes: int = 0,
        embed_dim: int = 32,
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        start, num_up = _plan(img_size)
        act = get_act_layer(act_layer)
        norm = get_norm_layer_or_none(norm_layer)
        self.latent_dim = latent_dim
        self.img_size = img_size
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.label_embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        in_dim = latent_dim + (embed_dim if num_classes else 0)
        widths = [base_channels * 2 ** (num_up - 1 - i) for i in range(num_up)]

        def stage(conv: nn.Module, width: int) -> nn.Sequential:
            return nn.Sequential(conv, norm(width) if norm is not None else nn.Identity(), act())

        # z as a 1x1 map; a transposed convolution with an s x s kernel makes it s x s.
        self.project = stage(
            nn.ConvTranspose2d(in_dim, widths[0], start, bias=norm is None), widths[0]
        )
        self.blocks = nn.Sequential(
            *(
                stage(nn.ConvTranspose2d(i, o, 4, 2, 1, bias=norm is None), o)
                for i, o in pairwise(widths)
            )
        )
        self.head = nn.ConvTranspose2d(widths[-1], in_chans, 4, 2, 1)
        self.out_act = nn.Tanh()
        self.apply(dcgan_init)

    def _latent(self, z: torch.Tensor) -> torch.Tensor:
        return _as_latent(z, self.latent_dim, model_name(self, "dcgan_generator"))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, latent_dim)`` (and ``(B,)`` labels) to ``(B, in_chans, img_size, img_size)``."""
        z = self._latent(z)
        _check_labels(labels, z.shape[0], self.num_classes, model_name(self, "dcgan_generator"))
        if self.label_embed is not None:
            z = torch.cat([z, self.label_embed(labels)], dim=1)  # (B, latent_dim + embed_dim)
        x = self.project(z[:, :, None, None])  # (B, D, 1, 1) -> (B, C, s, s)
        return self.out_act(self.head(self.blocks(x)))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate ``n`` images from z ~ N(0, I); conditional models cycle through the
        classes unless ``labels`` are given. Batch norm uses the current mode's statistics."""
        like = self.head.weight
        z = _draw_latent(n, self.latent_dim, like, generator)
        if self.num_classes and labels is None:
            labels = torch.arange(n, device=like.device) % self.num_classes
        return self(z, labels)


class DCGANDiscriminator(nn.Module):
    """Image (and optional class label) to one real-versus-fake logit per image.

    Args:
        img_size: input height and width; an even int of at least 8.
        in_chans: input image channels.
        base_channels: width of the first stage; each later stage doubles it.
        num_classes: classes to condition on; 0 for an unconditional discriminator.
        negative_slope: slope of the LeakyReLU for negative inputs.
        norm_layer: normalization after each convolution but the first; None for
            none (e.g. for a gradient-penalty loss).
    """

    def __init__(
        self,
        img_size: int = 28,
        in_chans: int = 1,
        base_channels: int = 64,
        num_classes: int = 0,
        negative_slope: float = 0.2,
        norm_layer: LayerType = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        start, num_down = _plan(img_size)
        norm = get_norm_layer_or_none(norm_layer)
        self.img_size = img_size
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.default_input_size = (img_size, img_size)
        # One learned H x W map per class, read as an extra input channel.
        self.label_embed = nn.Embedding(num_classes, img_size * img_size) if num_classes else None
        widths = [base_channels * 2**i for i in range(num_down)]
        stem_in = in_chans + (1 if num_classes else 0)
        self.stem = nn.Sequential(
            nn.Conv2d(stem_in, widths[0], 4, 2, 1), nn.LeakyReLU(negative_slope)
        )
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(i, o, 4, 2, 1, bias=norm is None),
                    norm(o) if norm is not None else nn.Identity(),
                    nn.LeakyReLU(negative_slope),
                )
                for i, o in pairwise(widths)
            )
        )
        self.head = nn.Conv2d(widths[-1], 1, start)  # (B, C, s, s) -> (B, 1, 1, 1)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, in_chans, img_size, img_size)`` images in [-1, 1] to ``(B,)`` logits."""
        name = model_name(self, "dcgan_discriminator")
        size = (self.img_size, self.img_size)
        check_image(x, model=name, in_chans=self.in_chans, size=size, dtype=param_dtype(self))
        _check_labels(labels, x.shape[0], self.num_classes, name)
        if self.label_embed is not None:
            label_map = self.label_embed(labels).view(-1, 1, self.img_size, self.img_size)
            x = torch.cat([x, label_map.to(x.dtype)], dim=1)  # (B, C + 1, H, W)
        return self.head(self.blocks(self.stem(x))).view(-1)  # (B, 1, 1, 1) -> (B,)


class _GANBase(nn.Module):
    generator: DCGANGenerator
    discriminator: DCGANDiscriminator

    def _build(
        self,
        latent_dim: int,
        img_size: int,
        in_chans: int,
        base_channels: int,
        num_classes: int,
        embed_dim: int,
        norm_layer: LayerType,
    ) -> None:
        self.latent_dim = latent_dim
        self.img_size = img_size
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.generator = DCGANGenerator(
            latent_dim, img_size, in_chans, base_channels, num_classes, embed_dim,
            norm_layer=norm_layer,
        )  # fmt: skip
        self.discriminator = DCGANDiscriminator(
            img_size, in_chans, base_channels, num_classes, norm_layer=norm_layer
        )


class DCGAN(_GANBase):
    """A DCGAN generator and discriminator in one module.

    ``forward(z)`` runs both, so one call touches every parameter (for shape,
    export and gradient checks); a training loop steps them apart through
    ``model.generator`` and ``model.discriminator``.

    Args:
        latent_dim: size of z.
        img_size: image height and width; an even int of at least 8.
        in_chans: image channels.
        base_channels: width multiplier of both networks.
        norm_layer: normalization of both networks; None or "identity" for none.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        img_size: int = 28,
        in_chans: int = 1,
        base_channels: int = 64,
        norm_layer: LayerType = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self._build(latent_dim, img_size, in_chans, base_channels, 0, 0, norm_layer)

    def forward(self, z: torch.Tensor) -> GANOutput:
        fake = self.generator(z)
        return GANOutput(fake, self.discriminator(fake))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated images ``(n, in_chans, img_size, img_size)`` in [-1, 1]."""
        return self.generator.sample(n, generator=generator)


class ConditionalGAN(_GANBase):
    """A class-conditional DCGAN: both networks take the class label.

    Args:
        latent_dim: size of z.
        img_size: image height and width; an even int of at least 8.
        in_chans: image channels.
        base_channels: width multiplier of both networks.
        num_classes: number of classes.
        embed_dim: size of the generator's label embedding.
        norm_layer: normalization of both networks; None or "identity" for none.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        img_size: int = 28,
        in_chans: int = 1,
        base_channels: int = 64,
        num_classes: int = 10,
        embed_dim: int = 32,
        norm_layer: LayerType = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(
                f"a conditional GAN needs num_classes >= 1; got {num_classes}. Use 'dcgan' "
                "for an unconditional one."
            )
        self._build(
            latent_dim, img_size, in_chans, base_channels, num_classes, embed_dim, norm_layer
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> GANOutput:
        fake = self.generator(z, labels)
        return GANOutput(fake, self.discriminator(fake, labels))

    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` generated images of ``labels`` (default: the classes in turn, 0, 1, ...)."""
        return self.generator.sample(n, labels=labels, generator=generator)


def _latent_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    specs = [TensorSpec((model.latent_dim,), name="z")]
    if model.num_classes:
        specs.append(TensorSpec((), torch.long, 0, model.num_classes, name="labels"))
    return tuple(specs)


def _image_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    specs = [TensorSpec((model.in_chans, model.img_size, model.img_size), name="images")]
    if model.num_classes:
        specs.append(TensorSpec((), torch.long, 0, model.num_classes, name="labels"))
    return tuple(specs)


def _image_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, model.in_chans, model.img_size, model.img_size)


def _logit_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size,)


def _register(inputs: Any, output_shape: Any = None, paper: str = _DCGAN_PAPER) -> Any:
    return register_model(
        family="gan", task="gan", inputs=inputs, output_shape=output_shape, paper=paper
    )


@_register(_latent_inputs, _image_output)
def dcgan_generator(
    *,
    latent_dim: int = 100,
    img_size: int = 28,
    in_chans: int = 1,
    base_channels: int = 64,
    **kwargs: Any,
) -> DCGANGenerator:
    """z (100) to a 1x28x28 image: 7x7x128 -> 14x14x64 -> 28x28x1."""
    model_args = dict(
        latent_dim=latent_dim, img_size=img_size, in_chans=in_chans, base_channels=base_channels
    )
    return DCGANGenerator(**dict(model_args, **kwargs))


@_register(_image_inputs, _logit_output)
def dcgan_discriminator(
    *, img_size: int = 28, in_chans: int = 1, base_channels: int = 64, **kwargs: Any
) -> DCGANDiscriminator:
    """A 1x28x28 image to one logit: 14x14x64 -> 7x7x128 -> 1."""
    model_args = dict(img_size=img_size, in_chans=in_chans, base_channels=base_channels)
    return DCGANDiscriminator(**dict(model_args, **kwargs))


@_register(_latent_inputs)
def dcgan(
    *,
    latent_dim: int = 100,
    img_size: int = 28,
    in_chans: int = 1,
    base_channels: int = 64,
    **kwargs: Any,
) -> DCGAN:
    """``dcgan_generator`` and ``dcgan_discriminator`` in one module, for 1x28x28 images."""
    model_args = dict(
        latent_dim=latent_dim, img_size=img_size, in_chans=in_chans, base_channels=base_channels
    )
    return DCGAN(**dict(model_args, **kwargs))


@_register(_latent_inputs, paper=_CGAN_PAPER)
def cgan(
    *,
    latent_dim: int = 100,
    img_size: int = 28,
    in_chans: int = 1,
    base_channels: int = 64,
    num_classes: int = 10,
    **kwargs: Any,
) -> ConditionalGAN:
    """A class-conditional DCGAN for 1x28x28 images of 10 classes."""
    model_args = dict(
        latent_dim=latent_dim,
        img_size=img_size,
        in_chans=in_chans,
        base_channels=base_channels,
        num_classes=num_classes,
    )
    return ConditionalGAN(**dict(model_args, **kwargs))
