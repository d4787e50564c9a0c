"""`activation`: an element-wise nonlinearity as its own layer."""
from polytask.compiler.layers import LAYERS, LayerBuilder


@LAYERS.register("activation")
class Activation(LayerBuilder):
    has_params = False
    stackable = True

    def build(self, params, name):
        import keras

        return keras.layers.Activation(params.function, name=name)
