"""Image-to-image translation GANs: pix2pix (paired) and CycleGAN (unpaired).

- Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional
  Adversarial Networks" (CVPR 2017, arXiv:1611.07004): a U-Net generator whose
  encoder is C64-C128-C256-C512-C512-... (4x4 stride-2 convolutions, LeakyReLU
  0.2, batch norm after every one but the first and the innermost) and whose
  decoder mirrors it with transposed convolutions, ReLU, skips from the encoder
  level of the same size and dropout 0.5 in the three 512-wide blocks above the
  innermost (``pix2pix_unet``); and the PatchGAN discriminator, which scores
  every overlapping patch of the (source, image) pair with a logit
  (``patchgan_discriminator``; three layers see 70x70 patches).
- Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
  Cycle-Consistent Adversarial Networks" (ICCV 2017, arXiv:1703.10593): two
  ResNet generators (Johnson et al. 2016: c7s1-64, d128, d256, residual blocks,
  u128, u64, c7s1-3, reflection padding, instance norm; ``cyclegan_generator``)
  and two PatchGAN discriminators with instance norm.

Layouts, widths and initialization (weights from N(0, 0.02), norm scales from
N(1, 0.02)) follow the authors' reference implementation, so the paper
configurations have its parameter counts: ``pix2pix_unet(img_size=256)`` 54.41 M,
``cyclegan_generator(num_blocks=9)`` 11.38 M, the PatchGAN 2.77 M (tests check them).
The defaults here are sized for the zoo's 32x32 data.

Images are in [-1, 1] (the generators end with tanh). Discriminators return
patch logits ``(B, 1, H', W')``; the losses live in the training tasks
(``modelzoo.train.tasks.image_translation``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import LayerType, check_image, get_norm_layer, graph_leaf, param_dtype
from modelzoo.layers.specs import TensorSpec
from modelzoo.models.gan import dcgan_init
from modelzoo.registry import register_model

__all__ = [
    "TranslationOutput",
    "CycleGANOutput",
    "UNetGenerator",
    "PatchDiscriminator",
    "ResnetGenerator",
    "ResnetBlock",
    "Pix2Pix",
    "CycleGAN",
]

_PIX2PIX_PAPER = (
    "Isola et al., Image-to-Image Translation with Conditional Adversarial Networks, "
    "CVPR 2017 (arXiv:1611.07004)"
)
_CYCLEGAN_PAPER = (
    "Zhu et al., Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial "
    "Networks, ICCV 2017 (arXiv:1703.10593)"
)


class TranslationOutput(NamedTuple):
    """What ``Pix2Pix.forward`` returns."""

    fake: torch.Tensor  # (B, out_chans, H, W) in [-1, 1]
    logits: torch.Tensor  # (B, 1, H', W') patch logits of the discriminator on (source, fake)


class CycleGANOutput(NamedTuple):
    """What ``CycleGAN.forward`` returns: both translations, both cycles, both verdicts."""

    fake_b: torch.Tensor  # G_AB(a)
    fake_a: torch.Tensor  # G_BA(b)
    rec_a: torch.Tensor  # G_BA(G_AB(a))
    rec_b: torch.Tensor  # G_AB(G_BA(b))
    logits_b: torch.Tensor  # D_B(fake_b), patch logits
    logits_a: torch.Tensor  # D_A(fake_a), patch logits


def _name(model: nn.Module, default: str) -> str:
    return getattr(model, "model_name", default)


def _resolve_norm(norm_layer: LayerType) -> type[nn.Module] | None:
    """A norm type, or None for none (None and "identity" both mean none)."""
    norm = get_norm_layer(norm_layer) if norm_layer is not None else None
    return None if norm is None or norm is nn.Identity else norm


def _conv_bias(norm: type[nn.Module] | None) -> bool:
    # A bias right before batch norm is cancelled by its mean; instance norm without an
    # affine part keeps it in the reference code, so the parameter counts match it.
    return norm is None or not issubclass(norm, nn.modules.batchnorm._BatchNorm)


def _norm_and_bias(norm_layer: LayerType) -> tuple[type[nn.Module] | None, bool]:
    """The norm type (or None) and whether the convolutions before it take a bias."""
    norm = _resolve_norm(norm_layer)
    return norm, _conv_bias(norm)


def _set_image_io(
    model: nn.Module, in_chans: int, img_size: int | tuple[int, int], out_chans: int | None = None
) -> None:
    """Record the image channels and size every network here exposes (input specs, export)."""
    model.in_chans = in_chans
    if out_chans is not None:
        model.out_chans = out_chans
    model.img_size = _square(img_size)
    model.default_input_size = model.img_size


def _norm(norm: type[nn.Module] | None, channels: int) -> nn.Module:
    return norm(channels) if norm is not None else nn.Identity()


def _square(img_size: int | tuple[int, int]) -> tuple[int, int]:
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"img_size must be a positive int or (H, W); got {img_size!r}")
    return int(size[0]), int(size[1])


@graph_leaf  # reads the image size, which FX symbolic tracing cannot
def _check_multiple(x: torch.Tensor, *, multiple: int, model: str) -> None:
    h, w = x.shape[-2], x.shape[-1]
    if h % multiple or w % multiple:
        raise InputShapeError(
            f"{model} needs image sides that are multiples of {multiple}; got shape "
            f"{tuple(x.shape)}. Resize or pad the images (e.g. to "
            f"{math.ceil(h / multiple) * multiple}x{math.ceil(w / multiple) * multiple})."
        )


# --- pix2pix: U-Net generator ----------------------------------------------------------------


class UNetGenerator(nn.Module):
    """The pix2pix U-Net: ``num_downs`` stride-2 levels down to 1x1 and back, with skips.

    Level ``i`` has ``base_channels * min(2**i, 8)`` channels. The decoder block of
    each level concatenates its output with the encoder output of the level above it
    (``[skip, up]``), as in the reference code.

    Args:
        in_chans: source image channels.
        out_chans: generated image channels.
        img_size: the image side the model is built for; with ``num_downs=None`` the
            U-Net goes down to 1x1 (``log2(img_size)`` levels: 8 for 256, 5 for 32).
        base_channels: width of the first level (``ngf``).
        num_downs: stride-2 levels; images need sides that are multiples of ``2**num_downs``.
        norm_layer: normalization (batch norm in the paper; ``"instancenorm"`` works too).
        drop_rate: dropout in the 512-wide decoder blocks above the innermost (0.5 in the
            paper, where it is the generator's only noise; active in training mode only).
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        img_size: int = 32,
        base_channels: int = 64,
        num_downs: int | None = None,
        norm_layer: LayerType = "batchnorm",
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        size = min(_square(img_size))
        if num_downs is None:
            num_downs = int(math.log2(size)) if size >= 2 else 0
        if num_downs < 2 or size % 2**num_downs:
            raise ConfigError(
                f"the U-Net needs num_downs >= 2 and img_size a multiple of 2**num_downs; got "
                f"img_size={img_size}, num_downs={num_downs}. Use e.g. img_size=32 (5 levels) "
                "or 256 (8)."
            )
        if not 0.0 <= drop_rate < 1.0:
            raise ConfigError(f"drop_rate must be in [0, 1); got {drop_rate}")
        norm, bias = _norm_and_bias(norm_layer)
        _set_image_io(self, in_chans, img_size, out_chans)
        self.num_downs = num_downs
        widths = [base_channels * min(2**i, 8) for i in range(num_downs)]
        downs: list[nn.Module] = [nn.Conv2d(in_chans, widths[0], 4, 2, 1, bias=bias)]
        for i in range(1, num_downs):
            innermost = i == num_downs - 1
            layers = [nn.LeakyReLU(0.2), nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=bias)]
            if not innermost:  # the 1x1 bottleneck is not normalized
                layers.append(_norm(norm, widths[i]))
            downs.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)
        # ups[i] undoes downs[i]; the innermost takes the bottleneck alone, the others
        # the concatenation of a skip and the level below.
        ups: list[nn.Module] = []
        for i in range(num_downs):
            in_width = widths[i] if i == num_downs - 1 else 2 * widths[i]
            if i == 0:
                ups.append(
                    nn.Sequential(
                        nn.ReLU(), nn.ConvTranspose2d(in_width, out_chans, 4, 2, 1), nn.Tanh()
                    )
                )
                continue
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(in_width, widths[i - 1], 4, 2, 1, bias=bias),
                _norm(norm, widths[i - 1]),
            ]
            # The reference puts dropout in the 8x-wide blocks between the widening levels
            # and the innermost (with 8 levels, the three blocks above the innermost).
            if drop_rate > 0 and 4 <= i < num_downs - 1:
                layers.append(nn.Dropout(drop_rate))
            ups.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList(ups)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` in [-1, 1] to ``(B, out_chans, H, W)`` in [-1, 1]."""
        name = _name(self, "pix2pix_unet")
        check_image(x, model=name, in_chans=self.in_chans, dtype=param_dtype(self))
        _check_multiple(x, multiple=2**self.num_downs, model=name)
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        h = self.ups[-1](skips[-1])  # the bottleneck, back up one level
        for i in range(self.num_downs - 2, -1, -1):
            h = self.ups[i](torch.cat([skips[i], h], dim=1))  # (B, 2 * widths[i], ...)
        return h


# --- PatchGAN discriminator ------------------------------------------------------------------


class PatchDiscriminator(nn.Module):
    """The PatchGAN: a logit per overlapping patch instead of one per image.

    ``num_layers`` stride-2 4x4 convolutions (widths ``base_channels * min(2**i, 8)``,
    LeakyReLU 0.2, norm after all but the first), one stride-1 convolution and a
    stride-1 convolution to one channel. Each output logit sees a 70x70 patch with three
    layers, 34x34 with two, 16x16 with one.

    For pix2pix the input is the source and the (real or generated) image concatenated
    along the channels, so ``in_chans`` is their sum.

    Args:
        in_chans: input channels.
        base_channels: width of the first layer (``ndf``).
        num_layers: stride-2 layers.
        norm_layer: normalization (batch norm for pix2pix, instance norm for CycleGAN).
        img_size: the image side used for example inputs and the output shape.
    """

    def __init__(
        self,
        in_chans: int = 3,
        base_channels: int = 64,
        num_layers: int = 3,
        norm_layer: LayerType = "batchnorm",
        img_size: int = 32,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"num_layers must be >= 1; got {num_layers}")
        norm, bias = _norm_and_bias(norm_layer)
        _set_image_io(self, in_chans, img_size)
        self.num_layers = num_layers
        widths = [base_channels * min(2**i, 8) for i in range(num_layers + 1)]
        layers: list[nn.Module] = [nn.Conv2d(in_chans, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, num_layers):
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=bias),
                _norm(norm, widths[i]),
                nn.LeakyReLU(0.2),
            ]
        layers += [
            nn.Conv2d(widths[num_layers - 1], widths[num_layers], 4, 1, 1, bias=bias),
            _norm(norm, widths[num_layers]),
            nn.LeakyReLU(0.2),
            nn.Conv2d(widths[num_layers], 1, 4, 1, 1),
        ]
        self.layers = nn.Sequential(*layers)
        self.apply(dcgan_init)

    @property
    def min_size(self) -> int:
        """The smallest image side that leaves at least one patch."""
        size = 1
        for _ in range(2):  # the two stride-1 4x4 convolutions (padding 1) each take one pixel
            size += 1
        for _ in range(self.num_layers):
            size *= 2
        return size

    def output_size(self, size: int) -> int:
        """The side of the logit map for an input side of ``size``."""
        for _ in range(self.num_layers):
            size = size // 2
        return size - 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` to patch logits ``(B, 1, H', W')``."""
        check_image(
            x,
            model=_name(self, "patchgan_discriminator"),
            in_chans=self.in_chans,
            min_size=self.min_size,
            dtype=param_dtype(self),
        )
        return self.layers(x)


# --- CycleGAN: ResNet generator --------------------------------------------------------------


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 conv-norm layers (ReLU between) and a residual sum."""

    def __init__(self, dim: int, norm: type[nn.Module] | None, drop_rate: float = 0.0) -> None:
        super().__init__()
        bias = _conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3, bias=bias),
            _norm(norm, dim),
            nn.ReLU(),
        ]
        if drop_rate > 0:
            layers.append(nn.Dropout(drop_rate))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s residual translation network, as CycleGAN uses it.

    c7s1-``base``, two stride-2 3x3 convolutions (``2 * base``, ``4 * base``),
    ``num_blocks`` residual blocks at ``4 * base``, two stride-2 transposed
    convolutions back, c7s1-``out_chans`` and tanh. Fully convolutional: any image
    whose sides are multiples of 4 (and at least 4) works.

    Args:
        in_chans: source image channels.
        out_chans: generated image channels.
        base_channels: width of the first layer (``ngf``).
        num_blocks: residual blocks (6 for 128x128 images, 9 for 256x256 in the paper).
        norm_layer: normalization (instance norm in the paper).
        drop_rate: dropout inside the residual blocks (none in the paper).
        img_size: the image side used for example inputs.
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        base_channels: int = 64,
        num_blocks: int = 6,
        norm_layer: LayerType = "instancenorm",
        drop_rate: float = 0.0,
        img_size: int = 32,
    ) -> None:
        super().__init__()
        if num_blocks < 0:
            raise ConfigError(f"num_blocks must be >= 0; got {num_blocks}")
        norm, bias = _norm_and_bias(norm_layer)
        _set_image_io(self, in_chans, img_size, out_chans)
        c = base_channels
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(in_chans, c, 7, bias=bias), _norm(norm, c), nn.ReLU()
        )
        self.down = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(c * m, c * m * 2, 3, 2, 1, bias=bias),
                    _norm(norm, c * m * 2),
                    nn.ReLU(),
                )
                for m in (1, 2)
            )
        )
        self.blocks = nn.Sequential(
            *(ResnetBlock(4 * c, norm, drop_rate) for _ in range(num_blocks))
        )
        self.up = nn.Sequential(
            *(
                nn.Sequential(
                    nn.ConvTranspose2d(c * m, c * m // 2, 3, 2, 1, output_padding=1, bias=bias),
                    _norm(norm, c * m // 2),
                    nn.ReLU(),
                )
                for m in (4, 2)
            )
        )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, out_chans, 7), nn.Tanh())
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` in [-1, 1] to ``(B, out_chans, H, W)`` in [-1, 1]."""
        name = _name(self, "cyclegan_generator")
        check_image(x, model=name, in_chans=self.in_chans, min_size=4, dtype=param_dtype(self))
        _check_multiple(x, multiple=4, model=name)
        return self.head(self.up(self.blocks(self.down(self.stem(x)))))


# --- the pairs --------------------------------------------------------------------------------


class Pix2Pix(nn.Module):
    """A pix2pix generator and its conditional PatchGAN discriminator in one module.

    ``forward(source)`` runs both (one call touches every parameter, for shape,
    export and gradient checks); ``translate(source)`` runs the generator only. The
    training task (``pix2pix``) steps them apart through ``.generator`` and
    ``.discriminator``; the discriminator reads ``cat([source, image], dim=1)``.

    Args:
        in_chans: source image channels.
        out_chans: target image channels.
        img_size: image side (the U-Net goes down to 1x1 from it).
        base_channels: generator width (``ngf``).
        d_base_channels: discriminator width (``ndf``).
        d_layers: PatchGAN stride-2 layers (3: 70x70 patches; 2: 34x34, for small images).
        norm_layer: normalization of both networks.
        drop_rate: the generator's decoder dropout.
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        img_size: int = 32,
        base_channels: int = 64,
        d_base_channels: int = 64,
        d_layers: int = 3,
        norm_layer: LayerType = "batchnorm",
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        _set_image_io(self, in_chans, img_size, out_chans)
        self.generator = UNetGenerator(
            in_chans, out_chans, img_size, base_channels, norm_layer=norm_layer, drop_rate=drop_rate
        )
        self.discriminator = PatchDiscriminator(
            in_chans + out_chans, d_base_channels, d_layers, norm_layer, img_size
        )

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        """The generated image for ``source``, in [-1, 1]."""
        return self.generator(source)

    def discriminate(self, source: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Patch logits of the discriminator on the pair (``source``, ``image``)."""
        return self.discriminator(torch.cat([source, image], dim=1))  # (B, in + out, H, W)

    def forward(self, source: torch.Tensor) -> TranslationOutput:
        fake = self.generator(source)
        return TranslationOutput(fake, self.discriminate(source, fake))


class CycleGAN(nn.Module):
    """CycleGAN's four networks: ``generator_ab``, ``generator_ba``, ``discriminator_a``,
    ``discriminator_b``.

    Domain A images have ``in_chans`` channels, domain B images ``out_chans``.
    ``forward(a, b)`` runs both translations, both cycles and both discriminators
    on the fakes (every parameter in one call); ``translate(x, direction="ab")``
    runs one generator. The training task (``cyclegan``) steps the generators and the
    discriminators with one optimizer each.

    Args:
        in_chans: channels of domain A.
        out_chans: channels of domain B.
        img_size: image side used for example inputs (the networks are fully convolutional).
        base_channels: generator width (``ngf``).
        num_blocks: residual blocks per generator.
        d_base_channels: discriminator width (``ndf``).
        d_layers: PatchGAN stride-2 layers.
        norm_layer: normalization of all four networks.
    """

    def __init__(
        self,
        in_chans: int = 3,
        out_chans: int = 3,
        img_size: int = 32,
        base_channels: int = 64,
        num_blocks: int = 6,
        d_base_channels: int = 64,
        d_layers: int = 3,
        norm_layer: LayerType = "instancenorm",
    ) -> None:
        super().__init__()
        _set_image_io(self, in_chans, img_size, out_chans)

        def generator(i: int, o: int) -> ResnetGenerator:
            return ResnetGenerator(
                i, o, base_channels, num_blocks, norm_layer=norm_layer, img_size=img_size
            )

        def discriminator(c: int) -> PatchDiscriminator:
            return PatchDiscriminator(c, d_base_channels, d_layers, norm_layer, img_size)

        self.generator_ab = generator(in_chans, out_chans)
        self.generator_ba = generator(out_chans, in_chans)
        self.discriminator_a = discriminator(in_chans)
        self.discriminator_b = discriminator(out_chans)

    @property
    def generators(self) -> tuple[ResnetGenerator, ResnetGenerator]:
        return self.generator_ab, self.generator_ba

    @property
    def discriminators(self) -> tuple[PatchDiscriminator, PatchDiscriminator]:
        return self.discriminator_a, self.discriminator_b

    def translate(self, x: torch.Tensor, direction: str = "ab") -> torch.Tensor:
        """Translate A to B (``"ab"``) or B to A (``"ba"``); images in [-1, 1]."""
        if direction == "ab":
            return self.generator_ab(x)
        if direction == "ba":
            return self.generator_ba(x)
        raise ConfigError(f"direction must be 'ab' or 'ba'; got {direction!r}")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> CycleGANOutput:
        fake_b = self.generator_ab(a)
        fake_a = self.generator_ba(b)
        return CycleGANOutput(
            fake_b,
            fake_a,
            self.generator_ba(fake_b),
            self.generator_ab(fake_a),
            self.discriminator_b(fake_b),
            self.discriminator_a(fake_a),
        )


# --- registered builders ---------------------------------------------------------------------


def _image_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    h, w = model.default_input_size
    return (TensorSpec((model.in_chans, h, w), name="images"),)


def _pair_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    h, w = model.default_input_size
    return (
        TensorSpec((model.in_chans, h, w), name="images_a"),
        TensorSpec((model.out_chans, h, w), name="images_b"),
    )


def _translated_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, model.out_chans, *model.default_input_size)


def _patch_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    h, w = model.default_input_size
    return (batch_size, 1, model.output_size(h), model.output_size(w))


def _register(inputs: Any, output_shape: Any = None, paper: str = _PIX2PIX_PAPER) -> Any:
    return register_model(
        family="gan",
        task="image_translation",
        inputs=inputs,
        output_shape=output_shape,
        paper=paper,
    )


@_register(_image_inputs, _translated_output)
def pix2pix_unet(
    *, in_chans: int = 3, out_chans: int = 3, img_size: int = 32, **kwargs: Any
) -> UNetGenerator:
    """The pix2pix U-Net generator, 5 levels for 32x32 (``img_size=256``: the paper's unet_256)."""
    model_args = dict(in_chans=in_chans, out_chans=out_chans, img_size=img_size)
    return UNetGenerator(**dict(model_args, **kwargs))


@_register(_image_inputs, _patch_output)
def patchgan_discriminator(
    *, in_chans: int = 3, num_layers: int = 3, **kwargs: Any
) -> PatchDiscriminator:
    """The 70x70 PatchGAN (three stride-2 layers, 64-512 channels)."""
    model_args = dict(in_chans=in_chans, num_layers=num_layers)
    return PatchDiscriminator(**dict(model_args, **kwargs))


@_register(_image_inputs, _translated_output, paper=_CYCLEGAN_PAPER)
def cyclegan_generator(
    *, in_chans: int = 3, out_chans: int = 3, num_blocks: int = 6, **kwargs: Any
) -> ResnetGenerator:
    """CycleGAN's ResNet generator with 6 residual blocks (9 for 256x256 images in the paper)."""
    model_args = dict(in_chans=in_chans, out_chans=out_chans, num_blocks=num_blocks)
    return ResnetGenerator(**dict(model_args, **kwargs))


@_register(_image_inputs)
def pix2pix(*, in_chans: int = 3, out_chans: int = 3, img_size: int = 32, **kwargs: Any) -> Pix2Pix:
    """pix2pix for 32x32 images: a 5-level U-Net and a 3-layer conditional PatchGAN."""
    model_args = dict(in_chans=in_chans, out_chans=out_chans, img_size=img_size)
    return Pix2Pix(**dict(model_args, **kwargs))


@_register(_pair_inputs, paper=_CYCLEGAN_PAPER)
def cyclegan(
    *, in_chans: int = 3, out_chans: int = 3, img_size: int = 32, **kwargs: Any
) -> CycleGAN:
    """CycleGAN for 32x32 images: two 6-block ResNet generators, two 3-layer PatchGANs."""
    model_args = dict(in_chans=in_chans, out_chans=out_chans, img_size=img_size)
    return CycleGAN(**dict(model_args, **kwargs))
