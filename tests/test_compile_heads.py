"""Stacked heads compute exactly what separate per-task Keras heads with the same weights compute."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from polytask.compiler.multitask.heads import ALL_HEADS_MAX, StackedHead
from polytask.spec.layers import Layer


@pytest.mark.parametrize("tasks", [4, 12])  # both ways of applying stacked heads (see ALL_HEADS_MAX)
def test_stacked_heads_equal_per_task_heads(tasks):
    layers = [Layer.model_validate({"dense": {"units": 5, "activation": "relu"}}), Layer.model_validate({"layer_norm": {}})]
    width, units = 6, 3
    head = StackedHead(layers, units, tasks)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(32, width)).astype(np.float32)
    index = rng.integers(0, tasks, size=32).astype(np.int32)
    head(tf.constant(h), tf.constant(index))
    for w in head.weights:  # move away from the ones/zeros initialisation of layer norm and biases
        w.assign(rng.normal(size=w.shape).astype(np.float32))
    stacked = head(tf.constant(h), tf.constant(index)).numpy()

    for task in range(tasks):
        if not (index == task).any():
            continue
        kernel1, bias1, gamma, beta, kernel2, bias2 = head.head_weights(task)
        dense1 = keras.layers.Dense(5, activation="relu")
        norm = keras.layers.LayerNormalization(epsilon=1e-3)
        dense2 = keras.layers.Dense(units)
        rows = h[index == task]
        out = dense2(norm(dense1(rows)))  # builds the layers
        dense1.set_weights([kernel1.numpy(), bias1.numpy()])
        norm.set_weights([gamma.numpy(), beta.numpy()])
        dense2.set_weights([kernel2.numpy(), bias2.numpy()])
        expected = dense2(norm(dense1(rows))).numpy()
        np.testing.assert_allclose(stacked[index == task], expected, rtol=1e-5, atol=1e-5)


def test_graph_stops_growing_past_a_few_tasks():
    """Up to ALL_HEADS_MAX heads each gets its matmul; beyond, rows gather their head's weights."""

    def op_count(tasks: int) -> int:
        head = StackedHead([Layer.model_validate({"dense": {"units": 8, "activation": "relu"}})], 2, tasks)
        fn = tf.function(lambda h, i: head(h, i))
        graph = fn.get_concrete_function(tf.TensorSpec((None, 4)), tf.TensorSpec((None,), tf.int32)).graph
        return len(graph.get_operations())

    assert op_count(ALL_HEADS_MAX + 1) == op_count(30) == op_count(300)
    assert op_count(3) < op_count(5) <= op_count(ALL_HEADS_MAX)
