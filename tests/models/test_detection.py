"""FCOS: output layout, target assignment, decoding, losses, input errors; torchvision detectors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.detection import FCOS, DetectionOutput, giou_loss_ltrb


@pytest.fixture(scope="module")
def fcos() -> FCOS:
    torch.manual_seed(0)
    return mz.create("fcos_tiny").eval()


def test_registered_detectors_share_the_family_and_task() -> None:
    names = mz.list_models(family="detection")
    assert {"fcos_tiny", "fcos_resnet18_fpn", "fcos_resnet50_fpn"} <= set(names)
    assert set(mz.list_models(task="detection")) == set(names)


def test_forward_returns_raw_outputs_for_every_location(fcos: FCOS) -> None:
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = fcos(images)
    assert isinstance(out, DetectionOutput)
    assert fcos.strides == [4, 8, 16]
    n = sum((64 // s) ** 2 for s in fcos.strides)
    assert out.cls_logits.shape == (2, n, fcos.num_classes)
    assert out.box_regression.shape == (2, n, 4) and (out.box_regression > 0).all()
    assert out.centerness.shape == (2, n)
    assert out.points.shape == (n, 2) and out.strides.shape == (n,)
    # locations are cell centres, finest level first
    assert out.points[0].tolist() == [2.0, 2.0] and out.points[1].tolist() == [6.0, 2.0]
    assert out.strides[0] == 4 and out.strides[-1] == 16
    assert (out.points >= 0).all() and (out.points <= 64).all()


def test_num_classes_and_in_chans_reach_the_model() -> None:
    model = mz.create("fcos_tiny", num_classes=7, in_chans=1).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 48, 80))
    assert out.cls_logits.shape[-1] == 7
    # non-square inputs: one location per cell of each level
    assert out.points.shape[0] == sum((48 // s) * (80 // s) for s in model.strides)


def test_bad_input_raises_input_shape_error(fcos: FCOS) -> None:
    with pytest.raises(InputShapeError, match="channels"):
        fcos(torch.rand(1, 1, 64, 64))
    with pytest.raises(InputShapeError, match="unsqueeze"):
        fcos(torch.rand(3, 64, 64))
    with pytest.raises(InputShapeError, match="at least 16x16"):
        fcos(torch.rand(1, 3, 8, 8))


def test_bad_targets_raise_input_shape_error(fcos: FCOS) -> None:
    out = fcos(torch.rand(1, 3, 64, 64))
    with pytest.raises(InputShapeError, match="labels must run 1..4"):
        fcos.loss(out, [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([0])}])
    with pytest.raises(InputShapeError, match=r"\(n, 4\)"):
        fcos.loss(out, [{"boxes": torch.tensor([0.0, 0, 10, 10]), "labels": torch.tensor([1])}])
    with pytest.raises(InputShapeError, match="2 targets for a batch of 1"):
        fcos.loss(out, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}] * 2)


def test_out_indices_must_keep_the_last_level() -> None:
    with pytest.raises(ConfigError, match="last feature level"):
        mz.create("fcos_tiny", backbone_indices=(1, 2))


def test_assignment_follows_fcos_rules(fcos: FCOS) -> None:
    with torch.no_grad():
        out = fcos(torch.rand(2, 3, 64, 64))
    box = torch.tensor([[8.0, 12.0, 28.0, 30.0]])  # 20 x 18: largest distance <= 32 -> level 0
    targets = [
        {"boxes": box, "labels": torch.tensor([3])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    labels, ltrb = fcos.assign_targets(out, targets)
    positive = labels[0] > 0
    assert (labels[0][positive] == 3).all() and positive.sum() > 0
    assert (labels[1] == 0).all()  # an image without objects is all background
    points, strides = out.points[positive], out.strides[positive]
    assert (strides == 4).all()
    # positives lie within 1.5 strides of the box centre, and regress to its sides
    centre = torch.tensor([18.0, 21.0])
    assert ((points - centre).abs() < 1.5 * 4).all()
    expected = torch.stack(
        [points[:, 0] - 8, points[:, 1] - 12, 28 - points[:, 0], 30 - points[:, 1]], -1
    )
    torch.testing.assert_close(ltrb[0][positive], expected)


def test_the_smaller_box_wins_where_two_overlap() -> None:
    model = mz.create("fcos_tiny", center_sampling_radius=0.0).eval()  # whole boxes
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    big, small = [4.0, 4.0, 40.0, 40.0], [14.0, 14.0, 30.0, 30.0]
    target = {"boxes": torch.tensor([big, small]), "labels": torch.tensor([1, 2])}
    (labels,), _ = model.assign_targets(out, [target])
    x, y = out.points.unbind(-1)
    in_small = (x > 14) & (x < 30) & (y > 14) & (y < 30) & (out.strides == 4)
    assert in_small.any() and (labels[in_small] == 2).all()
    # elsewhere in the big box, locations whose largest distance fits the level are its own
    assert labels[(x == 10) & (y == 22) & (out.strides == 4)].tolist() == [1]


def test_postprocess_decodes_points_and_distances() -> None:
    model = mz.create("fcos_tiny", num_classes=2)
    points = torch.tensor([[10.0, 10.0], [40.0, 30.0]])
    out = DetectionOutput(
        cls_logits=torch.tensor([[[9.0, -8.0], [-8.0, 8.0]]]),  # the first scores higher
        box_regression=torch.tensor([[[2.0, 3.0, 4.0, 5.0], [50.0, 1.0, 50.0, 1.0]]]),
        centerness=torch.tensor([[8.0, 8.0]]),
        points=points,
        strides=torch.tensor([4.0, 4.0]),
    )
    (det,) = model.postprocess(out, (64, 48))
    assert det["labels"].tolist() == [1, 2]  # channel k is label k + 1
    # the second box is clipped to the 48-pixel width
    torch.testing.assert_close(
        det["boxes"], torch.tensor([[8.0, 7.0, 14.0, 15.0], [0.0, 29.0, 48.0, 31.0]])
    )
    assert (det["scores"] > 0.99).all()


def test_predict_keeps_valid_sorted_detections(fcos: FCOS) -> None:
    fcos.score_thresh, fcos.detections_per_img = 0.0, 20
    try:
        dets = fcos.predict(torch.rand(2, 3, 64, 64))
    finally:
        fcos.score_thresh, fcos.detections_per_img = 0.05, 100
    assert len(dets) == 2
    for det in dets:
        boxes, scores, labels = det["boxes"], det["scores"], det["labels"]
        assert len(boxes) == 20 and boxes.shape == (20, 4)
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert (scores[:-1] >= scores[1:]).all()
        assert labels.min() >= 1 and labels.max() <= 4


def test_giou_loss_is_zero_for_equal_boxes_and_grows_with_distance() -> None:
    target = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    assert giou_loss_ltrb(target, target).item() == pytest.approx(0.0, abs=1e-6)
    near = giou_loss_ltrb(torch.tensor([[4.0, 5.0, 6.0, 5.0]]), target).item()
    far = giou_loss_ltrb(torch.tensor([[1.0, 5.0, 9.0, 5.0]]), target).item()
    assert 0 < near < far < 2


def test_loss_is_finite_without_objects_and_falls_in_training() -> None:
    from modelzoo.data import build_data
    from modelzoo.data.shapes import collate_detection

    data = build_data("shapes_detection", n_train=16, n_val=0, n_test=0)
    images, targets = collate_detection([data.train[i] for i in range(16)])
    torch.manual_seed(0)
    model = mz.create("fcos_tiny").train()
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}] * 2
    losses = model.loss(model(images[:2]), empty)
    assert torch.isfinite(losses["loss"]) and losses["box"] == 0 and losses["ctr"] == 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(20):
        losses = model.loss(model(images), targets)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append({k: v.item() for k, v in losses.items()})
    first = sum(h["loss"] for h in history[:3]) / 3
    last = sum(h["loss"] for h in history[-3:]) / 3
    assert last < 0.7 * first, (first, last)
    assert history[-1]["box"] < history[0]["box"]


@pytest.mark.parametrize(
    "arch, head_classes",
    [
        ("fasterrcnn_resnet50_fpn", lambda m: m.roi_heads.box_predictor.cls_score.out_features),
        ("retinanet_resnet50_fpn", lambda m: m.head.classification_head.num_classes),
        ("fcos_resnet50_fpn", lambda m: m.head.classification_head.num_classes),
    ],
)
def test_torchvision_detectors_count_object_classes_like_the_zoo(arch, head_classes) -> None:
    # The zoo's num_classes excludes the background; torchvision's includes it.
    with torch.device("meta"):
        model = mz.create(f"torchvision/{arch}", num_classes=4)
    assert head_classes(model) == 5


def test_torchvision_detector_runs_without_downloads() -> None:
    torch.manual_seed(0)
    model = mz.create(
        "torchvision/fasterrcnn_resnet50_fpn", num_classes=4, min_size=64, max_size=64
    ).eval()
    with torch.no_grad():
        (det,) = model([torch.rand(3, 64, 64)])
    assert set(det) == {"boxes", "scores", "labels"}
    assert det["labels"].numel() == 0 or det["labels"].max() <= 4
    # the head has one output per object class plus the background
    assert model.roi_heads.box_predictor.cls_score.out_features == 5


def test_importing_the_zoo_does_not_import_torchvision() -> None:
    code = (
        "import sys, torch, modelzoo as mz, modelzoo.data, modelzoo.train\n"
        "m = mz.create('fcos_tiny').eval()\n"
        "m(torch.rand(1, 3, 64, 64))\n"
        "assert 'torchvision' not in sys.modules, 'torchvision was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
