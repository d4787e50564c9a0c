"""`huber`: quadratic for |error| <= 1, linear beyond (delta = 1, as Keras' default)."""
from polytask.compiler.losses._regression import RegressionLoss
from polytask.spec.registry import LOSSES

DELTA = 1.0


@LOSSES.register
class Huber(RegressionLoss):
    """Huber loss (delta 1): quadratic for small errors, linear for large ones."""

    name = "huber"

    def elementwise(self, params, error, xp):
        absolute = xp.abs(error)
        quadratic = xp.minimum(absolute, DELTA)
        return 0.5 * quadratic * quadratic + DELTA * (absolute - quadratic)
