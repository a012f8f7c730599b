"""Autoencoders: plain, denoising and variational, on feature vectors and on images.

- Hinton & Salakhutdinov, "Reducing the Dimensionality of Data with Neural
  Networks" (Science, 2006): the deep autoencoder (``mlp_autoencoder``).
- Masci, Meier, Ciresan & Schmidhuber, "Stacked Convolutional Auto-Encoders for
  Hierarchical Feature Extraction" (ICANN, 2011): ``conv_autoencoder``.
- Vincent, Larochelle, Bengio & Manzagol, "Extracting and Composing Robust
  Features with Denoising Autoencoders" (ICML, 2008): ``denoising_autoencoder``.
- Kingma & Welling, "Auto-Encoding Variational Bayes" (ICLR, 2014): ``vae`` and
  ``conv_vae``.

Conventions shared by every model here:

- ``encode(x)`` maps inputs to latents of shape ``(B, latent_dim)`` (a VAE gives
  the posterior's ``LatentGaussian(mu, logvar)``), ``decode(z)`` maps latents back.
- ``forward`` returns ``AEOutput(recon, latent)`` or ``VAEOutput(recon, mu, logvar)``,
  with ``recon`` shaped like the input.
- Reconstructions go through ``out_act``, by default a sigmoid: outputs lie in
  [0, 1], for images scaled to [0, 1] and a mean-squared-error or binary
  cross-entropy loss. ``out_act="tanh"`` suits images in [-1, 1]; ``out_act="identity"``
  returns logits (use ``binary_cross_entropy_with_logits``). The model states
  the range it produces in ``output_range`` (None for logits).
- Default inputs are MNIST-sized: 784 features for the MLP models, 1x28x28
  images for the convolutional ones. ``in_features=64`` or ``img_size=8`` fits the
  8x8 digits; convolutional models take any ``img_size`` (an int or ``(H, W)``).
- Corruption (denoising) and the VAE's sampling of ``z`` happen only in training
  mode: in eval mode every model is deterministic and a VAE decodes ``z = mu``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any, NamedTuple

import torch
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import (
    LayerType,
    as_features,
    check_image,
    feature_inputs,
    get_act_layer,
    graph_leaf,
    image_inputs,
    param_dtype,
)
from modelzoo.layers.helpers import get_norm_layer_or_none, model_name
from modelzoo.registry import register_model

__all__ = [
    "AEOutput",
    "VAEOutput",
    "LatentGaussian",
    "Corruption",
    "MLPAutoencoder",
    "ConvAutoencoder",
    "VAE",
    "ConvVAE",
    "NOISE_TYPES",
]

_AE_PAPER = (
    "Hinton & Salakhutdinov, Reducing the Dimensionality of Data with Neural Networks, Science 2006"
)
_CAE_PAPER = (
    "Masci et al., Stacked Convolutional Auto-Encoders for Hierarchical Feature "
    "Extraction, ICANN 2011"
)
_DAE_PAPER = (
    "Vincent et al., Extracting and Composing Robust Features with Denoising "
    "Autoencoders, ICML 2008"
)
_VAE_PAPER = "Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014"

NOISE_TYPES = ("gaussian", "masking", "salt_pepper")

# The value range each output activation produces; salt-and-pepper noise uses it.
_OUTPUT_RANGES: dict[type[nn.Module], tuple[float, float]] = {
    nn.Sigmoid: (0.0, 1.0),
    nn.Tanh: (-1.0, 1.0),
}


class AEOutput(NamedTuple):
    """What a plain or denoising autoencoder returns."""

    recon: torch.Tensor  # shaped like the input, in ``output_range``
    latent: torch.Tensor  # (B, latent_dim)


class VAEOutput(NamedTuple):
    """What a variational autoencoder returns."""

    recon: torch.Tensor  # shaped like the input, decoded from z (z = mu in eval mode)
    mu: torch.Tensor  # (B, latent_dim), mean of q(z|x)
    logvar: torch.Tensor  # (B, latent_dim), log-variance of q(z|x)


class LatentGaussian(NamedTuple):
    """The diagonal Gaussian posterior q(z|x) a VAE's ``encode`` returns."""

    mu: torch.Tensor  # (B, latent_dim)
    logvar: torch.Tensor  # (B, latent_dim)


