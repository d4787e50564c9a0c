"""The multi-task training pipeline: every task's rows in a fresh shuffled order each epoch,
tasks at their sampling rates, seeded, and exact across a checkpoint taken mid-block."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf

from polytask.compiler.multitask.data import (BLOCK_BYTES, MultiTaskData, SplitArrays, feistel_half_bits, shuffled_index,
                                              train_dataset)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 16, 17, 63, 64, 65, 1000, 4097])
def test_shuffled_index_is_a_permutation_of_the_task_rows(size):
    position = tf.range(size, dtype=tf.int64)
    half_bits = feistel_half_bits(size)
    orders = []
    for key in (0, 12345, 2**32 - 1):
        out = shuffled_index(position, tf.fill([size], tf.constant(size, tf.int64)),
                             tf.fill([size], tf.constant(half_bits, tf.int64)), tf.fill([size], tf.constant(key, tf.int64)))
        assert sorted(out.numpy().tolist()) == list(range(size))
        orders.append(out.numpy().tolist())
    if size >= 16:  # different keys (epochs, tasks, seeds) give different orders
        assert orders[0] != orders[1] != orders[2]


SIZES = (7, 30, 200)


def toy_data():
    """Three tasks over one pool of 300 rows; task i's label is i, and each row's first feature is its index."""
    pool = np.zeros((300, 4), np.float32)
    pool[:, 0] = np.arange(300)
    rows = [np.arange(7) + 50, np.arange(30) + 100, np.arange(200) + 60]  # tasks 1 and 2 overlap (a shared pool)
    labels = [np.full((n, 1), task, np.float32) for task, n in enumerate(SIZES)]
    split = SplitArrays([pool], [0, 0, 0], rows, labels, [0, 0, 0])
    return MultiTaskData(["a", "b", "c"], (4,), 1, {"train": split}, None, None, {}), rows


def draws(dataset, batches):
    seen = collections.defaultdict(list)
    for x, y, task in dataset.take(batches):
        assert x.shape == (16, 4) and y.shape == (16, 1)
        np.testing.assert_array_equal(y.numpy()[:, 0], task.numpy())  # labels travel with their task's row
        for row, t in zip(x.numpy()[:, 0].astype(int), task.numpy()):
            seen[int(t)].append(int(row))
    return seen


def test_each_task_visits_all_its_rows_once_per_epoch_at_its_sampling_rate():
    data, rows = toy_data()
    rates = np.array([0.2, 0.3, 0.5])
    seen = draws(train_dataset(data, 16, rates, seed=3), 1200)  # 19,200 examples: more than one block
    total = sum(len(v) for v in seen.values())
    for task, share in enumerate(rates):
        # Binomial standard error at n = 19,200 is under 0.004; 0.015 is ~4 of them.
        assert abs(len(seen[task]) / total - share) < 0.015
        epochs = [seen[task][e * SIZES[task]:(e + 1) * SIZES[task]] for e in range(len(seen[task]) // SIZES[task])]
        assert len(epochs) >= 2
        for epoch in epochs:
            assert sorted(epoch) == sorted(rows[task].tolist())
        if SIZES[task] > 7:
            assert epochs[0] != epochs[1]  # reshuffled every epoch


def test_the_stream_is_seeded():
    data, _ = toy_data()
    rates = np.array([1 / 3] * 3)
    first = draws(train_dataset(data, 16, rates, seed=0), 50)
    assert draws(train_dataset(data, 16, rates, seed=0), 50) == first
    assert draws(train_dataset(data, 16, rates, seed=1), 50) != first


def test_a_task_without_rows_is_never_drawn():
    pool = np.arange(40, dtype=np.float32).reshape(10, 4)
    split = SplitArrays([pool], [0, 0], [np.arange(10), np.arange(0)],
                        [np.zeros((10, 1), np.float32), np.zeros((0, 1), np.float32)], [0, 10])
    data = MultiTaskData(["a", "b"], (4,), 1, {"validation": split}, None, None, {})
    tasks = np.concatenate([t.numpy() for _, _, t in train_dataset(data, 8, np.array([0.5, 0.5]), 0, "validation").take(20)])
    assert set(tasks.tolist()) == {0}


def test_restoring_a_checkpoint_taken_mid_block_continues_the_same_stream(tmp_path):
    data, _ = toy_data()
    dataset = train_dataset(data, 16, np.array([0.2, 0.3, 0.5]), seed=5)
    reference = iter(dataset)
    expected = [next(reference) for _ in range(700)]

    iterator = iter(dataset)
    for _ in range(517):  # past the first block (512 batches of 16), and mid-way into the second
        next(iterator)
    path = tf.train.Checkpoint(data=iterator).write(str(tmp_path / "ckpt"))
    fresh = iter(dataset)
    tf.train.Checkpoint(data=fresh).read(path).assert_consumed()
    for want in expected[517:]:
        got = next(fresh)
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_checkpoint_holds_row_numbers_not_a_block_of_inputs(tmp_path):
    """The iterator state is at most BLOCK_BYTES of gathered rows plus the prefetched batches, not 8,192 input rows."""
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(1350, 784)).astype(np.float32)
    rows = [np.arange(1000), np.arange(1000, 1300), np.arange(1300, 1350)]
    labels = [np.zeros((len(r), 1), np.float32) for r in rows]
    data = MultiTaskData(["a", "b", "c"], (784,), 1, {"train": SplitArrays([pool], [0, 0, 0], rows, labels, [0, 0, 0])},
                         None, None, {})
    iterator = iter(train_dataset(data, 64, np.array([1 / 3] * 3), seed=0))
    for _ in range(5):
        next(iterator)
    tf.train.Checkpoint(data=iterator).write(str(tmp_path / "ckpt"))
    written = sum(path.stat().st_size for path in tmp_path.iterdir())
    one_batch = 64 * 784 * 4
    assert written < BLOCK_BYTES + 4 * one_batch, written  # a block, two prefetched batches, small state


def test_resuming_a_checkpoint_whose_pipeline_differs_is_a_clear_error(tmp_path, monkeypatch):
    """A run checkpointed by a polytask with another input pipeline (as before 2026-12-03) cannot resume
    its iterator; --resume says so instead of a TensorFlow traceback."""
    import polytask.compiler.multitask.program as program_module
    from cli_support import invoke
    from multitask_support import write_spec

    spec = write_spec(tmp_path, steps=20)
    out = tmp_path / "run"
    assert invoke("train", spec, "--out", out, "--quiet", "--steps", "20").exit_code == 0
    original = program_module.train_dataset
    monkeypatch.setattr(program_module, "train_dataset",
                        lambda *args, **kwargs: original(*args, **kwargs).take(10**12))
    result = invoke("train", spec, "--out", out, "--quiet", "--resume", "--steps", "40")
    assert result.exit_code == 1, result.output
    assert "does not fit this program" in result.output and "new --out" in result.output
    assert "Traceback" not in result.output
