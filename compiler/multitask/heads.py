"""Stacked task heads: many same-shaped heads as one parameter tensor, picked per example.

A head is the spec's `head:` layers plus the inferred output layer. For T tasks with the
same head shape, every dense kernel is one variable [T, in, out] (bias [T, out], layer-norm
scale/offset [T, d]). Each example gathers its own task's slice, so the graph and the step
time do not grow with the number of tasks beyond a few (`ALL_HEADS_MAX`) -- only the
parameter tensor does.
"""
from __future__ import annotations


import keras
import tensorflow as tf

# Up to this many heads in a stack, every head is applied to every row (one small matmul per
# head) and each row keeps its own: cheaper on CPU than per-row weight gathers, and than one
# matmul over the heads side by side, whose kernel transposes cost oneDNN nearly as much as the
# step's matmuls (digits_hard step 470 -> 390 us, docs/benchmarks.md). Beyond it, rows gather their head's
# weights, so the graph and the cost per step stay flat as tasks grow.
ALL_HEADS_MAX = 8


def per_row_matmul(h, kernel, index):
    """Row b times kernel[index[b]]: every head on every row when they are few, else a gather."""
    count = kernel.shape[0]
    if count <= ALL_HEADS_MAX:
        every = tf.stack([tf.matmul(h, kernel[head]) for head in range(count)], axis=1)  # [B, count, units]
        return tf.gather(every, index, axis=1, batch_dims=1)
    return tf.einsum("bi,bio->bo", h, tf.gather(kernel, index))


class StackedHead(keras.layers.Layer):
    """`count` heads with identical layer configs; `call(h, index)` applies head `index[b]` to row b.

    Each layer's stacked form (weights with a leading head axis, and how a row picks its
    head's slice) lives with its descriptor (`Layer.stacked` in `polytask.compiler.layers`).
    """

    def __init__(self, layers, output_units: int, count: int, **kwargs):
        super().__init__(**kwargs)
        self.layer_specs = list(layers)
        self.output_units = int(output_units)
        self.count = int(count)
        self._ops = []

    def build(self, input_shape):
        from polytask.compiler.layers import output_layer

        width = int(input_shape[-1])
        for index, spec in enumerate(self.layer_specs + [output_layer(self.output_units)]):
            apply, width = spec.descriptor.stacked(self, spec.params, width, f"{index}_{spec.kind}")
            self._ops.append(apply)
        # The ops close over their weights; an attribute makes them reachable for tf.saved_model.
        self.stacked_variables = list(self.weights)
        super().build(input_shape)

    def call(self, h, index, training=False):
        for apply in self._ops:
            h = apply(h, index, training)
        return h

    def head_weights(self, task: int) -> list:
        """Task `task`'s slice of every weight, in layer order (for tests and export)."""
        return [w[task] for w in self.weights]
