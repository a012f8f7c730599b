"""Residual networks: ImageNet ResNets, the CIFAR ResNets and their plain counterparts.

He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016,
arXiv:1512.03385).

* ``resnet18`` ... ``resnet152``: the ImageNet networks of the paper's Table 1.
  The stride of a bottleneck sits on its 3x3 convolution (the variant
  torchvision ships, sometimes called ResNet v1.5), and the state-dict keys are
  torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
  ``layer1.0.downsample.0``, ..., ``fc``), so its weights load without remapping.
* ``resnet20`` ... ``resnet110``: the CIFAR-10 networks of section 4.2, 6n+2
  layers in three stages of 16, 32 and 64 channels, with the paper's
  parameter-free option A shortcuts (``shortcut="B"`` gives projections).
* ``plain20``, ``plain56``: the same networks without any shortcut, the
  baselines of the paper's Figure 6 that show what skip connections buy.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    image_inputs,
    make_act,
    param_dtype,
    resolve_out_indices,
)
from modelzoo.layers.checkpointing import GradCheckpointing, run_blocks
from modelzoo.registry import register_model

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "PadShortcut"]

_PAPER = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (arXiv:1512.03385)"

_SHORTCUTS = ("A", "B", "none")
_STEMS = ("imagenet", "cifar")


def _conv3x3(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)


class PadShortcut(nn.Module):
    """The paper's option A: identity with stride subsampling and zero-padded channels.

    It has no parameters, so a network with it has the parameter counts of the
    paper's CIFAR table.

    Args:
        in_chs: channels coming in.
        out_chs: channels going out; the extra ones are zeros.
        stride: spatial subsampling factor.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        if out_chs < in_chs:
            raise ConfigError(
                f"option A shortcuts can only add channels, not go from {in_chs} to {out_chs}; "
                "use shortcut='B' (projections)"
            )
        self.extra_chs = out_chs - in_chs
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            # Matches the size of a stride-s 3x3 conv with padding 1: ceil(H / s).
            x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads (W left, W right, H left, H right, C before, C after): new channels go last
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_chs))

    def extra_repr(self) -> str:
        return f"extra_chs={self.extra_chs}, stride={self.stride}"


def _make_shortcut(
    kind: str, in_chs: int, out_chs: int, stride: int, norm_layer: type[nn.Module]
) -> nn.Module | None:
    """The shortcut of a block whose shape changes; None where the identity fits."""
    if stride == 1 and in_chs == out_chs:
        return None
    if kind == "A":
        return PadShortcut(in_chs, out_chs, stride)
    # Sequential indices 0 and 1 give torchvision's `downsample.0` / `downsample.1` keys.
    return nn.Sequential(_conv1x1(in_chs, out_chs, stride), norm_layer(out_chs))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: the block of ResNet-18/34 and the CIFAR nets.

    Args:
        in_chs: input channels.
        planes: output channels.
        stride: stride of the first convolution.
        downsample: the shortcut when the shape changes (None: identity).
        residual: add the shortcut at all; False gives a block of a plain net.
        act_layer: activation type.
        norm_layer: normalization type.
    """

    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_chs, planes, stride)
        self.bn1 = norm_layer(planes)
        self.act1 = make_act(act_layer)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.act2 = make_act(act_layer)
        self.downsample = downsample
        self.residual = residual

    def zero_init_last(self) -> None:
        if getattr(self.bn2, "weight", None) is not None:
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            # In place, as torchvision: batch norm's backward does not need its output.
            out += x if self.downsample is None else self.downsample(x)
        return self.act2(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, and a shortcut: ResNet-50/101/152.

    Args:
        in_chs: input channels.
        planes: width of the 3x3 convolution; the block outputs ``4 * planes``.
        stride: stride of the 3x3 convolution.
        downsample: the shortcut when the shape changes (None: identity).
        residual: add the shortcut at all; False gives a block of a plain net.
        act_layer: activation type.
        norm_layer: normalization type.
    """

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        residual: bool = True,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = _conv1x1(in_chs, planes)
        self.bn1 = norm_layer(planes)
        self.act1 = make_act(act_layer)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.act2 = make_act(act_layer)
        self.conv3 = _conv1x1(planes, out_chs)
        self.bn3 = norm_layer(out_chs)
        self.act3 = make_act(act_layer)
        self.downsample = downsample
        self.residual = residual

    def zero_init_last(self) -> None:
        if getattr(self.bn3, "weight", None) is not None:
            nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            # In place, as torchvision: batch norm's backward does not need its output.
            out += x if self.downsample is None else self.downsample(x)
        return self.act3(out)


