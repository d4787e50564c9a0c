"""`layer_norm`: layer normalization over the last axis (Keras `LayerNormalization`)."""
from polytask.compiler.layers import LAYERS, LayerBuilder


@LAYERS.register("layer_norm")
class LayerNorm(LayerBuilder):
    stackable = True

    def count_params(self, params, input_shape):
        return 2 * input_shape[-1]

    def build(self, params, name):
        import keras

        return keras.layers.LayerNormalization(epsilon=params.epsilon, name=name)
