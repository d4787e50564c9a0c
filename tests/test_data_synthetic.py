"""Synthetic generators: shapes, determinism by seed, and the behaviour each paper relies on."""
from __future__ import annotations

import numpy as np
import pytest

from data_support import describe, load
from polytask.errors import DataError


def _synthetic(generator, samples=500):
    return {"source": "synthetic", "generator": generator, "samples": samples}


@pytest.mark.parametrize(
    "generator, shapes",
    [
        ({"kind": "sinusoid", "tasks": 3}, {"x": (1,), "task_0": (1,), "task_2": (1,)}),
        ({"kind": "gradnorm_toy", "tasks": 2, "input_dim": 20, "output_dim": 7}, {"x": (20,), "task_1": (7,)}),
        ({"kind": "mmoe", "tasks": 2, "input_dim": 16}, {"x": (16,), "task_1": (1,)}),
    ],
)
def test_shapes_determinism_and_describe(tmp_path, generator, shapes):
    dataset = _synthetic(generator)
    a, b, c = load(tmp_path, dataset, seed=1), load(tmp_path, dataset, seed=1), load(tmp_path, dataset, seed=2)
    for column, shape in shapes.items():
        assert a.columns[column].shape == (500, *shape)
        assert a.columns[column].dtype == np.float32
    for column in a.columns:
        assert np.array_equal(a.columns[column], b.columns[column])
    assert not np.array_equal(a.columns["task_0"], c.columns["task_0"])
    assert a.feature_columns == ["x"]
    assert describe(tmp_path, dataset) == a.info


def test_sinusoid_rows_follow_a_sine(tmp_path):
    table = load(tmp_path, _synthetic({"kind": "sinusoid", "tasks": 4, "amplitude": [1.0, 2.0]}, samples=300))
    x = table.columns["x"][:, 0].astype(np.float64)
    assert -5.0 <= x.min() and x.max() <= 5.0
    for t in range(4):
        y = table.columns[f"task_{t}"][:, 0].astype(np.float64)
        # fit y = a sin x + b cos x = A sin(x - phi): least squares recovers it exactly
        coef, *_ = np.linalg.lstsq(np.stack([np.sin(x), np.cos(x)], 1), y, rcond=None)
        assert np.allclose(np.stack([np.sin(x), np.cos(x)], 1) @ coef, y, atol=1e-5)
        amplitude = np.hypot(*coef)
        assert 1.0 <= amplitude <= 2.0


def test_more_samples_keep_the_same_tasks(tmp_path):
    small = load(tmp_path, _synthetic({"kind": "mmoe", "input_dim": 8}, samples=100))
    large = load(tmp_path, _synthetic({"kind": "mmoe", "input_dim": 8}, samples=200))
    assert np.array_equal(small.columns["x"], large.columns["x"][:100])


def test_gradnorm_toy_scales_follow_sigmas(tmp_path):
    table = load(tmp_path, _synthetic({"kind": "gradnorm_toy", "tasks": 3, "sigmas": [1.0, 10.0, 100.0]}, samples=400))
    stds = [float(table.columns[f"task_{i}"].std()) for i in range(3)]
    assert 9.0 < stds[1] / stds[0] < 11.0 and 90.0 < stds[2] / stds[0] < 110.0
    # tanh(.) is neither saturated nor linear at the default sizes
    unit = table.columns["task_0"]
    assert 0.4 < float(unit.std()) < 0.9 and float(np.abs(unit).max()) <= 1.0
    default = load(tmp_path, _synthetic({"kind": "gradnorm_toy", "tasks": 3, "input_dim": 10, "output_dim": 2}))
    ratios = [default.columns[f"task_{i}"].std() / default.columns["task_0"].std() for i in range(3)]
    assert np.allclose(ratios, [1, 2, 3], atol=0.35)  # default sigmas 1..T (same B, different eps)
    with pytest.raises(DataError, match="3 tasks but 2 sigmas"):
        load(tmp_path, _synthetic({"kind": "gradnorm_toy", "tasks": 3, "sigmas": [1.0, 2.0]}))


def _label_correlation(tmp_path, p, tasks=2, seed=0):
    table = load(tmp_path, _synthetic({"kind": "mmoe", "tasks": tasks, "correlation": p}, samples=4000), seed=seed)
    labels = np.stack([table.columns[f"task_{i}"][:, 0] for i in range(tasks)])
    return np.corrcoef(labels)


def test_mmoe_correlation_knob_controls_label_correlation(tmp_path):
    high = _label_correlation(tmp_path, 0.9)[0, 1]
    low = _label_correlation(tmp_path, 0.1)[0, 1]
    assert high > 0.7 and abs(low) < 0.3 and high - low > 0.5
    assert _label_correlation(tmp_path, -0.9)[0, 1] < -0.5
    ordered = [_label_correlation(tmp_path, p)[0, 1] for p in (0.0, 0.5, 1.0)]
    assert ordered[0] < ordered[1] < ordered[2] and ordered[2] > 0.99


def test_mmoe_many_tasks_share_one_pairwise_correlation(tmp_path):
    matrix = _label_correlation(tmp_path, 0.8, tasks=4)
    off_diagonal = matrix[~np.eye(4, dtype=bool)]
    assert off_diagonal.min() > 0.6
    with pytest.raises(DataError, match="impossible for 3 tasks"):
        load(tmp_path, _synthetic({"kind": "mmoe", "tasks": 3, "correlation": -0.9}))
    with pytest.raises(DataError, match="impossible for 3 tasks"):  # plan finds out too
        describe(tmp_path, _synthetic({"kind": "mmoe", "tasks": 3, "correlation": -0.9}))
    with pytest.raises(DataError, match="input_dim >= tasks"):
        load(tmp_path, _synthetic({"kind": "mmoe", "tasks": 5, "input_dim": 3}))


def test_mmoe_weights_have_the_requested_cosine():
    from polytask.compiler.data.generators.mmoe import task_weights
    from polytask.compiler.data.generators.mmoe import MmoeGenerator

    for tasks, p in [(2, 0.3), (2, -1.0), (2, 1.0), (5, 0.6), (3, -0.5)]:
        weights = task_weights(MmoeGenerator(kind="mmoe", tasks=tasks, input_dim=10, correlation=p), np.random.default_rng(0))
        gram = weights @ weights.T
        expected = np.full((tasks, tasks), p) + (1 - p) * np.eye(tasks)
        assert np.allclose(gram, expected, atol=1e-9), (tasks, p)