_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNet(GradCheckpointing, nn.Module):
    """A residual network: a stem, stages of residual blocks, global pooling and a linear head.

    ``set_grad_checkpointing(True)`` recomputes each residual block in backward instead of
    storing its activations (training only; see ``modelzoo.layers.checkpointing``).

    Args:
        block: ``"basic"`` (two 3x3 convolutions) or ``"bottleneck"`` (1x1, 3x3, 1x1).
        layers: number of blocks in each stage.
        num_classes: output size; 0 makes the head an identity.
        in_chans: input image channels.
        widths: block width of each stage (``planes``; bottlenecks output four
            times that); the stem outputs ``widths[0]`` channels. Every stage
            after the first halves the resolution.
        stem: ``"imagenet"`` (7x7 stride-2 convolution and 3x3 stride-2 max
            pool, for 224x224 images) or ``"cifar"`` (one 3x3 convolution at
            full resolution, for 32x32 images).
        shortcut: ``"A"`` (identity, zero-padded where the shape changes; no
            parameters), ``"B"`` (1x1 projection and normalization where the
            shape changes, identity elsewhere), or ``"none"`` (a plain net).
        drop_rate: dropout before the classifier.
        zero_init_residual: zero the scale of the last normalization of each
            block, so that each block starts as its shortcut (Goyal et al., 2017).
        act_layer: activation type or name.
        norm_layer: normalization type or name; it is called with the channel count.
    """

    def __init__(
        self,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 1000,
        in_chans: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem: str = "imagenet",
        shortcut: str = "B",
        drop_rate: float = 0.0,
        zero_init_residual: bool = False,
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ConfigError(f"block must be one of {', '.join(_BLOCKS)}; got {block!r}")
        if stem not in _STEMS:
            raise ConfigError(f"stem must be one of {', '.join(_STEMS)}; got {stem!r}")
        if shortcut not in _SHORTCUTS:
            raise ConfigError(f"shortcut must be one of {', '.join(_SHORTCUTS)}; got {shortcut!r}")
        if len(layers) != len(widths) or not layers or min(layers) < 1:
            raise ConfigError(
                f"layers and widths need one positive entry per stage; got layers={tuple(layers)} "
                f"and widths={tuple(widths)}"
            )
        if zero_init_residual and shortcut == "none":
            raise ConfigError(
                "zero_init_residual=True with shortcut='none' would make every block output a "
                "constant; use it only with shortcuts"
            )
        block_cls = _BLOCKS[block]
        act = get_act_layer(act_layer)
        norm = get_norm_layer(norm_layer)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate

        stem_chs = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, stem_chs, 7, stride=2, padding=3, bias=False)
            self.bn1 = norm(stem_chs)
            self.act1 = make_act(act)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
            reduction = 4
            self.feature_info = [dict(num_chs=stem_chs, reduction=2, module="act1")]
            self.default_input_size = (224, 224)
        else:
            self.conv1 = _conv3x3(in_chans, stem_chs)
            self.bn1 = norm(stem_chs)
            self.act1 = make_act(act)
            self.maxpool = nn.Identity()
            reduction = 1
            self.feature_info = []
            self.default_input_size = (32, 32)

        in_chs = stem_chs
        self.stage_names: list[str] = []
        for index, (depth, planes) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if index == 0 else 2
            reduction *= stride
            out_chs = planes * block_cls.expansion
            blocks = []
            for b in range(depth):
                s = stride if b == 0 else 1
                downsample = None
                if shortcut != "none":
                    downsample = _make_shortcut(shortcut, in_chs, out_chs, s, norm)
                blocks.append(
                    block_cls(
                        in_chs,
                        planes,
                        s,
                        downsample=downsample,
                        residual=shortcut != "none",
                        act_layer=act,
                        norm_layer=norm,
                    )
                )
                in_chs = out_chs
            name = f"layer{index + 1}"  # torchvision's stage names
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            self.feature_info.append(dict(num_chs=out_chs, reduction=reduction, module=name))
        self.min_input_size = reduction  # each spatial side must survive every downsampling
        self.num_features = in_chs

        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He et al. 2015 ("Delving deep into rectifiers") for the convolutions;
        # the linear head keeps PyTorch's default init, as in torchvision.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    @property
    def _name(self) -> str:
        return getattr(self, "model_name", type(self).__name__)

    def _check(self, x: torch.Tensor) -> None:
        check_image(
            x,
            model=self._name,
            in_chans=self.in_chans,
            min_size=self.min_input_size,
            dtype=param_dtype(self),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) images to (B, num_features, H / r, W / r) features, r = 32 or 4."""
        self._check(x)
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = self._run_stage(name, x)
        return x

    def _run_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        stage = getattr(self, name)
        if self.grad_checkpointing_active():
            return run_blocks(stage, x, checkpointing=True)
        return stage(x)

    def forward_intermediates(
        self, x: torch.Tensor, indices: list[int] | None = None
    ) -> list[torch.Tensor]:
        """The feature maps of the ``feature_info`` levels ``indices`` (all by default).

        What ``features_only=True`` returns; computed in the forward pass itself rather than
        through hooks, so the feature extractor traces with ``torch.fx`` like the model.
        Stages after the last requested level are not run.
        """
        indices = resolve_out_indices(indices, len(self.feature_info), self._name)
        self._check(x)
        # Level names in order: "act1" (ImageNet stem only), then one per stage.
        levels = [info["module"] for info in self.feature_info]
        wanted = {levels[i] for i in indices}
        last = levels[max(indices)]
        outputs = []
        x = self.act1(self.bn1(self.conv1(x)))
        if "act1" in wanted:
            outputs.append(x)
        if last == "act1":
            return outputs
        x = self.maxpool(x)
        for stage in self.stage_names:
            x = self._run_stage(stage, x)
            if stage in wanted:
                outputs.append(x)
            if stage == last:
                break
        return outputs

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map and classify; ``pre_logits`` stops after pooling (and dropout)."""
        x = self.head_drop(self.global_pool(x).flatten(1))  # (B, num_features)
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one; 0 makes the model output pooled features."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _register(**kwargs: Any) -> Any:
    return register_model(
        family="resnet",
        task="image_classification",
        inputs=image_inputs,
        paper=_PAPER,
        **kwargs,
    )


