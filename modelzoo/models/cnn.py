"""Plain convolutional networks: LeNet-5, a small configurable CNN, and VGG.

- LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
  recognition" (Proc. IEEE, 1998): LeNet-5.
- Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition" (arXiv 1409.1556, 2014; ICLR 2015): VGG-11/13/16/19, here also with
  batch normalization (Ioffe & Szegedy, 2015) as the ``_bn`` variants.

The VGG modules are named as in torchvision (``features.N``, ``avgpool``,
``classifier.0/.3/.6``), so torchvision's state dicts load without remapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import InputShapeError
from modelzoo.layers import (
    LayerType,
    check_image,
    get_act_layer,
    graph_leaf,
    image_inputs,
    param_dtype,
)
from modelzoo.layers.helpers import get_norm_layer_or_none, make_act, model_name
from modelzoo.registry import register_model

__all__ = ["LeNet5", "SmallCNN", "VGG"]

_LENET_PAPER = (
    "LeCun et al., Gradient-based learning applied to document recognition, Proc. IEEE 1998"
)
_VGG_PAPER = (
    "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
    "Recognition, arXiv:1409.1556 2014"
)

# VGG layer plans: an int is a 3x3 convolution with that many output channels,
# "M" a 2x2 max pool of stride 2.
_VGG_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
              "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512,
              512, 512, 512, "M"],
}  # fmt: skip


@graph_leaf  # branches on the image size, which FX symbolic tracing cannot
def _pad_to_field(x: torch.Tensor, size: int, model: str) -> torch.Tensor:
    """Zero-pad (B, C, H, W) images to (B, C, size, size), centred; refuse larger ones."""
    h, w = x.shape[2], x.shape[3]
    if h > size or w > size:
        raise InputShapeError(
            f"{model} expects images of shape (B, {x.shape[1]}, H, W) with H, W <= {size}; "
            f"got shape {tuple(x.shape)}. Resize the images to {size}x{size} or smaller "
            f"(smaller ones are zero-padded to {size}x{size})."
        )
    if h < size or w < size:
        top, left = (size - h) // 2, (size - w) // 2
        x = F.pad(x, (left, size - w - left, top, size - h - top))
    return x


class LeNet5(nn.Module):
    """LeNet-5 for one 32x32 field; smaller images are zero-padded to it, centred.

    The paper fed 28x28 MNIST digits centred in a 32x32 field; padding inside the
    model does the same, so 28x28 (or 8x8) images work as they are. Departures from
    the paper, as in every modern reimplementation: C3 connects to all S2 maps
    instead of the paper's connection table, the subsampling layers are plain
    average pools, and the RBF output layer is a linear classifier.

    Args:
        num_classes: output size; 0 makes the head an identity.
        in_chans: input channels.
        act_layer: activation type or name (the paper used a scaled tanh).
        drop_rate: dropout before the classifier.
    """

    field_size = 32  # the paper's input field; inputs larger than this are refused

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        act_layer: LayerType = nn.Tanh,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        act = get_act_layer(act_layer)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 84
        self.default_input_size = (self.field_size, self.field_size)
        self.conv1 = nn.Conv2d(in_chans, 6, kernel_size=5)  # C1: 32 -> 28
        self.act1 = act()
        self.pool1 = nn.AvgPool2d(2)  # S2: 28 -> 14
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)  # C3: 14 -> 10
        self.act2 = act()
        self.pool2 = nn.AvgPool2d(2)  # S4: 10 -> 5
        # C5 is a 5x5 convolution over a 5x5 map, i.e. fully connected.
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.act3 = act()
        self.fc2 = nn.Linear(120, self.num_features)  # F6
        self.act4 = act()
        self.drop = nn.Dropout(drop_rate)
        self.head = self._make_head(num_classes)
        # Reductions are cumulative strides; the valid convolutions also trim 4 pixels each.
        self.feature_info = [
            dict(num_chs=6, reduction=2, module="pool1"),
            dict(num_chs=16, reduction=4, module="pool2"),
        ]

    def _make_head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        name = model_name(self, "lenet5")
        check_image(x, model=name, in_chans=self.in_chans, dtype=param_dtype(self))
        x = _pad_to_field(x, self.field_size, name)  # (B, C, 32, 32)
        x = self.pool1(self.act1(self.conv1(x)))
        return self.pool2(self.act2(self.conv2(x)))  # (B, 16, 5, 5)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(1)  # (B, 400)
        x = self.act4(self.fc2(self.act3(self.fc1(x))))
        x = self.drop(x)
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ConvStage(nn.Module):
    """A 3x3 convolution, optional normalization, activation, and a 2x2 max pool."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        act_layer: type[nn.Module],
        norm_layer: type[nn.Module] | None,
    ) -> None:
        super().__init__()
        # A bias before a normalization layer would be cancelled by its mean subtraction.
        self.conv = nn.Conv2d(in_chs, out_chs, 3, padding=1, bias=norm_layer is None)
        self.norm = norm_layer(out_chs) if norm_layer is not None else nn.Identity()
        self.act = act_layer()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))


