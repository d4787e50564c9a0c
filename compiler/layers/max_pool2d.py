"""`max_pool2d`: max pooling over (height, width) (Keras `MaxPooling2D`, valid padding)."""
from polytask.compiler.layers import LAYERS, LayerBuilder


@LAYERS.register("max_pool2d")
class MaxPool2d(LayerBuilder):
    has_params = False

    def output_shape(self, params, input_shape):
        if len(input_shape) != 3:
            raise ValueError("max_pool2d needs (height, width, channels) inputs")
        h, w, c = input_shape
        if h < params.pool_size or w < params.pool_size:
            raise ValueError(f"pool size {params.pool_size} is larger than the input {h}x{w}")
        return (h // params.pool_size, w // params.pool_size, c)

    def build(self, params, name):
        import keras

        return keras.layers.MaxPooling2D(params.pool_size, name=name)
