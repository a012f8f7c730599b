"""Single-stage object detection: FCOS on a zoo backbone with a feature pyramid.

Tian, Shen, Chen & He, "FCOS: Fully Convolutional One-Stage Object Detection"
(ICCV 2019, arXiv:1904.01355), with the feature pyramid of Lin et al., "Feature
Pyramid Networks for Object Detection" (CVPR 2017) and the focal loss of Lin et
al., "Focal Loss for Dense Object Detection" (ICCV 2017).

FCOS is anchor-free: every location of every pyramid level predicts a score
per class, its distances (left, top, right, bottom) to the sides of the box it
lies in, and a center-ness that down-weights boxes predicted far from an
object's centre. A ground-truth box is assigned to the locations near its
centre (center sampling) on the level whose size range holds its largest
distance; the smallest box wins where several qualify. This implementation
uses the later FCOS refinements: center sampling, center-ness on the
regression branch, GIoU loss weighted by the center-ness target.

Design (how it differs from torchvision's detectors): ``forward(images)``
returns the raw, differentiable per-location outputs as a
:class:`DetectionOutput`, in train and eval mode alike, so the model exports
with ``torch.export`` and every parameter is reached by a backward pass. The
rest are methods:

* ``model.loss(outputs, targets)``: a dict of losses (``loss`` is their sum);
* ``model.postprocess(outputs, image_size)``: per image ``{boxes, scores, labels}``
  after score thresholding and class-wise NMS (``torchvision.ops.batched_nms``,
  imported only there);
* ``model.predict(images)``: ``postprocess(forward(images))`` without gradients.

Conventions: boxes are xyxy in pixels of the input image (pixel ``i`` spans
``[i, i + 1)``); ``num_classes`` counts object classes without the
background; labels run ``1..num_classes`` (0 is the background, as in
torchvision and in the zoo's segmentation masks); the logit of label ``k`` is
channel ``k - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import (
    FeatureListNet,
    LayerType,
    check_image,
    get_act_layer,
    image_inputs,
    param_dtype,
)
from modelzoo.layers.checks import skip_value_checks
from modelzoo.registry import create, register_model

__all__ = ["FCOS", "FPN", "FCOSHead", "DetectionOutput", "build_backbone"]

_PAPER = (
    "Tian et al., FCOS: Fully Convolutional One-Stage Object Detection, ICCV 2019 "
    "(arXiv:1904.01355)"
)

Target = dict[str, torch.Tensor]


class DetectionOutput(NamedTuple):
    """Raw per-location outputs of a dense detector, all pyramid levels concatenated.

    N is the number of locations over all levels, finest level first.
    """

    cls_logits: torch.Tensor  # (B, N, num_classes) class logits (sigmoid, not softmax)
    box_regression: torch.Tensor  # (B, N, 4) distances l, t, r, b in pixels, all positive
    centerness: torch.Tensor  # (B, N) center-ness logits
    points: torch.Tensor  # (N, 2) x, y of each location in input pixels
    strides: torch.Tensor  # (N,) stride of each location's level


def build_backbone(
    name: str, in_chans: int, out_indices: Sequence[int], kwargs: dict[str, Any] | None
) -> FeatureListNet:
    """A zoo classifier as a feature extractor, without its classifier.

    Its classifier is removed (``num_classes=0``) so that every parameter feeds
    the returned features; ``out_indices`` must include the last level for the
    same reason (later stages would run without reaching any output).
    """
    model = create(name, num_classes=0, in_chans=in_chans, **(kwargs or {}))
    num_levels = len(getattr(model, "feature_info", None) or [])
    backbone = FeatureListNet(model, out_indices)
    if num_levels and backbone.out_indices[-1] != num_levels - 1:
        raise ConfigError(
            f"backbone indices {list(out_indices)} leave out the last feature level of {name} "
            f"(index {num_levels - 1}), whose parameters would then get no gradient; include it"
        )
    return backbone


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = math.gcd(32, channels)  # 32 groups where the width allows it, as in the paper
    return nn.GroupNorm(groups, channels)


class FPN(nn.Module):
    """Feature pyramid: 1x1 laterals, a nearest-upsampling top-down path, 3x3 smoothing.

    ``extra_levels`` stride-2 3x3 convolutions on the coarsest output add the
    P6 and P7 levels FCOS uses for large objects (ReLU between them).

    Args:
        in_channels: channels of each input level, finest first.
        out_channels: channels of every output level.
        extra_levels: coarser levels added on top.
    """

    def __init__(
        self, in_channels: Sequence[int], out_channels: int, extra_levels: int = 0
    ) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.layer_blocks = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels
        )
        self.extra_blocks = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)
            for _ in range(extra_levels)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        inner = self.inner_blocks[-1](features[-1])
        outs = [self.layer_blocks[-1](inner)]
        for i in range(len(features) - 2, -1, -1):
            lateral = self.inner_blocks[i](features[i])
            # size= rather than scale_factor=2: odd sizes round up on the way down.
            inner = lateral + F.interpolate(inner, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, self.layer_blocks[i](inner))
        x = outs[-1]
        for i, block in enumerate(self.extra_blocks):
            x = block(F.relu(x) if i > 0 else x)
            outs.append(x)
        return outs


class Scale(nn.Module):
    """A learnable scalar: FCOS's per-level scale of the shared regression head."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _tower(channels: int, depth: int, act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), _group_norm(channels), act()]
    return nn.Sequential(*layers)