class SmallCNN(nn.Module):
    """Conv-norm-act-pool stages, global average pooling and a linear classifier.

    Each stage halves the resolution, so images need at least ``2 ** len(channels)``
    pixels a side; global pooling makes any larger size work (8x8 digits with the
    default three stages).

    Args:
        num_classes: output size; 0 makes the head an identity.
        in_chans: input channels.
        channels: output channels of each stage; their number is the number of stages.
        act_layer: activation type or name.
        norm_layer: normalization type or name (e.g. ``"batchnorm2d"``); None or
            ``"identity"`` for none (``create`` drops None-valued arguments, so pass
            ``"identity"`` there).
        drop_rate: dropout before the classifier.
        img_size: the input size the model is meant for (used by example inputs and
            export); it must be at least ``2 ** len(channels)``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        channels: Sequence[int] = (32, 64, 128),
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.BatchNorm2d,
        drop_rate: float = 0.0,
        img_size: int = 32,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels needs at least one stage width")
        self.min_size = 2 ** len(channels)
        if img_size < self.min_size:
            raise ValueError(
                f"img_size={img_size} is too small for {len(channels)} stages, which halve "
                f"the resolution each; use img_size>={self.min_size} or fewer channels"
            )
        act = get_act_layer(act_layer)
        norm = get_norm_layer_or_none(norm_layer)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = channels[-1]
        self.default_input_size = (img_size, img_size)
        widths = [in_chans, *channels]
        self.stages = nn.Sequential(
            *(ConvStage(i, o, act, norm) for i, o in zip(widths, widths[1:], strict=False))
        )
        self.feature_info = [
            dict(num_chs=c, reduction=2 ** (i + 1), module=f"stages.{i}")
            for i, c in enumerate(channels)
        ]
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.head = self._make_head(num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_image(
            x,
            model=model_name(self, "cnn_small"),
            in_chans=self.in_chans,
            min_size=self.min_size,
            dtype=param_dtype(self),
        )
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.global_pool(x).flatten(1))  # (B, num_features)
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class VGG(nn.Module):
    """VGG: stacks of 3x3 convolutions separated by max pools, then three linear layers.

    Module names follow torchvision: ``features`` (the convolutions, with batch norm
    in the ``_bn`` variants), ``avgpool`` (adaptive, to 7x7, so inputs of any size
    from 32x32 up work), and ``classifier`` (Linear, act, Dropout, Linear, act,
    Dropout, Linear). ``forward_head(x, pre_logits=True)`` returns the 4096-wide
    input of the last linear layer.

    Args:
        cfg: the layer plan: an int is a 3x3 convolution with that many channels,
            ``"M"`` a 2x2 max pool.
        num_classes: output size; 0 makes the last layer an identity.
        in_chans: input channels.
        norm_layer: normalization after each convolution (``nn.BatchNorm2d`` for the
            ``_bn`` variants); None or ``"identity"`` for none.
        act_layer: activation type or name.
        drop_rate: dropout in the classifier (the paper's 0.5).
    """

    def __init__(
        self,
        cfg: Sequence[int | str],
        num_classes: int = 1000,
        in_chans: int = 3,
        norm_layer: LayerType = None,
        act_layer: LayerType = nn.ReLU,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        act = get_act_layer(act_layer)
        norm = get_norm_layer_or_none(norm_layer)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 4096
        self.default_input_size = (224, 224)
        layers: list[nn.Module] = []
        self.feature_info: list[dict[str, Any]] = []
        chs, reduction = in_chans, 1
        for v in cfg:
            if v == "M":
                reduction *= 2
                self.feature_info.append(
                    dict(num_chs=chs, reduction=reduction, module=f"features.{len(layers)}")
                )
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            # The convolutions keep their bias even before batch norm: torchvision's
            # weights have one, and loading them needs the same keys.
            layers.append(nn.Conv2d(chs, int(v), kernel_size=3, padding=1))
            if norm is not None:
                layers.append(norm(int(v)))
            layers.append(make_act(act))
            chs = int(v)
        self.min_size = reduction  # each pool needs at least 2 pixels
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(chs * 7 * 7, self.num_features),
            make_act(act),
            nn.Dropout(drop_rate),
            nn.Linear(self.num_features, self.num_features),
            make_act(act),
            nn.Dropout(drop_rate),
            self._make_head(num_classes),
        )
        self._init_weights()

    def _make_head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def _init_weights(self) -> None:
        # He init for the ReLU convolutions, small Gaussians for the wide linear layers.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                if m.weight is not None:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_image(
            x,
            model=model_name(self, "vgg"),
            in_chans=self.in_chans,
            min_size=self.min_size,
            dtype=param_dtype(self),
        )
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.avgpool(x).flatten(1)  # (B, 512 * 7 * 7)
        *hidden, last = self.classifier
        for layer in hidden:
            x = layer(x)
        return x if pre_logits else last(x)

    def get_classifier(self) -> nn.Module:
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier[-1] = self._make_head(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _register(paper: str) -> Any:
    return register_model(
        family="cnn", task="image_classification", inputs=image_inputs, paper=paper
    )


@_register(_LENET_PAPER)
def lenet5(*, num_classes: int = 10, in_chans: int = 1, **kwargs: Any) -> LeNet5:
    """LeNet-5 for 32x32 (or smaller, zero-padded) images, tanh activations.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(num_classes=num_classes, in_chans=in_chans)
    return LeNet5(**dict(model_args, **kwargs))


@_register(_LENET_PAPER)
def cnn_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> SmallCNN:
    """Three conv-BN-ReLU-pool stages of 32, 64, 128 channels; works from 8x8 images up.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(num_classes=num_classes, in_chans=in_chans, channels=(32, 64, 128))
    return SmallCNN(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg11(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-11 (configuration A).

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(cfg=_VGG_CFGS["vgg11"], num_classes=num_classes, in_chans=in_chans)
    return VGG(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg11_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-11 with batch normalization.

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(
        cfg=_VGG_CFGS["vgg11"],
        num_classes=num_classes,
        in_chans=in_chans,
        norm_layer=nn.BatchNorm2d,
    )
    return VGG(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg13(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-13 (configuration B).

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(cfg=_VGG_CFGS["vgg13"], num_classes=num_classes, in_chans=in_chans)
    return VGG(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg13_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-13 with batch normalization.

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(
        cfg=_VGG_CFGS["vgg13"],
        num_classes=num_classes,
        in_chans=in_chans,
        norm_layer=nn.BatchNorm2d,
    )
    return VGG(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg16(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-16 (configuration D).

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(cfg=_VGG_CFGS["vgg16"], num_classes=num_classes, in_chans=in_chans)
    return VGG(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg16_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-16 with batch normalization.

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(
        cfg=_VGG_CFGS["vgg16"],
        num_classes=num_classes,
        in_chans=in_chans,
        norm_layer=nn.BatchNorm2d,
    )
    return VGG(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg19(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-19 (configuration E).

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(cfg=_VGG_CFGS["vgg19"], num_classes=num_classes, in_chans=in_chans)
    return VGG(**dict(model_args, **kwargs))


@_register(_VGG_PAPER)
def vgg19_bn(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-19 with batch normalization.

    Dropout keywords: ``drop_rate`` (the paper's 0.5 by default) is dropout between the
    classifier's linear layers.
    """
    model_args = dict(
        cfg=_VGG_CFGS["vgg19"],
        num_classes=num_classes,
        in_chans=in_chans,
        norm_layer=nn.BatchNorm2d,
    )
    return VGG(**dict(model_args, **kwargs))
