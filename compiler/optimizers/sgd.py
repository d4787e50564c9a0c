"""`sgd`: stochastic gradient descent, optionally with (Nesterov) momentum."""
from __future__ import annotations

from pydantic import Field

from polytask.compiler.optimizers import Optimizer
from polytask.spec.registry import OPTIMIZERS
from polytask.spec.types import Fraction, PositiveFloat, StrictModel


class SgdParams(StrictModel):
    learning_rate: PositiveFloat = Field(1e-2, description='Step size (> 0).')
    momentum: Fraction = Field(0.0, description='Momentum coefficient.')
    nesterov: bool = Field(False, description='Nesterov momentum.')


@OPTIMIZERS.register
class Sgd(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    name = "sgd"
    Params = SgdParams

    def build(self, params, rate, clip):
        import keras

        return keras.optimizers.SGD(rate, momentum=params.momentum, nesterov=params.nesterov, **clip)