def _as_size(img_size: int | Sequence[int]) -> tuple[int, int]:
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"img_size must be a positive int or (H, W); got {img_size!r}")
    return (int(size[0]), int(size[1]))


def _output_range(act: type[nn.Module]) -> tuple[float, float] | None:
    return next((r for t, r in _OUTPUT_RANGES.items() if issubclass(act, t)), None)


class Corruption(nn.Module):
    """Input corruption for denoising autoencoders, applied in training mode only.

    Args:
        noise: ``"gaussian"`` (add ``noise_level`` times standard normal noise),
            ``"masking"`` (set each value to zero with probability ``noise_level``,
            without rescaling, as in Vincent et al.), ``"salt_pepper"`` (set each
            value with probability ``noise_level`` to the low or the high end of
            ``value_range``, each with even odds), or None for no corruption.
        noise_level: the noise's standard deviation or probability.
        value_range: the (low, high) values of salt-and-pepper noise; None takes
            the batch's minimum and maximum.
    """

    def __init__(
        self,
        noise: str | None = None,
        noise_level: float = 0.1,
        value_range: tuple[float, float] | None = (0.0, 1.0),
    ) -> None:
        super().__init__()
        if noise is not None and noise not in NOISE_TYPES:
            raise ConfigError(
                f"unknown noise {noise!r}; choose one of {', '.join(NOISE_TYPES)}, or None"
            )
        if noise_level < 0 or (noise in ("masking", "salt_pepper") and noise_level > 1):
            raise ConfigError(
                f"noise_level for {noise!r} noise must be "
                f"{'a probability in [0, 1]' if noise != 'gaussian' else '>= 0'}; "
                f"got {noise_level}"
            )
        self.noise = noise
        self.noise_level = float(noise_level)
        self.value_range = value_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.noise is None or self.noise_level == 0:
            return x
        if self.noise == "gaussian":
            return x + self.noise_level * torch.randn_like(x)
        hit = torch.rand_like(x) < self.noise_level
        if self.noise == "masking":
            return x.masked_fill(hit, 0.0)
        if self.value_range is None:
            low, high = x.detach().amin(), x.detach().amax()
        else:
            low, high = (x.new_tensor(v) for v in self.value_range)
        salt = torch.rand_like(x) < 0.5
        noisy = torch.where(salt, high, low)
        return torch.where(hit, noisy, x)

    def extra_repr(self) -> str:
        return f"noise={self.noise!r}, noise_level={self.noise_level}"


