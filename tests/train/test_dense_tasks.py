"""Detection and segmentation: the shapes dataset, mAP and IoU on hand-made cases, the tasks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import modelzoo as mz
from modelzoo.data import build_data
from modelzoo.data.shapes import CLASSES, collate_detection, generate_shapes
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.metrics import MeanAveragePrecision, confusion_matrix, segmentation_scores
from modelzoo.train import Trainer
from modelzoo.train.tasks import TASKS, DetectionTask, SegmentationTask
from modelzoo.train.tasks.segmentation import dice_loss

QUIET = dict(progress=False, plots=False, tensorboard=False, device="cpu")


def test_tasks_are_registered_by_name() -> None:
    assert TASKS["detection"] is DetectionTask
    assert TASKS["segmentation"] is SegmentationTask


# --- the shapes dataset -----------------------------------------------------------------------


def test_detection_items_and_batches() -> None:
    data = build_data("shapes_detection", n_train=8, n_val=4, n_test=0, img_size=32)
    assert data.info["num_classes"] == len(CLASSES) == 4  # object classes only
    assert data.info["classes"] == list(CLASSES) and data.test is None
    image, target = data.train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    boxes, labels = target["boxes"], target["labels"]
    assert boxes.dtype == torch.float32 and boxes.shape == (len(labels), 4)
    assert labels.dtype == torch.int64 and 1 <= labels.min() and labels.max() <= 4
    images, targets = data.collate_fn([data.train[i] for i in range(4)])
    assert images.shape == (4, 3, 32, 32) and len(targets) == 4
    torch.testing.assert_close(targets[0]["boxes"], boxes)


def test_segmentation_items_and_batches() -> None:
    data = build_data("shapes_segmentation", n_train=8, n_val=4, n_test=4, img_size=32)
    assert data.info["num_classes"] == 5  # the background counts
    assert data.info["classes"] == ["background", *CLASSES]
    image, mask = data.train[0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32) and mask.dtype == torch.int64
    assert mask.min() >= 0 and mask.max() <= 4 and (mask > 0).any() and (mask == 0).any()


def test_generation_is_deterministic_and_seeded() -> None:
    a = generate_shapes(6, img_size=32, seed=3)
    generate_shapes.cache_clear()
    b = generate_shapes(6, img_size=32, seed=3)
    assert a is not b
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    # image i depends on (seed, split, i) only, not on how many are generated
    c = generate_shapes(3, img_size=32, seed=3)
    np.testing.assert_array_equal(a.images[:3], c.images)
    assert not np.array_equal(a.images, generate_shapes(6, img_size=32, seed=4).images)
    val = generate_shapes(6, img_size=32, seed=3, split="val")
    assert not np.array_equal(a.images, val.images)


def test_boxes_are_the_tight_boxes_of_the_visible_shapes() -> None:
    arrays = generate_shapes(40, img_size=48, max_objects=5, seed=1)
    counts = [len(labels) for labels in arrays.labels]
    assert min(counts) >= 1 and max(counts) == 5
    for mask, boxes, labels in zip(arrays.masks, arrays.boxes, arrays.labels, strict=True):
        covered = np.zeros_like(mask, dtype=bool)
        for (x0, y0, x1, y1), label in zip(boxes.astype(int), labels, strict=True):
            inside = mask[y0:y1, x0:x1] == label
            # tight: every side of the box touches a pixel of its class
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()
            covered[y0:y1, x0:x1] |= mask[y0:y1, x0:x1] == label
        # every shape pixel lies in a box of its class
        assert covered[mask > 0].all()


def test_bad_dataset_arguments_raise() -> None:
    with pytest.raises(ConfigError, match="max_objects"):
        build_data("shapes_detection", n_train=4, max_objects=0)
    with pytest.raises(ConfigError, match="img_size"):
        build_data("shapes_segmentation", n_train=4, img_size=8)
    with pytest.raises(ConfigError, match="min_size <= max_size"):
        build_data("shapes_detection", n_train=4, min_size=0.5, max_size=0.3)


# --- mAP on hand-made cases -------------------------------------------------------------------


def _det(boxes, scores, labels) -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels),
    }


def _gt(boxes, labels) -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels),
    }


A, B = [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 30.0]


def _map(preds, targets) -> dict[str, float]:
    metric = MeanAveragePrecision()
    metric.update(preds, targets)
    return metric.compute()


def test_perfect_predictions_score_one() -> None:
    result = _map([_det([A, B], [0.9, 0.8], [1, 2])], [_gt([A, B], [1, 2])])
    assert result == {"map": 1.0, "map_50": 1.0, "map_75": 1.0}


def test_false_positive_ranked_first_costs_precision() -> None:
    # ranking: FP, TP, TP -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1; the envelope is 2/3
    far = [50.0, 50.0, 60.0, 60.0]
    result = _map([_det([far, A, B], [0.95, 0.9, 0.8], [1, 1, 1])], [_gt([A, B], [1, 1])])
    assert result["map_50"] == pytest.approx(2 / 3)
    # ranked last, the same false positive costs nothing
    result = _map([_det([A, B, far], [0.9, 0.8, 0.1], [1, 1, 1])], [_gt([A, B], [1, 1])])
    assert result["map_50"] == pytest.approx(1.0)


def test_a_missed_object_caps_recall() -> None:
    # recall reaches 1/2: the 51 recall points 0, 0.01, ..., 0.5 read precision 1, the rest 0
    result = _map([_det([A], [0.9], [1])], [_gt([A, B], [1, 1])])
    assert result["map"] == pytest.approx(51 / 101)


def test_the_wrong_class_scores_zero() -> None:
    # class 1 is missed, and class 2 has no ground truth so it is left out of the mean
    assert _map([_det([A], [0.9], [2])], [_gt([A], [1])])["map"] == 0.0


def test_iou_thresholds_grade_localisation() -> None:
    # IoU 0.62 with A: a true positive at 0.50, 0.55, 0.60, a false positive above
    result = _map([_det([[0.0, 0.0, 10.0, 6.2]], [0.9], [1])], [_gt([A], [1])])
    assert result["map_50"] == 1.0 and result["map_75"] == 0.0
    assert result["map"] == pytest.approx(0.3)


def test_detections_are_ranked_across_images() -> None:
    # image 1: a TP at 0.9; image 2: a FP at 0.95 and a TP at 0.5 -> FP, TP, TP overall
    preds = [_det([A], [0.9], [1]), _det([B, A], [0.95, 0.5], [1, 1])]
    targets = [_gt([A], [1]), _gt([A], [1])]
    assert _map(preds, targets)["map_50"] == pytest.approx(2 / 3)  # not the mean 0.75


def test_one_ground_truth_box_matches_one_detection() -> None:
    # a duplicate of a matched detection is a false positive
    result = _map([_det([A, A], [0.9, 0.8], [1, 1])], [_gt([A, B], [1, 1])])
    # TP then FP: precision 1 up to recall 1/2, never more recall
    assert result["map_50"] == pytest.approx(51 / 101)


def test_merged_states_equal_one_accumulator() -> None:
    preds = [_det([A], [0.9], [1]), _det([B, A], [0.95, 0.5], [1, 1])]
    targets = [_gt([A], [1]), _gt([A], [1])]
    first, second = MeanAveragePrecision(), MeanAveragePrecision()
    first.update(preds[:1], targets[:1])
    second.update(preds[1:], targets[1:])
    first.merge(second.state())
    assert first.compute() == _map(preds, targets)


def test_no_ground_truth_gives_nan() -> None:
    assert math.isnan(_map([_det([A], [0.9], [1])], [_gt([], [])])["map"])


# --- IoU from a confusion matrix --------------------------------------------------------------


def test_confusion_matrix_counts_and_ignores() -> None:
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 0]])
    cm = confusion_matrix(pred, target, 3, ignore_index=255)
    expected = torch.tensor([[1, 1, 0], [1, 2, 0], [1, 0, 1]])
    torch.testing.assert_close(cm, expected)


def test_iou_and_pixel_accuracy_from_a_hand_made_matrix() -> None:
    cm = torch.tensor([[3, 1, 0], [2, 4, 0], [0, 0, 0]])  # class 2 never occurs
    scores = segmentation_scores(cm)
    assert scores["iou"][0] == pytest.approx(3 / 6) and scores["iou"][1] == pytest.approx(4 / 7)
    assert math.isnan(scores["iou"][2])
    assert scores["miou"] == pytest.approx((3 / 6 + 4 / 7) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(7 / 10)


def test_dice_loss_is_zero_for_confident_right_answers() -> None:
    target = torch.tensor([[[0, 1], [2, 255]]])
    logits = torch.nn.functional.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2) * 50.0
    assert dice_loss(logits, target, ignore_index=255).item() == pytest.approx(0.0, abs=1e-4)
    wrong = logits.roll(1, dims=1)
    assert dice_loss(wrong, target, ignore_index=255).item() > 0.5


def test_segmentation_losses_are_configurable() -> None:
    model = torch.nn.Conv2d(3, 4, 1)
    logits, masks = torch.randn(2, 4, 8, 8), torch.randint(0, 4, (2, 8, 8))
    assert set(SegmentationTask(model, loss="ce").losses(logits, masks)) == {"loss"}
    both = SegmentationTask(model, loss="ce+dice").losses(logits, masks)
    assert set(both) == {"loss", "ce", "dice"}
    torch.testing.assert_close(both["loss"], both["ce"] + both["dice"])
    with pytest.raises(ConfigError, match="ce\\+dice"):
        SegmentationTask(model, loss="focal")
    with pytest.raises(InputShapeError, match="do not match"):
        SegmentationTask(model).losses(logits, masks[:, :4])


# --- the tasks in the trainer -----------------------------------------------------------------


def test_segmentation_metrics_are_dataset_level_and_unet_learns() -> None:
    data = build_data("shapes_segmentation", n_train=128, n_val=32, n_test=0, img_size=32)
    torch.manual_seed(0)
    model = mz.create("unet_tiny", base_channels=8, depth=2)
    task = SegmentationTask(model, loss="ce+dice")
    trainer = Trainer(task, dict(epochs=6, lr=1e-2, seed=0, **QUIET), batch_size=16)
    before = trainer.evaluate(data.val)
    after = trainer.fit(data.train, data.val)
    # 48 steps separate the shapes from their random-coloured backgrounds; telling the
    # shapes apart takes a few hundred (configs/segmentation/unet_shapes.yaml)
    assert after["miou"] > before["miou"] + 0.1, (before, after)
    assert after["iou_0"] > 0.75 and after["loss"] < 0.7 * before["loss"]
    # the reported metrics are those of the confusion matrix of the whole validation set
    model.eval()
    images, masks = zip(*(data.val[i] for i in range(len(data.val))), strict=True)
    with torch.no_grad():
        pred = model(torch.stack(images)).argmax(1)
    scores = segmentation_scores(confusion_matrix(pred, torch.stack(masks), 5))
    assert after["miou"] == pytest.approx(scores["miou"])
    assert after["pixel_accuracy"] == pytest.approx(scores["pixel_accuracy"])


def test_detection_map_covers_the_whole_evaluation_and_resets() -> None:
    data = build_data("shapes_detection", n_train=64, n_val=24, n_test=0)
    torch.manual_seed(0)
    model = mz.create("fcos_tiny")
    trainer = Trainer(
        DetectionTask(model),
        dict(epochs=2, lr=3e-3, seed=0, **QUIET),
        batch_size=16,
        collate_fn=collate_detection,
    )
    trainer.fit(data.train)
    first = trainer.evaluate(data.val)
    assert trainer.evaluate(data.val) == first  # a second evaluation starts afresh
    assert {"loss", "cls", "box", "ctr", "map", "map_50", "map_75"} <= set(first)
    # the same as one accumulator over every validation image (batches of 16 and 8)
    images, targets = collate_detection([data.val[i] for i in range(len(data.val))])
    model.eval()
    metric = MeanAveragePrecision()
    metric.update(model.predict(images), targets)
    expected = metric.compute()
    for key in ("map", "map_50", "map_75"):
        assert first[key] == pytest.approx(expected[key])
    assert 0.0 <= first["map"] <= first["map_50"] <= 1.0
