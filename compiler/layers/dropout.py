"""`dropout`: randomly zero a fraction `rate` of activations while training."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from polytask.compiler.layers import Layer
from polytask.spec.registry import LAYERS
from polytask.spec.types import StrictModel


class DropoutParams(StrictModel):
    rate: Annotated[float, Field(strict=True, ge=0.0, lt=1.0)] = Field(description='Fraction of units dropped in training.')


@LAYERS.register
class Dropout(Layer):
    """Randomly zero a fraction `rate` of activations while training."""

    name = "dropout"
    Params = DropoutParams
    stackable = True
    meta_unsupported = "dropout would make inner-loop steps random"

    def keras(self, params, name):
        import keras

        return keras.layers.Dropout(params.rate, name=name)