class FCOSHead(nn.Module):
    """The head shared by all levels: a classification tower and a regression tower.

    The regression tower predicts the distances and the center-ness; each
    level scales its distances with its own learnable :class:`Scale`.

    Args:
        channels: input channels (the FPN's).
        num_classes: object classes.
        num_levels: pyramid levels.
        num_convs: 3x3 conv-GroupNorm-activation layers in each tower.
        prior_prob: initial foreground probability of every class score (the
            focal-loss paper's bias initialisation, against the flood of negatives).
        act_layer: activation type.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        num_levels: int,
        num_convs: int = 4,
        prior_prob: float = 0.01,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.cls_tower = _tower(channels, num_convs, act_layer)
        self.bbox_tower = _tower(channels, num_convs, act_layer)
        self.cls_logits = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale() for _ in range(num_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(
        self, features: list[torch.Tensor], strides: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per level outputs flattened and concatenated: (B, N, K), (B, N, 4), (B, N)."""
        cls_out, box_out, ctr_out = [], [], []
        for feature, scale, stride in zip(features, self.scales, strides, strict=True):
            cls = self.cls_logits(self.cls_tower(feature))  # (B, K, H, W)
            reg_features = self.bbox_tower(feature)
            # exp keeps distances positive; clamping the exponent keeps early steps finite.
            dist = torch.exp(scale(self.bbox_pred(reg_features)).clamp(max=8.0)) * stride
            ctr = self.centerness(reg_features)
            cls_out.append(cls.flatten(2).transpose(1, 2))  # (B, H*W, K)
            box_out.append(dist.flatten(2).transpose(1, 2))  # (B, H*W, 4)
            ctr_out.append(ctr.flatten(1))  # (B, H*W)
        return torch.cat(cls_out, 1), torch.cat(box_out, 1), torch.cat(ctr_out, 1)


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Element-wise focal loss of Lin et al. (2017) on sigmoid logits (unreduced)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss


