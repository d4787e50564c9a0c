"""`dense`: a fully connected layer on the last axis (Keras `Dense`)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from polytask.compiler.layers import Layer, LayerShapeError, Weight, tf_activation
from polytask.spec.registry import LAYERS
from polytask.spec.types import Activation, StrictModel


class DenseParams(StrictModel):
    units: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(description='Output width.')
    activation: Activation = Field("linear", description='Activation after the layer.')
    use_bias: bool = Field(True, description='Add a bias.')


@LAYERS.register
class Dense(Layer):
    """A fully connected layer on the last axis."""

    name = "dense"
    Params = DenseParams
    stackable = True

    def output_shape(self, params, input_shape, form="keras"):
        if not input_shape:
            raise LayerShapeError("dense needs at least a vector input")
        if form == "functional" and len(input_shape) != 1:
            raise LayerShapeError("dense needs flat input in meta-learning models",
                                  "add `- flatten` before the first dense layer")
        return tuple(input_shape[:-1]) + (params.units,)

    def weights(self, params, input_shape):
        out = [Weight("kernel", (input_shape[-1], params.units))]
        if params.use_bias:
            out.append(Weight("bias", (params.units,), "zeros"))
        return out

    def keras(self, params, name):
        import keras

        return keras.layers.Dense(params.units, activation=params.activation, use_bias=params.use_bias, name=name)

    def stacked(self, head, params, width, prefix):
        import math

        import keras

        from polytask.compiler.multitask.heads import per_row_matmul

        limit = math.sqrt(6.0 / (width + params.units))  # Glorot uniform per head, as Keras Dense
        kernel = head.add_weight(shape=(head.count, width, params.units), name=f"{prefix}_kernel",
                                 initializer=keras.initializers.RandomUniform(-limit, limit))
        bias = (head.add_weight(shape=(head.count, params.units), name=f"{prefix}_bias", initializer="zeros")
                if params.use_bias else None)
        activation = tf_activation(params.activation)

        def apply(h, index, training):
            import tensorflow as tf

            h = per_row_matmul(h, kernel, index)
            if bias is not None:
                h = h + tf.gather(bias, index)
            return activation(h)

        return apply, params.units

    def functional(self, params, weights, x, context):
        import tensorflow as tf

        dtype = x.dtype
        y = tf.matmul(context.compute(x), context.compute(weights["kernel"]))
        if "bias" in weights:
            y = y + context.compute(weights["bias"])[:, None, :]
        return tf.cast(tf_activation(params.activation)(y), dtype)