def _linear_stack(
    widths: Sequence[int], act: type[nn.Module], norm: type[nn.Module] | None
) -> nn.Sequential:
    """Linear, optional norm, activation; for each consecutive pair of widths."""
    layers: list[nn.Module] = []
    for i, o in pairwise(widths):
        layers += [nn.Linear(i, o, bias=norm is None)]
        layers += [norm(o)] if norm is not None else []
        layers += [act()]
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions; each stage halves the size (rounding up)."""

    def __init__(
        self,
        in_chans: int,
        channels: Sequence[int],
        act: type[nn.Module],
        norm: type[nn.Module] | None,
    ) -> None:
        super().__init__()
        widths = [in_chans, *channels]
        stages = []
        for i, o in pairwise(widths):
            stage = [nn.Conv2d(i, o, 3, stride=2, padding=1, bias=norm is None)]
            stage += [norm(o)] if norm is not None else []
            stages.append(nn.Sequential(*stage, act()))
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


class ConvDecoder(nn.Module):
    """Mirror of ``ConvEncoder``: stride-2 transposed convolutions back to ``sizes``.

    A 3x3 transposed convolution of stride 2 and padding 1 maps n to 2n - 1 +
    output_padding, so an output padding of 1 restores even sizes and 0 odd ones:
    every size the encoder halved (rounding up) comes back exactly.
    """

    def __init__(
        self,
        out_chans: int,
        channels: Sequence[int],
        sizes: Sequence[tuple[int, int]],
        act: type[nn.Module],
        norm: type[nn.Module] | None,
        out_act: type[nn.Module],
    ) -> None:
        super().__init__()
        # sizes[i] is the input size of encoder stage i; decoder stage j restores it.
        widths = [*reversed(channels), channels[0]]
        targets = list(reversed(sizes))
        stages = []
        for (i, o), (h, w) in zip(pairwise(widths), targets, strict=True):
            pad = (1 - h % 2, 1 - w % 2)
            stage = [nn.ConvTranspose2d(i, o, 3, 2, 1, output_padding=pad, bias=norm is None)]
            stage += [norm(o)] if norm is not None else []
            stages.append(nn.Sequential(*stage, act()))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Conv2d(channels[0], out_chans, 3, padding=1)
        self.out_act = out_act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(self.head(self.stages(x)))


@graph_leaf  # reads the latent's shape, which FX symbolic tracing cannot
def _check_latent(z: torch.Tensor, *, latent_dim: int, model: str) -> None:
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise InputShapeError(
            f"{model}.decode expects latents of shape (B, {latent_dim}); got shape "
            f"{tuple(z.shape)}. Build the model with latent_dim={z.shape[-1]} or pass latents "
            "of the model's latent_dim."
        )


class _AutoencoderBase(nn.Module):
    """Shared methods; subclasses define ``encode`` and ``decode``."""

    latent_dim: int
    corrupt: Corruption

    def encode(self, x: torch.Tensor) -> Any:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_latent(self, z: torch.Tensor) -> None:
        _check_latent(z, latent_dim=self.latent_dim, model=model_name(self, type(self).__name__))


class _PlainAutoencoder(_AutoencoderBase):
    def forward(self, x: torch.Tensor) -> AEOutput:
        """Corrupt ``x`` (training mode, when the model has noise), encode, decode."""
        latent = self.encode(self.corrupt(x))
        return AEOutput(self.decode(latent).reshape(x.shape), latent)


class _VariationalAutoencoder(_AutoencoderBase):
    fc_mu: nn.Linear
    fc_logvar: nn.Linear

    def _posterior(self, h: torch.Tensor) -> LatentGaussian:
        return LatentGaussian(self.fc_mu(h), self.fc_logvar(h))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps in training mode (gradients flow to mu and logvar); mu in eval."""
        if not self.training:
            return mu
        std = torch.exp(0.5 * logvar)
        return mu + std * torch.randn_like(std)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return VAEOutput(self.decode(z).reshape(x.shape), mu, logvar)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I).

        Args:
            n: how many samples.
            generator: a torch.Generator for reproducible draws (on any device).

        Returns:
            ``(n, in_features)`` for MLP models, ``(n, C, H, W)`` for conv models.
        """
        p = next(self.parameters())
        device = generator.device if generator is not None else p.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device, dtype=p.dtype)
        return self.decode(z.to(p.device))


class _MLPMixin:
    in_features: int

    def _flatten(self, x: torch.Tensor) -> torch.Tensor:
        # (B, ...) -> (B, in_features), e.g. (B, 1, 28, 28) images for 784 features
        name = model_name(self, type(self).__name__)
        return as_features(x, model=name, in_features=self.in_features, dtype=param_dtype(self))


class MLPAutoencoder(_MLPMixin, _PlainAutoencoder):
    """A fully connected autoencoder with a symmetric decoder.

    Inputs are ``(B, in_features)`` or anything that flattens to it after the batch
    dimension (e.g. ``(B, 1, 28, 28)``); ``recon`` keeps the input's shape, while
    ``decode`` returns ``(B, in_features)``.

    Args:
        in_features: size of each (flattened) input.
        latent_dim: size of the code.
        hidden_sizes: encoder widths; the decoder uses them in reverse.
        act_layer: activation type or name.
        norm_layer: normalization after each hidden linear (e.g. ``"batchnorm1d"``).
        out_act: activation of the reconstruction; sigmoid gives [0, 1],
            "identity" logits.
        noise: input corruption in training mode (see ``Corruption``); None for none
            (``noise_level=0`` also turns it off).
        noise_level: its standard deviation or probability.
    """

    def __init__(
        self,
        in_features: int = 784,
        latent_dim: int = 32,
        hidden_sizes: Sequence[int] = (512, 256),
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = None,
        out_act: LayerType = "sigmoid",
        noise: str | None = None,
        noise_level: float = 0.1,
    ) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ConfigError("hidden_sizes needs at least one width")
        act = get_act_layer(act_layer)
        norm = get_norm_layer_or_none(norm_layer)
        final = get_act_layer(out_act)
        self.in_features = in_features
        self.latent_dim = latent_dim
        self.output_range = _output_range(final)
        self.corrupt = Corruption(noise, noise_level, self.output_range)
        widths = [in_features, *hidden_sizes]
        self.encoder = nn.Sequential(
            _linear_stack(widths, act, norm), nn.Linear(widths[-1], latent_dim)
        )
        back = [latent_dim, *reversed(hidden_sizes)]
        self.decoder = nn.Sequential(
            _linear_stack(back, act, norm), nn.Linear(back[-1], in_features), final()
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_features)`` (or images that flatten to it) to ``(B, latent_dim)``."""
        return self.encoder(self._flatten(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` to ``(B, in_features)``."""
        self._check_latent(z)
        return self.decoder(z)


class VAE(_MLPMixin, _VariationalAutoencoder):
    """A fully connected variational autoencoder with a diagonal Gaussian posterior.

    The decoder is Bernoulli in the paper's MNIST experiments: with the default
    sigmoid ``out_act`` the reconstruction is the pixel probability, and the
    negative ELBO is ``binary_cross_entropy(recon, x, reduction="sum")`` plus
    ``-0.5 * sum(1 + logvar - mu**2 - logvar.exp())``.

    Args:
        in_features: size of each (flattened) input.
        latent_dim: size of z.
        hidden_sizes: encoder widths; the decoder uses them in reverse.
        act_layer: activation type or name.
        norm_layer: normalization after each hidden linear.
        out_act: activation of the reconstruction; sigmoid gives [0, 1],
            "identity" logits.
    """

    def __init__(
        self,
        in_features: int = 784,
        latent_dim: int = 20,
        hidden_sizes: Sequence[int] = (400,),
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = None,
        out_act: LayerType = "sigmoid",
    ) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ConfigError("hidden_sizes needs at least one width")
        act = get_act_layer(act_layer)
        norm = get_norm_layer_or_none(norm_layer)
        final = get_act_layer(out_act)
        self.in_features = in_features
        self.latent_dim = latent_dim
        self.output_range = _output_range(final)
        self.encoder = _linear_stack([in_features, *hidden_sizes], act, norm)
        self.fc_mu = nn.Linear(hidden_sizes[-1], latent_dim)
        self.fc_logvar = nn.Linear(hidden_sizes[-1], latent_dim)
        back = [latent_dim, *reversed(hidden_sizes)]
        self.decoder = nn.Sequential(
            _linear_stack(back, act, norm), nn.Linear(back[-1], in_features), final()
        )

    def encode(self, x: torch.Tensor) -> LatentGaussian:
        """``(B, in_features)`` to the posterior's ``(mu, logvar)``, each ``(B, latent_dim)``."""
        return self._posterior(self.encoder(self._flatten(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` to ``(B, in_features)``."""
        self._check_latent(z)
        return self.decoder(z)


class _ConvMixin(nn.Module):
    in_chans: int
    img_size: tuple[int, int]
    latent_dim: int
    encoder: ConvEncoder
    decoder: ConvDecoder
    fc_dec: nn.Sequential

    def _build_conv(
        self,
        in_chans: int,
        img_size: int | Sequence[int],
        latent_dim: int,
        channels: Sequence[int],
        act_layer: LayerType,
        norm_layer: LayerType,
        out_act: LayerType,
    ) -> int:
        """Build encoder, decoder and the latent-to-map projection; returns the flat size."""
        if not channels:
            raise ConfigError("channels needs at least one width (one per stride-2 stage)")
        act = get_act_layer(act_layer)
        norm = get_norm_layer_or_none(norm_layer)
        final = get_act_layer(out_act)
        self.in_chans = in_chans
        self.img_size = _as_size(img_size)
        self.default_input_size = self.img_size
        self.latent_dim = latent_dim
        self.output_range = _output_range(final)
        sizes = [self.img_size]  # the input size of each encoder stage, then the bottom
        for _ in channels:
            h, w = sizes[-1]
            sizes.append(((h + 1) // 2, (w + 1) // 2))
        self.bottom = (channels[-1], *sizes[-1])  # (C, h, w) of the innermost map
        flat = channels[-1] * sizes[-1][0] * sizes[-1][1]
        self.encoder = ConvEncoder(in_chans, channels, act, norm)
        self.fc_dec = nn.Sequential(nn.Linear(latent_dim, flat), act())
        self.decoder = ConvDecoder(in_chans, channels, sizes[:-1], act, norm, final)
        return flat

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        check_image(
            x,
            model=model_name(self, type(self).__name__),
            in_chans=self.in_chans,
            size=self.img_size,
            dtype=param_dtype(self),
        )
        return self.encoder(x).flatten(1)  # (B, C, h, w) -> (B, C*h*w)

    def _decode_map(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fc_dec(z).view(-1, *self.bottom))  # (B, C, h, w)


class ConvAutoencoder(_ConvMixin, _PlainAutoencoder):
    """A convolutional autoencoder with a vector code.

    Each entry of ``channels`` is one stride-2 3x3 convolution (the size halves,
    rounding up); a linear layer maps the innermost map to ``latent_dim``. The
    decoder mirrors it with transposed convolutions that restore each size
    exactly, so any ``img_size`` works (28 -> 14 -> 7 and back; 8 -> 4 -> 2).

    Args:
        in_chans: image channels.
        img_size: image size, an int or ``(H, W)``.
        latent_dim: size of the code.
        channels: widths of the stride-2 stages, outermost first.
        act_layer: activation type or name.
        norm_layer: normalization after each convolution; None or "identity" for none.
        out_act: activation of the reconstruction; sigmoid gives [0, 1],
            "identity" logits.
        noise: input corruption in training mode (see ``Corruption``); None for none
            (``noise_level=0`` also turns it off).
        noise_level: its standard deviation or probability.
    """

    def __init__(
        self,
        in_chans: int = 1,
        img_size: int | tuple[int, int] = 28,
        latent_dim: int = 32,
        channels: Sequence[int] = (32, 64),
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.BatchNorm2d,
        out_act: LayerType = "sigmoid",
        noise: str | None = None,
        noise_level: float = 0.1,
    ) -> None:
        super().__init__()
        flat = self._build_conv(
            in_chans, img_size, latent_dim, channels, act_layer, norm_layer, out_act
        )
        self.fc_enc = nn.Linear(flat, latent_dim)
        self.corrupt = Corruption(noise, noise_level, self.output_range)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` to ``(B, latent_dim)``."""
        return self.fc_enc(self._features(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` to ``(B, in_chans, H, W)``."""
        self._check_latent(z)
        return self._decode_map(z)


class ConvVAE(_ConvMixin, _VariationalAutoencoder):
    """A convolutional variational autoencoder; the layout of ``ConvAutoencoder``.

    Args:
        in_chans: image channels.
        img_size: image size, an int or ``(H, W)``.
        latent_dim: size of z.
        channels: widths of the stride-2 stages, outermost first.
        act_layer: activation type or name.
        norm_layer: normalization after each convolution; None or "identity" for none.
        out_act: activation of the reconstruction; sigmoid gives [0, 1],
            "identity" logits.
    """

    def __init__(
        self,
        in_chans: int = 1,
        img_size: int | tuple[int, int] = 28,
        latent_dim: int = 20,
        channels: Sequence[int] = (32, 64),
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.BatchNorm2d,
        out_act: LayerType = "sigmoid",
    ) -> None:
        super().__init__()
        flat = self._build_conv(
            in_chans, img_size, latent_dim, channels, act_layer, norm_layer, out_act
        )
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)

    def encode(self, x: torch.Tensor) -> LatentGaussian:
        """``(B, in_chans, H, W)`` to the posterior's ``(mu, logvar)``, each ``(B, latent_dim)``."""
        return self._posterior(self._features(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, latent_dim)`` to ``(B, in_chans, H, W)``."""
        self._check_latent(z)
        return self._decode_map(z)


def _register(task: str, inputs: Any, paper: str) -> Any:
    return register_model(family="autoencoder", task=task, inputs=inputs, paper=paper)


@_register("reconstruction", feature_inputs, _AE_PAPER)
def mlp_autoencoder(
    *, in_features: int = 784, latent_dim: int = 32, **kwargs: Any
) -> MLPAutoencoder:
    """784-512-256-32 and back; ``in_features=64`` for the 8x8 digits."""
    model_args = dict(in_features=in_features, latent_dim=latent_dim, hidden_sizes=(512, 256))
    return MLPAutoencoder(**dict(model_args, **kwargs))


@_register("reconstruction", image_inputs, _CAE_PAPER)
def conv_autoencoder(
    *, in_chans: int = 1, img_size: int | tuple[int, int] = 28, latent_dim: int = 32, **kwargs: Any
) -> ConvAutoencoder:
    """Two stride-2 stages of 32 and 64 channels (28 -> 7) and a 32-d code."""
    model_args = dict(in_chans=in_chans, img_size=img_size, latent_dim=latent_dim)
    return ConvAutoencoder(**dict(model_args, **kwargs))


@_register("reconstruction", image_inputs, _DAE_PAPER)
def denoising_autoencoder(
    *, in_chans: int = 1, img_size: int | tuple[int, int] = 28, latent_dim: int = 32, **kwargs: Any
) -> ConvAutoencoder:
    """``conv_autoencoder`` trained on inputs with 25% masking noise, as in Vincent et al.

    The weights are those of ``conv_autoencoder`` (same state-dict keys); only
    training-mode corruption differs. ``noise`` and ``noise_level`` override it.
    """
    model_args = dict(
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        noise="masking",
        noise_level=0.25,
    )
    return ConvAutoencoder(**dict(model_args, **kwargs))


@_register("vae", feature_inputs, _VAE_PAPER)
def vae(*, in_features: int = 784, latent_dim: int = 20, **kwargs: Any) -> VAE:
    """The 784-400-20 VAE of Kingma & Welling's MNIST experiments."""
    model_args = dict(in_features=in_features, latent_dim=latent_dim, hidden_sizes=(400,))
    return VAE(**dict(model_args, **kwargs))


@_register("vae", image_inputs, _VAE_PAPER)
def conv_vae(
    *, in_chans: int = 1, img_size: int | tuple[int, int] = 28, latent_dim: int = 20, **kwargs: Any
) -> ConvVAE:
    """Two stride-2 stages of 32 and 64 channels (28 -> 7) and a 20-d z."""
    model_args = dict(in_chans=in_chans, img_size=img_size, latent_dim=latent_dim)
    return ConvVAE(**dict(model_args, **kwargs))
