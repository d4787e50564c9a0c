"""`conv2d`: a 2-D convolution over (height, width, channels) inputs (Keras `Conv2D`)."""
from polytask.compiler.layers import LAYERS, LayerBuilder


def conv_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    out = (size - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} is larger than the input size {size}")
    return out


@LAYERS.register("conv2d")
class Conv2d(LayerBuilder):
    def output_shape(self, params, input_shape):
        if len(input_shape) != 3:
            raise ValueError("conv2d needs (height, width, channels) inputs")
        h, w, _ = input_shape
        return (conv_size(h, params.kernel_size, params.strides, params.padding),
                conv_size(w, params.kernel_size, params.strides, params.padding), params.filters)

    def count_params(self, params, input_shape):
        return params.kernel_size * params.kernel_size * input_shape[-1] * params.filters + params.filters

    def build(self, params, name):
        import keras

        return keras.layers.Conv2D(params.filters, params.kernel_size, strides=params.strides,
                                   padding=params.padding, activation=params.activation, name=name)
