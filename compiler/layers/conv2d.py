"""`conv2d`: a 2-D convolution over (height, width, channels) inputs (Keras `Conv2D`)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from polytask.compiler.layers import Layer, LayerShapeError, Weight, tf_activation
from polytask.spec.registry import LAYERS
from polytask.spec.types import Activation, StrictModel


class Conv2dParams(StrictModel):
    filters: Annotated[int, Field(strict=True, ge=1, le=100_000)] = Field(description='Output channels.')
    kernel_size: Annotated[int, Field(strict=True, ge=1, le=64)] = Field(3, description='Square kernel size.')
    strides: Annotated[int, Field(strict=True, ge=1, le=64)] = Field(1, description='Square stride.')
    padding: Literal["same", "valid"] = Field("same", description='`same` keeps the size, `valid` shrinks it.')
    activation: Activation = Field("linear", description='Activation after the layer.')


def conv_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    out = (size - kernel) // stride + 1
    if out < 1:
        raise LayerShapeError(f"kernel {kernel} is larger than the input size {size}",
                              "use padding: same, fewer pooling layers or larger images")
    return out


@LAYERS.register
class Conv2d(Layer):
    """A 2-D convolution over (height, width, channels) inputs."""

    name = "conv2d"
    Params = Conv2dParams
    xla_slow_on_cpu = True  # oneDNN's convolutions beat XLA's on CPU (measured: docs/benchmarks.md)

    def output_shape(self, params, input_shape, form="keras"):
        if len(input_shape) != 3:
            raise LayerShapeError("conv2d needs (height, width, channels) inputs",
                                  "put conv2d/max_pool2d layers before flatten, on image data")
        h, w, _ = input_shape
        return (conv_size(h, params.kernel_size, params.strides, params.padding),
                conv_size(w, params.kernel_size, params.strides, params.padding), params.filters)

    def weights(self, params, input_shape):
        k = params.kernel_size
        return [Weight("kernel", (k, k, input_shape[-1], params.filters)), Weight("bias", (params.filters,), "zeros")]

    def keras(self, params, name):
        import keras

        return keras.layers.Conv2D(params.filters, params.kernel_size, strides=params.strides,
                                   padding=params.padding, activation=params.activation, name=name)

    def functional(self, params, weights, x, context):
        """One grouped convolution for all tasks: [B, H, W, T, C] with kernel [k, k, C, T*O]."""
        import tensorflow as tf

        from polytask.compiler.meta.functional import dims

        dtype = x.dtype
        kernel, bias = context.compute(weights["kernel"]), context.compute(weights["bias"])
        x = context.compute(x)
        b, h, w, t, c = dims(x)
        k, filters = params.kernel_size, params.filters
        # [T, k, k, C, O] -> [k, k, C, T*O]: output channel group g belongs to task g.
        grouped = tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), [k, k, c, t * filters])
        y = tf.nn.conv2d(tf.reshape(x, [b, h, w, t * c]), grouped, params.strides, params.padding.upper())
        y = tf.reshape(y, [b, context.output_shape[0], context.output_shape[1], t, filters])
        y = y + bias[None, None, None, :, :]
        return tf.cast(tf_activation(params.activation)(y), dtype)
