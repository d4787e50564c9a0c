"""`residual_dense`: a dense layer with a skip connection (He et al. 2016, with a projection
shortcut when the widths differ):

    y = activation(W x + b) + x          if the input width equals `units`
    y = activation(W x + b) + P x        otherwise (P: a learned [in, units] projection, no bias)

One module, every form polytask builds: the Keras layer (pooled models and trunks), the
stacked form (per-task heads) and the functional form (meta-learning). TensorFlow and
Keras are imported only inside the builders.
"""
from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from polytask.compiler.layers import Layer, LayerShapeError, Weight, tf_activation
from polytask.spec.registry import LAYERS
from polytask.spec.types import Activation, StrictModel


class ResidualDenseParams(StrictModel):
    units: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(description='Output width.')
    activation: Activation = Field("relu", description='Activation of the dense branch (the skip connection is linear).')


@LAYERS.register
class ResidualDense(Layer):
    """A dense layer plus a skip connection, projected when the widths differ."""

    name = "residual_dense"
    Params = ResidualDenseParams
    stackable = True

    def output_shape(self, params, input_shape, form="keras"):
        if len(input_shape) != 1:
            raise LayerShapeError(f"residual_dense needs flat input, not shape {list(input_shape)}",
                                  "add `- flatten` before it")
        return (params.units,)

    def weights(self, params, input_shape):
        width = input_shape[-1]
        out = [Weight("kernel", (width, params.units)), Weight("bias", (params.units,), "zeros")]
        if width != params.units:
            out.append(Weight("projection", (width, params.units)))
        return out

    def keras(self, params, name):
        import keras

        class ResidualDenseLayer(keras.layers.Layer):
            def build(self, input_shape):
                width = int(input_shape[-1])
                self.dense = keras.layers.Dense(params.units, activation=params.activation, name="dense")
                self.dense.build(input_shape)
                self.projection = None
                if width != params.units:
                    self.projection = keras.layers.Dense(params.units, use_bias=False, name="projection")
                    self.projection.build(input_shape)

            def call(self, x):
                skip = x if self.projection is None else self.projection(x)
                return self.dense(x) + skip

        return ResidualDenseLayer(name=name)

    def stacked(self, head, params, width, prefix):
        import keras
        import tensorflow as tf

        from polytask.compiler.multitask.heads import per_row_matmul

        def glorot(shape, name):
            limit = math.sqrt(6.0 / (shape[1] + shape[2]))
            return head.add_weight(shape=shape, name=name, initializer=keras.initializers.RandomUniform(-limit, limit))

        kernel = glorot((head.count, width, params.units), f"{prefix}_kernel")
        bias = head.add_weight(shape=(head.count, params.units), name=f"{prefix}_bias", initializer="zeros")
        projection = glorot((head.count, width, params.units), f"{prefix}_projection") if width != params.units else None
        activation = tf_activation(params.activation)

        def apply(h, index, training):
            branch = activation(per_row_matmul(h, kernel, index) + tf.gather(bias, index))
            return branch + (h if projection is None else per_row_matmul(h, projection, index))

        return apply, params.units

    def functional(self, params, weights, x, context):
        import tensorflow as tf

        dtype = x.dtype
        h = context.compute(x)
        branch = tf_activation(params.activation)(
            tf.matmul(h, context.compute(weights["kernel"])) + context.compute(weights["bias"])[:, None, :])
        skip = h if "projection" not in weights else tf.matmul(h, context.compute(weights["projection"]))
        return tf.cast(branch + skip, dtype)
