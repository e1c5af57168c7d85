"""Tests for the built-in procedural ``shapes`` dataset."""
from __future__ import annotations

import time

import numpy as np
import pytest

from dd3d.data import shapes
from dd3d.data.shapes import CLASS_NAMES, MIN_PART_POINTS, build_shapes, make_cloud, part_table
from dd3d.errors import ConfigError

PER_TRAIN, PER_TEST, POINTS = 100, 30, 1024


@pytest.fixture(scope="module")
def timed_splits() -> tuple[float, object, object]:
    """The default-size train and test splits, and the seconds it took to build both."""
    start = time.perf_counter()
    train = build_shapes("train", PER_TRAIN, POINTS, seed=0)
    test = build_shapes("test", PER_TEST, POINTS, seed=0)
    return time.perf_counter() - start, train, test


def _nn_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance from each point of ``a`` to its nearest point of ``b``."""
    return float(np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1).min(1)).mean())


def _pca_extents(points: np.ndarray) -> np.ndarray:
    """Sorted extents of each cloud's PCA-aligned bounding box, shape (N, 3)."""
    centred = points.astype(np.float64) - points.mean(axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    aligned = centred @ vt.transpose(0, 2, 1)
    return np.sort(aligned.max(axis=1) - aligned.min(axis=1), axis=1)


def test_build_time_shapes_and_dtypes(timed_splits):
    seconds, train, test = timed_splits
    assert seconds < 5.0, f"building took {seconds:.2f} s"
    for split, per in ((train, PER_TRAIN), (test, PER_TEST)):
        n = per * len(CLASS_NAMES)
        assert split.points.shape == (n, POINTS, 3) and split.points.dtype == np.float32
        assert split.parts.shape == (n, POINTS) and split.parts.dtype == np.int64
        assert split.labels.dtype == np.int64
        assert split.counts() == [per] * len(CLASS_NAMES)
        assert split.class_names == CLASS_NAMES and split.source == "built-in shapes"
        assert len(split.names) == n and split.names[per] == f"{CLASS_NAMES[1]}_0000"


def test_unit_sphere(timed_splits):
    _, train, _ = timed_splits
    norms = np.linalg.norm(train.points, axis=2).max(axis=1)
    assert norms.max() <= 1 + 1e-5
    assert norms.min() > 0.9 and np.median(norms) > 0.97


def test_every_part_in_every_instance(timed_splits):
    _, train, test = timed_splits
    for split in (train, test):
        for cloud, label in zip(split.parts, split.labels):
            ids, counts = np.unique(cloud, return_counts=True)
            assert ids.tolist() == split.category_parts[int(label)]
            assert counts.min() >= MIN_PART_POINTS


def test_part_table():
    names, category_parts = part_table()
    assert len(CLASS_NAMES) >= 10 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert sorted(category_parts) == list(range(len(CLASS_NAMES)))
    flat = [pid for c in range(len(CLASS_NAMES)) for pid in category_parts[c]]
    assert flat == list(range(len(names)))  # contiguous ranges covering every global id once
    for c, name in enumerate(CLASS_NAMES):
        assert len(category_parts[c]) >= 2
        assert all(names[pid].startswith(f"{name}/") for pid in category_parts[c])
    for expected in ("chair/seat", "chair/back", "chair/legs", "airplane/wings", "mug/handle"):
        assert expected in names


def test_deterministic_by_seed():
    a = build_shapes("train", 2, 256, seed=5)
    b = build_shapes("train", 2, 256, seed=5)
    c = build_shapes("train", 2, 256, seed=6)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.parts, b.parts)
    assert not np.allclose(a.points, c.points)


def test_cloud_independent_of_per_class():
    small = build_shapes("test", 2, 128, seed=1)
    large = build_shapes("test", 4, 128, seed=1)
    np.testing.assert_array_equal(small.points[3], large.points[5])  # class 1, instance 1
    xyz, ids = make_cloud(1, 1, 128, seed=1, split="test")
    np.testing.assert_array_equal(xyz, small.points[3])
    np.testing.assert_array_equal(ids, small.parts[3])


def test_train_and_test_differ():
    train = build_shapes("train", 3, 256, seed=0)
    test = build_shapes("test", 3, 256, seed=0)
    extents = lambda s: s.points.max(axis=1) - s.points.min(axis=1)  # noqa: E731
    gap = np.abs(extents(train)[:, None] - extents(test)[None]).max(axis=-1)
    assert gap.min() > 1e-3  # no test cloud is a train instance


def test_instance_independent_of_resolution():
    """Cloud i is the same object at 256 and 2048 points: its sparse points lie on the dense
    surface (up to the sampling spacing), much closer than to another instance of its class."""
    per = 2
    sparse = build_shapes("train", per, 256, seed=2)
    dense = build_shapes("train", per, 2048, seed=2)
    same = np.array([_nn_distance(sparse.points[i], dense.points[i]) for i in range(len(sparse))])
    other = np.array([_nn_distance(sparse.points[i], dense.points[i + 1 - 2 * (i % per)])
                      for i in range(len(sparse))])
    assert same.max() < 0.04
    assert np.median(other) > 2 * np.median(same)
    np.testing.assert_allclose(sparse.points.mean(axis=1), dense.points.mean(axis=1), atol=0.1)


def test_tiny_resolutions():
    """Below MIN_PART_POINTS per part every part still gets points // num_parts points."""
    for points in (1, 3, 5, 9):
        data = build_shapes("train", 1, points, seed=0)
        assert data.points.shape == (len(CLASS_NAMES), points, 3)
        for cloud, label in zip(data.parts, data.labels):
            own = data.category_parts[int(label)]
            assert set(cloud.tolist()) <= set(own)
            counts = np.bincount(cloud - own[0], minlength=len(own))
            assert counts.min() >= min(MIN_PART_POINTS, points // len(own))


def test_uniform_surface_density():
    """Primitives sample by area: a cone's lower half of the height holds 3/4 of its lateral
    area; a box's faces get points in proportion to their areas."""
    rng = np.random.default_rng(0)
    cone = shapes._Frustum(1.0, 0.0, 2.0, bottom=False, top=False).sample(rng, 20000)
    assert abs((cone[:, 1] < 0).mean() - 0.75) < 0.02
    box = shapes._Box((1.0, 2.0, 4.0)).sample(rng, 20000)
    on_z_faces = np.isclose(np.abs(box[:, 2]), 2.0).mean()
    assert abs(on_z_faces - (2 * 1 * 2) / (2 * (1 * 2 + 2 * 4 + 1 * 4))) < 0.02


def test_classes_overlap_but_are_learnable(timed_splits):
    """A nearest-centroid classifier on sorted PCA box extents is far above chance but far from
    perfect: global proportions alone do not solve the task."""
    _, train, test = timed_splits
    features = _pca_extents(train.points)
    centroids = np.stack([features[train.labels == c].mean(axis=0)
                          for c in range(len(CLASS_NAMES))])
    test_features = _pca_extents(test.points)
    predicted = np.argmin(((test_features[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = (predicted == test.labels).mean()
    chance = 1 / len(CLASS_NAMES)
    assert 3 * chance < accuracy < 0.8


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"split": "val"}, "split"),
        ({"points": 0}, "points"),
        ({"per_class": 0}, "per_class"),
        ({"seed": -1}, "seed"),
        ({"points": 2.5}, "points"),
    ],
)
def test_bad_arguments(kwargs, word):
    args = {"split": "train", "per_class": 1, "points": 16, "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=word) as info:
        build_shapes(**args)
    assert "\n" not in str(info.value)
