"""`max_pool2d`: max pooling over (height, width) (Keras `MaxPooling2D`, valid padding)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from polytask.compiler.layers import Layer, LayerShapeError
from polytask.spec.registry import LAYERS
from polytask.spec.types import StrictModel


class Pool2dParams(StrictModel):
    pool_size: Annotated[int, Field(strict=True, ge=1, le=64)] = Field(2, description='Square window and stride.')


@LAYERS.register
class MaxPool2d(Layer):
    """Max pooling over (height, width), window and stride `pool_size`."""

    name = "max_pool2d"
    Params = Pool2dParams

    def output_shape(self, params, input_shape, form="keras"):
        if len(input_shape) != 3:
            raise LayerShapeError("max_pool2d needs (height, width, channels) inputs", "put pooling layers before flatten")
        h, w, c = input_shape
        if h < params.pool_size or w < params.pool_size:
            raise LayerShapeError(f"pool size {params.pool_size} is larger than the input {h}x{w}",
                                  "remove a pooling layer or use larger images")
        return (h // params.pool_size, w // params.pool_size, c)

    def keras(self, params, name):
        import keras

        return keras.layers.MaxPooling2D(params.pool_size, name=name)

    def functional(self, params, weights, x, context):
        """Per channel, so the folded [B, H, W, T, C] layout pools every task at once."""
        import tensorflow as tf

        from polytask.compiler.meta.functional import dims

        b, h, w, t, c = dims(x)
        size = params.pool_size
        pooled = tf.nn.max_pool2d(tf.reshape(x, [b, h, w, t * c]), size, size, "VALID")
        return tf.reshape(pooled, [b, h // size, w // size, t, c])
