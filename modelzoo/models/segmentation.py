"""Semantic segmentation: U-Net, and FCN on a zoo backbone.

* U-Net: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
  Biomedical Image Segmentation" (MICCAI 2015, arXiv:1505.04597). A
  contracting path of double 3x3 convolutions and 2x2 max pools, an expanding
  path of 2x2 up-convolutions, each concatenated with the contracting
  features of its resolution, and a 1x1 classifier. Unlike the paper's valid
  convolutions (whose output is smaller than the input and needs overlap-tile
  inference), the convolutions here are padded, with batch normalization, so
  the output has the input's size: an input whose sides are not multiples of
  ``2 ** depth`` is zero-padded on the bottom and right and the logits are
  cropped back.
* FCN: Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic
  Segmentation" (CVPR 2015, arXiv:1411.4038). A classifier's last feature
  map is scored by a small convolutional head, then fused with 1x1 scores of
  finer levels (``skips=2`` is the paper's FCN-8s, 1 FCN-16s, 0 FCN-32s) and
  upsampled bilinearly to the input size. The new skip scores start at zero,
  as in the paper's staged training. torchvision's ``fcn_resnet50`` is the
  FCN-32s-like variant on a dilated ResNet (``create("torchvision/fcn_resnet50")``).

Every model returns logits (B, num_classes, H, W) at the input resolution;
``num_classes`` counts the background (class 0), as in torchvision.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.layers import (
    LayerType,
    check_image,
    get_act_layer,
    get_norm_layer,
    graph_leaf,
    image_inputs,
    param_dtype,
)
from modelzoo.layers.helpers import model_name
from modelzoo.models.detection import build_backbone
from modelzoo.registry import register_model

__all__ = ["UNet", "FCN", "FCNHead", "DoubleConv"]

_UNET_PAPER = (
    "Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, "
    "MICCAI 2015 (arXiv:1505.04597)"
)
_FCN_PAPER = (
    "Long et al., Fully Convolutional Networks for Semantic Segmentation, CVPR 2015 "
    "(arXiv:1411.4038)"
)


@graph_leaf  # branches on the image size, which FX symbolic tracing cannot
def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad (B, C, H, W) on the bottom and right to sides that are multiples of ``multiple``."""
    h, w = x.shape[-2], x.shape[-1]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))  # (left, right, top, bottom)
    return x


class DoubleConv(nn.Sequential):
    """Two 3x3 conv-norm-activation layers: the unit of both U-Net paths."""

    def __init__(
        self, in_chs: int, out_chs: int, act_layer: type[nn.Module], norm_layer: type[nn.Module]
    ) -> None:
        # A bias before a normalization layer would be cancelled by its mean subtraction.
        bias = norm_layer is nn.Identity
        super().__init__(
            nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=bias),
            norm_layer(out_chs),
            act_layer(),
            nn.Conv2d(out_chs, out_chs, 3, padding=1, bias=bias),
            norm_layer(out_chs),
            act_layer(),
        )


class Down(nn.Sequential):
    """2x2 max pool, then a double convolution."""

    def __init__(
        self, in_chs: int, out_chs: int, act_layer: type[nn.Module], norm_layer: type[nn.Module]
    ) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_chs, out_chs, act_layer, norm_layer))


