"""`activation`: an element-wise nonlinearity as its own layer."""
from __future__ import annotations

from pydantic import Field

from polytask.compiler.layers import Layer, tf_activation
from polytask.spec.registry import LAYERS
from polytask.spec.types import Activation as ActivationName
from polytask.spec.types import StrictModel


class ActivationParams(StrictModel):
    function: ActivationName = Field(description='The activation; `- {activation: relu}` is short for `{function: relu}`.')


@LAYERS.register
class Activation(Layer):
    """An element-wise nonlinearity as its own layer."""

    name = "activation"
    Params = ActivationParams
    shorthand = "function"
    stackable = True

    def keras(self, params, name):
        import keras

        return keras.layers.Activation(params.function, name=name)

    def functional(self, params, weights, x, context):
        return tf_activation(params.function)(x)
