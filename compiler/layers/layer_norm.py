"""`layer_norm`: layer normalization over the last axis (Keras `LayerNormalization`)."""
from __future__ import annotations

from polytask.compiler.layers import Layer, Weight, per_task
from polytask.compiler.layers.batch_norm import NormParams
from polytask.spec.registry import LAYERS


@LAYERS.register
class LayerNorm(Layer):
    """Layer normalization over the last axis, with a learned scale and offset."""

    name = "layer_norm"
    Params = NormParams
    stackable = True

    def weights(self, params, input_shape):
        return [Weight("gamma", (input_shape[-1],), "ones"), Weight("beta", (input_shape[-1],), "zeros")]

    def keras(self, params, name):
        import keras

        return keras.layers.LayerNormalization(epsilon=params.epsilon, name=name)

    @staticmethod
    def _normalize(x, axes, epsilon):
        import tensorflow as tf

        mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + epsilon)

    def stacked(self, head, params, width, prefix):
        import tensorflow as tf

        gamma = head.add_weight(shape=(head.count, width), name=f"{prefix}_gamma", initializer="ones")
        beta = head.add_weight(shape=(head.count, width), name=f"{prefix}_beta", initializer="zeros")

        def apply(h, index, training):
            return self._normalize(h, [-1], params.epsilon) * tf.gather(gamma, index) + tf.gather(beta, index)

        return apply, width

    def functional(self, params, weights, x, context):
        x = self._normalize(x, [1, 2, 4] if context.folded else [-1], params.epsilon)
        return x * per_task(weights["gamma"], context.folded) + per_task(weights["beta"], context.folded)
