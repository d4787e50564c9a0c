"""Stacked task heads: many same-shaped heads as one parameter tensor, picked per example.

A head is the spec's `head:` layers plus the inferred output layer. For T tasks with the
same head shape, every dense kernel is one variable [T, in, out] (bias [T, out], layer-norm
scale/offset [T, d]). Each example gathers its own task's slice, so the graph and the step
time do not grow with the number of tasks -- only the parameter tensor does.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

# Up to this many heads in a stack, every head is applied to every row in one matmul and each
# row keeps its own (cheaper on CPU than per-row weight gathers); beyond it, rows gather their
# head's weights, so the cost per step stays flat as tasks grow. Either way the graph has the
# same ops for any number of tasks.
ALL_HEADS_MAX = 8


class StackedHead(keras.layers.Layer):
    """`count` heads with identical layer configs; `call(h, index)` applies head `index[b]` to row b."""

    def __init__(self, layers, output_units: int, count: int, **kwargs):
        super().__init__(**kwargs)
        self.layer_specs = list(layers)
        self.output_units = int(output_units)
        self.count = int(count)
        self._ops = []

    def build(self, input_shape):
        width = int(input_shape[-1])
        specs = self.layer_specs + [("output", self.output_units)]
        for index, spec in enumerate(specs):
            if isinstance(spec, tuple):
                kind, params = "dense", None
                units, activation, use_bias = spec[1], None, True
            else:
                kind, params = spec.kind, spec.params
            name = f"{index}_{kind}"
            if kind == "dense":
                if params is not None:
                    units, activation, use_bias = params.units, params.activation, params.use_bias
                limit = math.sqrt(6.0 / (width + units))  # Glorot uniform per head, as Keras Dense
                kernel = self.add_weight(shape=(self.count, width, units), name=f"{name}_kernel",
                                         initializer=keras.initializers.RandomUniform(-limit, limit))
                bias = self.add_weight(shape=(self.count, units), name=f"{name}_bias", initializer="zeros") if use_bias else None
                act = keras.activations.get(activation) if activation else None
                self._ops.append(("dense", (kernel, bias, act)))
                width = units
            elif kind == "layer_norm":
                gamma = self.add_weight(shape=(self.count, width), name=f"{name}_gamma", initializer="ones")
                beta = self.add_weight(shape=(self.count, width), name=f"{name}_beta", initializer="zeros")
                self._ops.append(("layer_norm", (gamma, beta, params.epsilon)))
            elif kind == "dropout":
                self._ops.append(("dropout", keras.layers.Dropout(params.rate)))
            elif kind == "activation":
                self._ops.append(("activation", keras.activations.get(params.function)))
            elif kind == "flatten":
                continue
            else:  # the plan refuses these before we get here
                raise ValueError(f"layer kind {kind!r} cannot be stacked in a head")
        super().build(input_shape)

    def _dense(self, h, kernel, index):
        """Row b times kernel[index[b]]: one matmul over all heads when they are few, else a gather."""
        count, width, units = kernel.shape
        if count <= ALL_HEADS_MAX:
            every = tf.matmul(h, tf.reshape(tf.transpose(kernel, [1, 0, 2]), [width, count * units]))
            return tf.gather(tf.reshape(every, [-1, count, units]), index, axis=1, batch_dims=1)
        return tf.einsum("bi,bio->bo", h, tf.gather(kernel, index))

    def call(self, h, index, training=False):
        for kind, op in self._ops:
            if kind == "dense":
                kernel, bias, act = op
                h = self._dense(h, kernel, index)
                if bias is not None:
                    h = h + tf.gather(bias, index)
                if act is not None:
                    h = act(h)
            elif kind == "layer_norm":
                gamma, beta, epsilon = op
                mean, variance = tf.nn.moments(h, axes=[-1], keepdims=True)
                h = (h - mean) * tf.math.rsqrt(variance + epsilon)
                h = h * tf.gather(gamma, index) + tf.gather(beta, index)
            elif kind == "dropout":
                h = op(h, training=training)
            else:
                h = op(h)
        return h

    def head_weights(self, task: int) -> list:
        """Task `task`'s slice of every weight, in layer order (for tests and export)."""
        return [w[task] for w in self.weights]