def giou_loss_ltrb(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of boxes given as (..., 4) positive distances l, t, r, b from the same point."""
    pred_area = (pred[..., 0] + pred[..., 2]) * (pred[..., 1] + pred[..., 3])
    target_area = (target[..., 0] + target[..., 2]) * (target[..., 1] + target[..., 3])
    lo, hi = torch.minimum(pred, target), torch.maximum(pred, target)
    inter = (lo[..., 0] + lo[..., 2]) * (lo[..., 1] + lo[..., 3])
    enclosing = (hi[..., 0] + hi[..., 2]) * (hi[..., 1] + hi[..., 3])
    union = pred_area + target_area - inter
    iou = inter / union.clamp_min(1e-6)
    giou = iou - (enclosing - union) / enclosing.clamp_min(1e-6)
    return 1 - giou


def _check_target(target: Target, index: int, num_classes: int) -> None:
    boxes, labels = target.get("boxes"), target.get("labels")
    if boxes is None or labels is None:
        raise InputShapeError(
            f"target {index} needs 'boxes' (n, 4) and 'labels' (n,); got keys {sorted(target)}"
        )
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:1]:
        raise InputShapeError(
            f"target {index} needs boxes of shape (n, 4) xyxy and labels of shape (n,); got "
            f"boxes {tuple(boxes.shape)} and labels {tuple(labels.shape)}"
        )
    if skip_value_checks(labels) or labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 1 or high > num_classes:
        raise InputShapeError(
            f"target {index} has labels in [{low}, {high}], but labels must run 1..{num_classes} "
            f"(0 is the background). Shift 0-based labels by one, or build the model with "
            f"num_classes>={high}."
        )


class FCOS(nn.Module):
    """FCOS: a zoo backbone, a feature pyramid and the shared FCOS head.

    Args:
        num_classes: object classes, without the background (labels are 1..num_classes).
        in_chans: input image channels.
        backbone: name of a registered zoo classifier whose ``feature_info``
            gives the levels (e.g. ``"resnet18"``).
        backbone_kwargs: extra arguments for the backbone's builder (e.g.
            ``widths``, ``layers``, or ``pretrained`` to start from a weight set).
        backbone_indices: the backbone's ``feature_info`` levels the pyramid takes;
            the last must be the backbone's last.
        fpn_channels: channels of every pyramid level and of the head.
        extra_levels: levels added above the backbone's coarsest (P6, P7).
        head_convs: conv layers in each tower of the head.
        size_ranges: (low, high) of the largest box-side distance each level
            regresses; None: level ``i`` of stride ``s_i`` takes
            ``(8 s_{i-1}, 8 s_i]`` (the paper's 64, 128, ... for strides 8, 16, ...),
            the first from 0 and the last without a bound.
        center_sampling_radius: locations within this many strides of a box's
            centre (and inside the box) are its positives; 0 takes the whole box.
        focal_alpha: focal loss weight of positives.
        focal_gamma: focal loss focusing exponent.
        score_thresh: detections scoring below this are dropped in ``postprocess``.
        nms_thresh: IoU above which NMS suppresses a lower-scoring box of the same class.
        pre_nms_top_n: highest-scoring candidates per image kept for NMS.
        detections_per_img: detections kept per image after NMS.
        act_layer: activation of the head towers.
        img_size: the input side the model is meant for (example inputs and export).
    """

    def __init__(
        self,
        num_classes: int = 80,
        in_chans: int = 3,
        backbone: str = "resnet18",
        backbone_kwargs: dict[str, Any] | None = None,
        backbone_indices: Sequence[int] = (2, 3, 4),
        fpn_channels: int = 256,
        extra_levels: int = 2,
        head_convs: int = 4,
        size_ranges: Sequence[Sequence[float]] | None = None,
        center_sampling_radius: float = 1.5,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.6,
        pre_nms_top_n: int = 1000,
        detections_per_img: int = 100,
        act_layer: LayerType = nn.ReLU,
        img_size: int = 128,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1 (object classes); got {num_classes}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.default_input_size = (img_size, img_size)
        self.backbone = build_backbone(backbone, in_chans, backbone_indices, backbone_kwargs)
        reductions = self.backbone.reductions()
        self.strides = [*reductions, *(reductions[-1] * 2 ** (i + 1) for i in range(extra_levels))]
        self.min_input_size = reductions[-1]
        if size_ranges is None:
            bounds = [0.0, *(8.0 * s for s in self.strides[:-1]), math.inf]
            size_ranges = list(zip(bounds[:-1], bounds[1:], strict=True))
        if len(size_ranges) != len(self.strides):
            raise ConfigError(
                f"size_ranges needs one (low, high) pair per level ({len(self.strides)}); "
                f"got {len(size_ranges)}"
            )
        self.size_ranges = [(float(lo), float(hi)) for lo, hi in size_ranges]
        self.neck = FPN(self.backbone.channels(), fpn_channels, extra_levels)
        self.head = FCOSHead(
            fpn_channels,
            num_classes,
            len(self.strides),
            head_convs,
            act_layer=get_act_layer(act_layer),
        )
        self.center_sampling_radius = center_sampling_radius
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.pre_nms_top_n = pre_nms_top_n
        self.detections_per_img = detections_per_img

    def _points(
        self, sizes: list[tuple[int, int]], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Centres (N, 2) of every location of every level, in input pixels, and their strides."""
        points, strides = [], []
        for (h, w), stride in zip(sizes, self.strides, strict=True):
            xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride
            ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride
            grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
            points.append(torch.stack([grid_x.flatten(), grid_y.flatten()], -1))  # (h*w, 2)
            strides.append(torch.full((h * w,), float(stride), device=device))
        return torch.cat(points), torch.cat(strides)

    def forward(self, images: torch.Tensor) -> DetectionOutput:
        """(B, in_chans, H, W) images to raw per-location outputs (see :class:`DetectionOutput`)."""
        check_image(
            images,
            model=getattr(self, "model_name", type(self).__name__),
            in_chans=self.in_chans,
            min_size=self.min_input_size,
            dtype=param_dtype(self),
        )
        features = self.neck(self.backbone(images))
        cls_logits, box_regression, centerness = self.head(features, self.strides)
        points, strides = self._points(
            [(f.shape[-2], f.shape[-1]) for f in features], images.device
        )
        return DetectionOutput(cls_logits, box_regression, centerness, points, strides)

    # --- training ------------------------------------------------------------------------

    def _level_ranges(self, outputs: DetectionOutput) -> torch.Tensor:
        """(N, 2) size range of each location's level."""
        table = torch.tensor(self.size_ranges, device=outputs.strides.device)
        level = torch.zeros_like(outputs.strides, dtype=torch.long)
        for i, stride in enumerate(self.strides):
            level = torch.where(outputs.strides == stride, i, level)
        return table[level]

    @torch.no_grad()
    def assign_targets(
        self, outputs: DetectionOutput, targets: Sequence[Target]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """FCOS's assignment: per image, the label (0: background) and the l, t, r, b target
        of every location; (B, N) int64 and (B, N, 4) float32."""
        points, strides = outputs.points, outputs.strides
        ranges = self._level_ranges(outputs)
        x, y = points[:, 0, None], points[:, 1, None]  # (N, 1)
        all_labels, all_boxes = [], []
        for index, target in enumerate(targets):
            _check_target(target, index, self.num_classes)
            boxes = target["boxes"].to(points).reshape(-1, 4)  # (M, 4)
            labels = target["labels"].to(points.device).long()
            if len(boxes) == 0:
                all_labels.append(torch.zeros(len(points), dtype=torch.long, device=points.device))
                all_boxes.append(torch.ones(len(points), 4, device=points.device))
                continue
            ltrb = torch.stack(
                [x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], -1
            )  # (N, M, 4)
            if self.center_sampling_radius > 0:
                cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
                radius = strides[:, None] * self.center_sampling_radius  # (N, 1)
                x0 = torch.maximum(cx - radius, boxes[:, 0])
                y0 = torch.maximum(cy - radius, boxes[:, 1])
                x1 = torch.minimum(cx + radius, boxes[:, 2])
                y1 = torch.minimum(cy + radius, boxes[:, 3])
                inside = (x > x0) & (x < x1) & (y > y0) & (y < y1)
            else:
                inside = ltrb.min(-1).values > 0
            largest = ltrb.max(-1).values
            in_range = (largest > ranges[:, :1]) & (largest <= ranges[:, 1:])
            area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand_as(
                largest
            )
            area = torch.where(inside & in_range, area, torch.full_like(area, math.inf))
            best_area, best = area.min(1)  # the smallest qualifying box of each location
            positive = torch.isfinite(best_area)
            all_labels.append(torch.where(positive, labels[best], 0))
            all_boxes.append(ltrb[torch.arange(len(points), device=points.device), best])
        return torch.stack(all_labels), torch.stack(all_boxes)

    def loss(self, outputs: DetectionOutput, targets: Sequence[Target]) -> dict[str, torch.Tensor]:
        """FCOS losses for a batch: focal classification, GIoU box and center-ness BCE.

        Classification and center-ness are normalised by the number of positive
        locations; the box loss is weighted by the center-ness targets and
        normalised by their sum, as in the FCOS reference implementation.

        Args:
            outputs: this model's output for the batch.
            targets: per image ``{"boxes": (n, 4) xyxy, "labels": (n,) in 1..num_classes}``.

        Returns:
            ``loss`` (the sum, to minimise), ``cls``, ``box`` and ``ctr``.
        """
        if len(targets) != outputs.cls_logits.shape[0]:
            raise InputShapeError(
                f"got {len(targets)} targets for a batch of {outputs.cls_logits.shape[0]} images"
            )
        labels, box_targets = self.assign_targets(outputs, targets)
        cls_logits = outputs.cls_logits.float()
        positive = labels > 0  # (B, N)
        num_pos = positive.sum().clamp_min(1).float()
        one_hot = F.one_hot(labels, self.num_classes + 1)[..., 1:].to(cls_logits)  # drop background
        cls_loss = sigmoid_focal_loss(cls_logits, one_hot, self.focal_alpha, self.focal_gamma)
        cls_loss = cls_loss.sum() / num_pos

        target_ltrb = box_targets[positive]  # (P, 4)
        lr, tb = target_ltrb[:, [0, 2]], target_ltrb[:, [1, 3]]
        ctr_target = torch.sqrt(
            (lr.min(-1).values / lr.max(-1).values) * (tb.min(-1).values / tb.max(-1).values)
        )
        pred_ltrb = outputs.box_regression.float()[positive]
        box_loss = (giou_loss_ltrb(pred_ltrb, target_ltrb) * ctr_target).sum()
        box_loss = box_loss / ctr_target.sum().clamp_min(1e-6)
        ctr_logits = outputs.centerness.float()[positive]
        ctr_loss = F.binary_cross_entropy_with_logits(ctr_logits, ctr_target, reduction="sum")
        ctr_loss = ctr_loss / num_pos
        return {
            "loss": cls_loss + box_loss + ctr_loss,
            "cls": cls_loss,
            "box": box_loss,
            "ctr": ctr_loss,
        }

    # --- inference -----------------------------------------------------------------------

    @torch.no_grad()
    def postprocess(
        self,
        outputs: DetectionOutput,
        image_size: Sequence[int] | Sequence[Sequence[int]],
    ) -> list[dict[str, torch.Tensor]]:
        """Detections per image: ``{"boxes": (D, 4) xyxy, "scores": (D,), "labels": (D,)}``.

        A score is the geometric mean of the class probability and the
        center-ness; candidates above ``score_thresh`` (the best
        ``pre_nms_top_n``) are decoded, clipped to the image, and thinned by
        class-wise NMS to at most ``detections_per_img``, best first.

        Args:
            outputs: this model's output.
            image_size: (H, W) of the images, or one (H, W) per image (e.g. the
                unpadded sizes of images padded into one batch).
        """
        from torchvision.ops import batched_nms

        batch = outputs.cls_logits.shape[0]
        sizes = (
            [tuple(image_size)] * batch
            if isinstance(image_size[0], int)
            else [tuple(s) for s in image_size]
        )
        results = []
        for b in range(batch):
            probs = torch.sigmoid(outputs.cls_logits[b].float())  # (N, K)
            ctr = torch.sigmoid(outputs.centerness[b].float())[:, None]
            scores = torch.sqrt(probs * ctr).flatten()  # (N * K,)
            candidates = torch.nonzero(scores > self.score_thresh).flatten()
            if len(candidates) > self.pre_nms_top_n:
                top = scores[candidates].topk(self.pre_nms_top_n).indices
                candidates = candidates[top]
            location, cls = candidates // self.num_classes, candidates % self.num_classes
            point = outputs.points[location]
            dist = outputs.box_regression[b, location].float()
            boxes = torch.cat([point - dist[:, :2], point + dist[:, 2:]], -1)
            h, w = sizes[b]
            boxes = torch.stack(
                [
                    boxes[:, 0].clamp(0, w),
                    boxes[:, 1].clamp(0, h),
                    boxes[:, 2].clamp(0, w),
                    boxes[:, 3].clamp(0, h),
                ],
                -1,
            )
            keep = ((boxes[:, 2] - boxes[:, 0]) > 1e-2) & ((boxes[:, 3] - boxes[:, 1]) > 1e-2)
            boxes, kept_scores, cls = boxes[keep], scores[candidates][keep], cls[keep]
            keep = batched_nms(boxes, kept_scores, cls, self.nms_thresh)[: self.detections_per_img]
            results.append(
                {"boxes": boxes[keep], "scores": kept_scores[keep], "labels": cls[keep] + 1}
            )
        return results

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections for a batch of images (call ``model.eval()`` first, as for any model)."""
        return self.postprocess(self(images), tuple(images.shape[-2:]))


def _register() -> Any:
    return register_model(family="detection", task="detection", inputs=image_inputs, paper=_PAPER)


@_register()
def fcos_tiny(*, num_classes: int = 4, in_chans: int = 3, **kwargs: Any) -> FCOS:
    """FCOS for small images (64x64 shapes): a 3-stage ResNet of 32-128 channels, strides 4-16."""
    model_args = dict(
        num_classes=num_classes,
        in_chans=in_chans,
        backbone="resnet18",
        backbone_kwargs=dict(layers=(1, 1, 1), widths=(32, 64, 128)),
        backbone_indices=(1, 2, 3),
        fpn_channels=64,
        extra_levels=0,
        head_convs=2,
        img_size=64,
    )
    return FCOS(**dict(model_args, **kwargs))


@_register()
def fcos_resnet18_fpn(*, num_classes: int = 80, in_chans: int = 3, **kwargs: Any) -> FCOS:
    """FCOS on ResNet-18: pyramid levels P3-P7 (strides 8-128), 256 channels."""
    model_args = dict(num_classes=num_classes, in_chans=in_chans, backbone="resnet18")
    return FCOS(**dict(model_args, **kwargs))


@_register()
def fcos_resnet50_fpn(*, num_classes: int = 80, in_chans: int = 3, **kwargs: Any) -> FCOS:
    """FCOS on ResNet-50: the paper's configuration, levels P3-P7, 256 channels."""
    model_args = dict(num_classes=num_classes, in_chans=in_chans, backbone="resnet50")
    return FCOS(**dict(model_args, **kwargs))
