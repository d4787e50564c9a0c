"""Per-task gradients of a hard-sharing trunk from one batched backward pass
(compiler/multitask/task_gradients.py) equal the pfor Jacobian and one tape.gradient per
task, on dense, layer-norm and conv trunks, with missing labels and tasks absent from the
batch; trunks whose rows are not independent (dropout, batch norm) keep the Jacobian."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from multitask_support import load_program, spec_dict, write_csv, write_spec


def _matrix(program, batch, mode: str) -> np.ndarray:
    """The [T, P] per-task gradients of the shared trunk on one batch, computed the `mode` way."""
    program.task_gradients = mode
    return tf.function(program.shared_task_gradients, autograph=False)(*batch).numpy()  # in a graph, as in training


def _table_program(tmp_path, trunk, batch_size=32, missing_b=0.3, weights=None):
    spec = spec_dict(steps=3, batch_size=batch_size, weighting=["pcgrad"])
    spec["structure"]["trunk"] = trunk
    if weights:
        for name, weight in weights.items():
            spec["tasks"][name]["weight"] = weight
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_csv(tmp_path / "data.csv", missing_b=missing_b)
    return load_program(write_spec(tmp_path, spec))


TABLE_TRUNKS = {
    "dense": [{"dense": {"units": 16, "activation": "tanh"}}],
    "dense_layer_norm_activation": [{"dense": {"units": 12, "activation": "relu"}}, {"layer_norm": {}},
                                    {"activation": "gelu"}, {"dense": {"units": 8, "use_bias": False}}],
}


@pytest.mark.parametrize("trunk", TABLE_TRUNKS, ids=list(TABLE_TRUNKS))
def test_batched_per_task_gradients_equal_the_jacobian_and_the_loop(tmp_path, trunk):
    program = _table_program(tmp_path, TABLE_TRUNKS[trunk], weights={"a": 2.0, "c": 0.5})
    assert program.trunk_gradients is not None, "this trunk should take the batched path"
    for _ in range(3):
        batch = program.next_batch()
        batched, pfor, loop = (_matrix(program, batch, mode) for mode in ("batched", "pfor", "loop"))
        assert batched.shape == (3, sum(int(np.prod(v.shape)) for v in program.shared))
        assert np.abs(pfor).max() > 1e-3
        np.testing.assert_allclose(batched, pfor, atol=2e-6, rtol=1e-4)
        np.testing.assert_allclose(batched, loop, atol=2e-6, rtol=1e-4)


def test_a_task_absent_from_the_batch_gets_a_zero_row(tmp_path):
    program = _table_program(tmp_path, TABLE_TRUNKS["dense"])
    x, labels, task = program.next_batch()
    task = tf.where(tf.equal(task, 1), tf.zeros_like(task), task)  # no example of task b
    batched, pfor = (_matrix(program, (x, labels, task), mode) for mode in ("batched", "pfor"))
    assert np.all(batched[1] == 0)
    np.testing.assert_allclose(batched, pfor, atol=2e-6, rtol=1e-4)


def _digits_program(tmp_path, trunk):
    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "examples" / "mtan.yaml").read_text())
    spec["structure"] = {"sharing": "hard", "trunk": trunk, "head": [{"dense": {"units": 8, "activation": "relu"}}]}
    spec["training"] = {"steps": 2, "batch_size": 24, "weighting": ["mgda"], "eval_every": 2,
                        "checkpoint_every": 2, "log_every": 1}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_program(path)


def test_image_inputs_through_pooling_and_flatten(tmp_path):
    program = _digits_program(tmp_path, ["max_pool2d", "flatten", {"dense": {"units": 8, "activation": "relu"}}])
    assert program.trunk_gradients is not None
    batch = program.next_batch()
    batched, pfor = (_matrix(program, batch, mode) for mode in ("batched", "pfor"))
    np.testing.assert_allclose(batched, pfor, atol=2e-6, rtol=1e-4)


def test_conv_trunks_keep_the_jacobian(tmp_path):
    program = _digits_program(tmp_path, [{"conv2d": {"filters": 4, "kernel_size": 3}}, "flatten"])
    assert program.trunk_gradients is None


@pytest.mark.parametrize("layer", [{"dropout": {"rate": 0.1}}, "batch_norm"])
def test_trunks_whose_rows_are_not_independent_keep_the_jacobian(tmp_path, layer):
    program = _table_program(tmp_path, [{"dense": {"units": 16, "activation": "relu"}}, layer])
    assert program.trunk_gradients is None


def test_loss_only_weightings_build_no_per_task_trunk(tmp_path):
    spec = spec_dict(steps=3, weighting=["dwa"])
    spec["structure"]["trunk"] = TABLE_TRUNKS["dense"]
    program = load_program(write_spec(tmp_path, spec))
    assert program.trunk_gradients is None


@pytest.mark.parametrize("weighting", ["pcgrad", "cagrad", "nash_mtl"])
def test_training_with_the_batched_path_matches_the_jacobian(tmp_path, weighting):
    """Three optimizer steps on the same batches end at the same weights either way."""
    trained = []
    for mode in ("batched", "pfor"):
        spec = spec_dict(steps=3, log_every=1, eval_every=3, checkpoint_every=3, weighting=[weighting])
        spec["structure"]["trunk"] = TABLE_TRUNKS["dense_layer_norm_activation"]
        program = load_program(write_spec(tmp_path / mode, spec))
        program.task_gradients = mode
        for _ in range(3):
            program.train_step()
        trained.append([v.numpy() for v in program.net.trainable_weights])
    for a, b in zip(*trained):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("weighting", ["modo", "sdmgrad"])
def test_slice_gradients_of_sampling_methods_equal_the_loop(tmp_path, weighting):
    """MoDo and SDMGrad's per-task gradients on 3 disjoint slices of the batch: the batched pass
    over (slice, task) pairs equals one tape.gradient per slice and task."""
    spec = spec_dict(steps=3, batch_size=32, weighting=[weighting])
    spec["structure"]["trunk"] = TABLE_TRUNKS["dense_layer_norm_activation"]
    program = load_program(write_spec(tmp_path, spec))
    assert program._batched_trunk(3) is not None
    x, labels, task = program.next_batch()
    weights = tf.constant([1.0, 2.0, 0.5])
    samples = {}
    for mode in ("batched", "loop"):
        program.task_gradients = mode
        samples[mode] = tf.function(lambda: program._slice_gradients(x, labels, task, weights, 3), autograph=False)().numpy()
    assert samples["batched"].shape == (3, 3, sum(int(np.prod(v.shape)) for v in program.shared))
    assert np.abs(samples["loop"]).max() > 1e-3
    np.testing.assert_allclose(samples["batched"], samples["loop"], atol=2e-6, rtol=1e-4)