class Up(nn.Module):
    """Upsample by 2 halving the channels, concatenate the skip, then a double convolution.

    Args:
        in_chs: channels coming from below; the skip has ``in_chs // 2``.
        out_chs: output channels.
        bilinear: bilinear upsampling and a 1x1 convolution instead of the
            paper's 2x2 up-convolution (transposed convolution).
        act_layer: activation type.
        norm_layer: normalization type.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        bilinear: bool,
        act_layer: type[nn.Module],
        norm_layer: type[nn.Module],
    ) -> None:
        super().__init__()
        if bilinear:
            self.up: nn.Module = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_chs, in_chs // 2, 1),
            )
        else:
            self.up = nn.ConvTranspose2d(in_chs, in_chs // 2, 2, stride=2)
        self.conv = DoubleConv(in_chs // 2 * 2, out_chs, act_layer, norm_layer)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat([skip, x], dim=1))  # (B, in_chs, H, W)


class UNet(nn.Module):
    """U-Net: a contracting path, an expanding path with skip connections, a 1x1 classifier.

    Args:
        num_classes: output classes, background included.
        in_chans: input image channels.
        base_channels: width of the first level; each level below doubles it
            (the paper: 64, with depth 4 reaching 1024).
        depth: number of 2x2 poolings; inputs are padded to a multiple of ``2 ** depth``.
        bilinear: bilinear upsampling instead of up-convolutions.
        drop_rate: dropout on the bottleneck features (the paper's "drop-out
            layers at the end of the contracting path").
        act_layer: activation type or name.
        norm_layer: normalization type or name; ``"identity"`` for the paper's none.
        img_size: the input side the model is meant for (example inputs and export).
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 3,
        base_channels: int = 64,
        depth: int = 4,
        bilinear: bool = False,
        drop_rate: float = 0.0,
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.BatchNorm2d,
        img_size: int = 64,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"depth must be >= 1 (poolings); got {depth}")
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1; got {num_classes}")
        act = get_act_layer(act_layer)
        norm = get_norm_layer(norm_layer)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.depth = depth
        self.default_input_size = (img_size, img_size)
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = DoubleConv(in_chans, widths[0], act, norm)
        self.down = nn.ModuleList(Down(i, o, act, norm) for i, o in zip(widths, widths[1:]))
        self.drop = nn.Dropout2d(drop_rate)
        self.up = nn.ModuleList(
            Up(widths[i + 1], widths[i], bilinear, act, norm) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) images to (B, num_classes, H, W) logits, for any H, W."""
        check_image(x, model=model_name(self), in_chans=self.in_chans, dtype=param_dtype(self))
        h, w = x.shape[-2], x.shape[-1]
        skips = [self.stem(_pad_to_multiple(x, 2**self.depth))]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = self.drop(skips.pop())
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)[..., :h, :w]


class FCNHead(nn.Sequential):
    """3x3 conv to a quarter of the channels, norm, ReLU, dropout, 1x1 classifier.

    The layer order of torchvision's ``FCNHead``, so its keys (``0``, ``1``, ``4``) match.
    """

    def __init__(self, in_chs: int, num_classes: int, drop_rate: float = 0.1) -> None:
        inter = in_chs // 4
        super().__init__(
            nn.Conv2d(in_chs, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(),
            nn.Dropout(drop_rate),
            nn.Conv2d(inter, num_classes, 1),
        )


class FCN(nn.Module):
    """A fully convolutional network on a zoo backbone, with FCN-8s-style skip fusion.

    Args:
        num_classes: output classes, background included.
        in_chans: input image channels.
        backbone: name of a registered zoo classifier with ``feature_info``
            (e.g. ``"resnet50"``).
        backbone_kwargs: extra arguments for the backbone's builder (e.g.
            ``pretrained`` to start from a weight set).
        skips: finer feature levels whose scores are fused in (2: FCN-8s on a
            ResNet, strides 32, 16, 8; 0: FCN-32s).
        drop_rate: dropout in the head.
        img_size: the input side the model is meant for (example inputs and export).
    """

    def __init__(
        self,
        num_classes: int = 21,
        in_chans: int = 3,
        backbone: str = "resnet50",
        backbone_kwargs: dict[str, Any] | None = None,
        skips: int = 2,
        drop_rate: float = 0.1,
        img_size: int = 64,
    ) -> None:
        super().__init__()
        if skips < 0:
            raise ConfigError(f"skips must be >= 0; got {skips}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.default_input_size = (img_size, img_size)
        out_indices = list(range(-(skips + 1), 0))
        self.backbone = build_backbone(backbone, in_chans, out_indices, backbone_kwargs)
        channels = self.backbone.channels()
        self.min_input_size = self.backbone.reductions()[-1]
        self.head = FCNHead(channels[-1], num_classes, drop_rate)
        # Finest level last, the order in which they are fused.
        self.skip_scores = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in channels[-2::-1])
        for conv in self.skip_scores:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) images to (B, num_classes, H, W) logits."""
        check_image(
            x,
            model=model_name(self),
            in_chans=self.in_chans,
            min_size=self.min_input_size,
            dtype=param_dtype(self),
        )
        features = self.backbone(x)
        score = self.head(features[-1])
        for feature, conv in zip(features[-2::-1], self.skip_scores, strict=True):
            up = F.interpolate(score, size=feature.shape[-2:], mode="bilinear", align_corners=False)
            score = up + conv(feature)
        return F.interpolate(score, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _segmentation_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, model.num_classes, *model.default_input_size)


def _register(paper: str) -> Any:
    return register_model(
        family="segmentation",
        task="segmentation",
        inputs=image_inputs,
        output_shape=_segmentation_output,
        paper=paper,
    )


@_register(_UNET_PAPER)
def unet_tiny(*, num_classes: int = 5, in_chans: int = 3, **kwargs: Any) -> UNet:
    """U-Net of 16-128 channels and depth 3, for small images (64x64 shapes): 0.48M parameters.

    Dropout keywords: ``drop_rate`` is dropout on the bottleneck features (no classifier head).
    """
    model_args = dict(num_classes=num_classes, in_chans=in_chans, base_channels=16, depth=3)
    return UNet(**dict(model_args, **kwargs))


@_register(_UNET_PAPER)
def unet_small(*, num_classes: int = 2, in_chans: int = 3, **kwargs: Any) -> UNet:
    """U-Net of 32-512 channels and depth 4: the paper's shape at half the width.

    Dropout keywords: ``drop_rate`` is dropout on the bottleneck features (no classifier head).
    """
    model_args = dict(num_classes=num_classes, in_chans=in_chans, base_channels=32, depth=4)
    return UNet(**dict(model_args, **kwargs))


@_register(_UNET_PAPER)
def unet(*, num_classes: int = 2, in_chans: int = 3, **kwargs: Any) -> UNet:
    """The paper's U-Net widths: 64-1024 channels, depth 4.

    Dropout keywords: ``drop_rate`` is dropout on the bottleneck features (no classifier head).
    """
    model_args = dict(num_classes=num_classes, in_chans=in_chans, base_channels=64, depth=4)
    return UNet(**dict(model_args, **kwargs))


@_register(_FCN_PAPER)
def fcn_resnet18(*, num_classes: int = 21, in_chans: int = 3, **kwargs: Any) -> FCN:
    """FCN-8s-style network on ResNet-18 (skips from strides 16 and 8).

    Dropout keywords: ``drop_rate`` is dropout in the segmentation head, before its classifier
    convolution.
    """
    model_args = dict(num_classes=num_classes, in_chans=in_chans, backbone="resnet18")
    return FCN(**dict(model_args, **kwargs))


@_register(_FCN_PAPER)
def fcn_resnet50(*, num_classes: int = 21, in_chans: int = 3, **kwargs: Any) -> FCN:
    """FCN-8s-style network on ResNet-50 (skips from strides 16 and 8).

    Dropout keywords: ``drop_rate`` is dropout in the segmentation head, before its classifier
    convolution.
    """
    model_args = dict(num_classes=num_classes, in_chans=in_chans, backbone="resnet50")
    return FCN(**dict(model_args, **kwargs))
