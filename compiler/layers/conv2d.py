"""`conv2d`: a 2-D convolution over (height, width, channels) inputs (Keras `Conv2D`)."""
from __future__ import annotations

import functools
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
        """All tasks at once on [B, H, W, T, C] with per-task kernels [T, k, k, C, O]: one grouped
        convolution where TensorFlow can differentiate it, else one convolution per task."""
        import tensorflow as tf

        from polytask.compiler.meta.functional import dims

        dtype = x.dtype
        kernel, bias = context.compute(weights["kernel"]), context.compute(weights["bias"])
        x = context.compute(x)
        b, h, w, t, c = dims(x)
        k, filters = params.kernel_size, params.filters
        padding = params.padding.upper()
        if grouped_gradients_supported():
            # [T, k, k, C, O] -> [k, k, C, T*O]: output channel group g belongs to task g.
            grouped = tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), [k, k, c, t * filters])
            y = tf.nn.conv2d(tf.reshape(x, [b, h, w, t * c]), grouped, params.strides, padding)
            y = tf.reshape(y, [b, context.output_shape[0], context.output_shape[1], t, filters])
        elif isinstance(t, int):
            y = tf.stack([tf.nn.conv2d(x[:, :, :, i], kernel[i], params.strides, padding) for i in range(t)], axis=3)
        else:  # a task count known only at run time
            per_task = tf.map_fn(lambda pair: tf.nn.conv2d(pair[0], pair[1], params.strides, padding),
                                 (tf.transpose(x, [3, 0, 1, 2, 4]), kernel), fn_output_signature=x.dtype)
            y = tf.transpose(per_task, [1, 2, 3, 0, 4])
        y = y + bias[None, None, None, :, :]
        return tf.cast(tf_activation(params.activation)(y), dtype)


@functools.lru_cache(maxsize=None)
def grouped_gradients_supported() -> bool:
    """Whether TensorFlow differentiates a grouped convolution here (once per process).

    oneDNN's CPU kernels (on by default on recent Intel CPUs, off on AMD unless
    TF_ENABLE_ONEDNN_OPTS=1) and cuDNN do; TensorFlow's own CPU kernels refuse ("Gradients for
    grouped convolutions are not supported on CPU"), and then each task gets its own
    convolution (same result; on the Intel machine where it was measured, the grouped form
    took 0.47-0.96x the per-task convolutions' time, docs/benchmarks.md).
    """
    import tensorflow as tf

    # Both backward ops of a two-group convolution (one input channel per group), run eagerly
    # even while a graph is being traced (init_scope also pauses tapes, hence the raw ops).
    with tf.init_scope():
        x, kernel, out = tf.zeros([1, 3, 3, 2]), tf.zeros([1, 1, 1, 2]), tf.zeros([1, 3, 3, 2])
        try:
            tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel, out_backprop=out,
                                           strides=[1, 1, 1, 1], padding="VALID").numpy()
            tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel), out_backprop=out,
                                            strides=[1, 1, 1, 1], padding="VALID").numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return False
    return True
