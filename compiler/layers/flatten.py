"""`flatten`: everything but the batch axis into one vector."""
from polytask.compiler.layers import LAYERS, LayerBuilder, flat_size


@LAYERS.register("flatten")
class Flatten(LayerBuilder):
    has_params = False
    stackable = True

    def output_shape(self, params, input_shape):
        return (flat_size(input_shape),)

    def build(self, params, name):
        import keras

        return keras.layers.Flatten(name=name)
