"""`rmsprop`: RMSprop (Tieleman & Hinton, 2012)."""
from __future__ import annotations

from pydantic import Field

from polytask.compiler.optimizers import Optimizer
from polytask.spec.registry import OPTIMIZERS
from polytask.spec.types import Fraction, PositiveFloat, StrictModel


class RmspropParams(StrictModel):
    learning_rate: PositiveFloat = Field(1e-3, description='Step size (> 0).')
    rho: Fraction = Field(0.9, description='Decay of the squared-gradient average.')


@OPTIMIZERS.register
class Rmsprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012)."""

    name = "rmsprop"
    Params = RmspropParams

    def build(self, params, rate, clip):
        import keras

        return keras.optimizers.RMSprop(rate, rho=params.rho, **clip)