def _cifar_args(depth: int, shortcut: str) -> dict[str, Any]:
    n = (depth - 2) // 6  # 6n + 2 layers: the stem, 3 stages of n two-conv blocks, the head
    return dict(
        block="basic", layers=(n, n, n), widths=(16, 32, 64), stem="cifar", shortcut=shortcut
    )


# CIFAR networks (paper section 4.2), smallest first.


@_register()
def resnet20(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-20 for 32x32 images (n=3): 0.27M parameters.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(_cifar_args(20, "A"), num_classes=num_classes, in_chans=in_chans)
    return ResNet(**dict(model_args, **kwargs))


@_register()
def plain20(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-20 without shortcuts: the paper's 20-layer plain baseline.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(_cifar_args(20, "none"), num_classes=num_classes, in_chans=in_chans)
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet32(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-32 for 32x32 images (n=5): 0.46M parameters.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(_cifar_args(32, "A"), num_classes=num_classes, in_chans=in_chans)
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet44(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-44 for 32x32 images (n=7): 0.66M parameters.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(_cifar_args(44, "A"), num_classes=num_classes, in_chans=in_chans)
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet56(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-56 for 32x32 images (n=9): 0.85M parameters.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(_cifar_args(56, "A"), num_classes=num_classes, in_chans=in_chans)
    return ResNet(**dict(model_args, **kwargs))


@_register()
def plain56(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-56 without shortcuts: the plain net whose training error exceeds plain-20's.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(_cifar_args(56, "none"), num_classes=num_classes, in_chans=in_chans)
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet110(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-110 for 32x32 images (n=18): 1.7M parameters.

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(_cifar_args(110, "A"), num_classes=num_classes, in_chans=in_chans)
    return ResNet(**dict(model_args, **kwargs))


# ImageNet networks (paper Table 1), smallest first.


@_register()
def resnet18(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-18: basic blocks, stages of (2, 2, 2, 2).

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(
        block="basic", layers=(2, 2, 2, 2), num_classes=num_classes, in_chans=in_chans
    )
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet34(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-34: basic blocks, stages of (3, 4, 6, 3).

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(
        block="basic", layers=(3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans
    )
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-50: bottleneck blocks, stages of (3, 4, 6, 3).

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(
        block="bottleneck", layers=(3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans
    )
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet101(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-101: bottleneck blocks, stages of (3, 4, 23, 3).

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(
        block="bottleneck", layers=(3, 4, 23, 3), num_classes=num_classes, in_chans=in_chans
    )
    return ResNet(**dict(model_args, **kwargs))


@_register()
def resnet152(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-152: bottleneck blocks, stages of (3, 8, 36, 3).

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning).
    """
    model_args = dict(
        block="bottleneck", layers=(3, 8, 36, 3), num_classes=num_classes, in_chans=in_chans
    )
    return ResNet(**dict(model_args, **kwargs))
