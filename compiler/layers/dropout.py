"""`dropout`: randomly zero a fraction `rate` of activations while training."""
from polytask.compiler.layers import LAYERS, LayerBuilder


@LAYERS.register("dropout")
class Dropout(LayerBuilder):
    has_params = False
    stackable = True

    def build(self, params, name):
        import keras

        return keras.layers.Dropout(params.rate, name=name)
