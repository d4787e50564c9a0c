"""`sgd`: stochastic gradient descent, optionally with (Nesterov) momentum."""
from __future__ import annotations

from polytask.compiler.optimizers import Optimizer
from polytask.spec.registry import OPTIMIZERS
from polytask.spec.types import Fraction, PositiveFloat, StrictModel


class SgdParams(StrictModel):
    learning_rate: PositiveFloat = 1e-2
    """Step size (> 0)."""
    momentum: Fraction = 0.0
    """Momentum coefficient."""
    nesterov: bool = False
    """Nesterov momentum."""


@OPTIMIZERS.register
class Sgd(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    name = "sgd"
    Params = SgdParams

    def build(self, params, rate, clip):
        import keras

        return keras.optimizers.SGD(rate, momentum=params.momentum, nesterov=params.nesterov, **clip)
