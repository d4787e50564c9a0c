"""`flatten`: everything but the batch axis into one vector."""
from __future__ import annotations

from polytask.compiler.layers import Layer, flat_size
from polytask.spec.registry import LAYERS


@LAYERS.register
class Flatten(Layer):
    """Everything but the batch axis into one vector."""

    name = "flatten"
    stackable = True

    def output_shape(self, params, input_shape, form="keras"):
        return (flat_size(input_shape),)

    def keras(self, params, name):
        import keras

        return keras.layers.Flatten(name=name)

    def stacked(self, head, params, width, prefix):
        return (lambda h, index, training: h), width  # head inputs are already flat

    def functional(self, params, weights, x, context):
        import tensorflow as tf

        from polytask.compiler.meta.functional import dims

        if context.folded:
            b, h, w, t, c = dims(x)
            return tf.reshape(tf.transpose(x, [3, 0, 1, 2, 4]), [t, b, h * w * c])
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0], shape[1], -1])
