"""`batch_norm`: batch normalization over the last axis (Keras `BatchNormalization`).

Counts 4 weights per channel like Keras: gamma, beta (trained) and the moving mean and
variance (updated, not trained). In meta-learning models statistics always come from the
task's own examples (no running averages; see `FunctionalContext.stats_count`).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from polytask.compiler.layers import Layer, Weight, per_task
from polytask.spec.registry import LAYERS
from polytask.spec.types import StrictModel


class NormParams(StrictModel):
    epsilon: Annotated[float, Field(strict=True, gt=0.0)] = Field(1e-3, description='Added to the variance.')


@LAYERS.register
class BatchNorm(Layer):
    """Batch normalization over the last axis."""

    name = "batch_norm"
    Params = NormParams
    batch_statistics = True

    def weights(self, params, input_shape):
        channels = input_shape[-1]
        return [Weight("gamma", (channels,), "ones"), Weight("beta", (channels,), "zeros"),
                Weight("moving_mean", (channels,), "zeros", trainable=False),
                Weight("moving_variance", (channels,), "ones", trainable=False)]

    def keras(self, params, name):
        import keras

        return keras.layers.BatchNormalization(epsilon=params.epsilon, name=name)

    def functional(self, params, weights, x, context):
        """Statistics per task and channel, from each task's batch (or its first `stats_count` examples)."""
        import tensorflow as tf

        axes = [0, 1, 2] if context.folded else [1]
        reference = x
        if context.stats_count is not None:
            reference = x[: context.stats_count] if context.folded else x[:, : context.stats_count]
        mean, variance = tf.nn.moments(reference, axes=axes, keepdims=True)
        # gamma (x - mean) / sigma + beta as one scale and one shift of x: two passes over the
        # activation instead of four, and fewer in the (second-order) backward pass, where
        # this layer's elementwise work outweighed the convolutions (bench/bench_maml_conv.py).
        scale = tf.math.rsqrt(variance + params.epsilon) * per_task(weights["gamma"], context.folded)
        shift = per_task(weights["beta"], context.folded) - mean * scale
        return x * scale + shift
