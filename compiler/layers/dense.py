"""`dense`: a fully connected layer on the last axis (Keras `Dense`)."""
from polytask.compiler.layers import LAYERS, LayerBuilder


@LAYERS.register("dense")
class Dense(LayerBuilder):
    stackable = True

    def output_shape(self, params, input_shape):
        if not input_shape:
            raise ValueError("dense needs at least a vector input")
        return tuple(input_shape[:-1]) + (params.units,)

    def count_params(self, params, input_shape):
        return input_shape[-1] * params.units + (params.units if params.use_bias else 0)

    def build(self, params, name):
        import keras

        return keras.layers.Dense(params.units, activation=params.activation, use_bias=params.use_bias, name=name)
