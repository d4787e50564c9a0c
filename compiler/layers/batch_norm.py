"""`batch_norm`: batch normalization over the last axis (Keras `BatchNormalization`).

Counts 4 weights per channel like Keras: gamma, beta (trained) and the moving mean and
variance (updated, not trained).
"""
from polytask.compiler.layers import LAYERS, LayerBuilder


@LAYERS.register("batch_norm")
class BatchNorm(LayerBuilder):
    def count_params(self, params, input_shape):
        return 4 * input_shape[-1]

    def build(self, params, name):
        import keras

        return keras.layers.BatchNormalization(epsilon=params.epsilon, name=name)
