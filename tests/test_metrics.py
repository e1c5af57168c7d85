"""Metrics against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dd3d.metrics import (
    category_part_mask,
    classification_metrics,
    part_coherence,
    restrict_to_category,
    segmentation_metrics,
    shape_ious,
)


def test_classification_metrics() -> None:
    m = classification_metrics(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), num_classes=4)
    assert m["oa"] == pytest.approx(4 / 6)
    assert m["macc"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)  # class 3 absent: left out


def test_shape_iou_counts_absent_parts_as_one() -> None:
    pred = np.array([0, 0, 1, 1])
    target = np.array([0, 1, 1, 1])
    # part 0: inter 1 union 2; part 1: inter 2 union 3; part 2 absent from both -> 1
    assert shape_ious(pred, target, [0, 1, 2]) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)


def test_segmentation_metrics_instance_vs_class() -> None:
    category_parts = {0: [0, 1], 1: [2, 3]}
    target = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [2, 2, 3, 3]])
    pred = np.array([[0, 0, 1, 1], [1, 1, 1, 1], [2, 3, 3, 3]])
    cats = np.array([0, 0, 1])
    m = segmentation_metrics(pred, target, cats, category_parts)
    s0, s1, s2 = 1.0, (0.0 + 3 / 4) / 2, (1 / 2 + 2 / 3) / 2
    assert m["instance_miou"] == pytest.approx((s0 + s1 + s2) / 3)
    assert m["class_miou"] == pytest.approx(((s0 + s1) / 2 + s2) / 2)
    assert m["oa"] == pytest.approx(10 / 12)


def test_predictions_restricted_to_category_parts() -> None:
    mask = category_part_mask({0: [0, 1], 1: [2, 3]}, num_parts=4)
    logits = torch.tensor([[[0.0, 1.0, 5.0, 0.0]], [[9.0, 0.0, 0.0, 1.0]]])
    pred = restrict_to_category(logits, torch.tensor([0, 1]), mask)
    assert pred.tolist() == [[1], [3]]


def test_part_coherence_of_separated_and_interleaved_parts() -> None:
    rng = np.random.default_rng(0)
    left, right = rng.normal(-5, 0.1, (50, 3)), rng.normal(5, 0.1, (50, 3))
    points = np.concatenate([left, right])
    separated = np.repeat([0, 1], 50)
    assert part_coherence(points, separated) < 0.01
    interleaved = np.tile([0, 1], 50)
    assert part_coherence(points, interleaved) > 0.95
    assert part_coherence(points, np.zeros(100, dtype=int)) == pytest.approx(1.0)
