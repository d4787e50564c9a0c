"""`huber`: quadratic for |error| <= 1, linear beyond (delta = 1, as Keras' default)."""
from polytask.compiler.losses import LOSSES
from polytask.compiler.losses._regression import RegressionLoss

DELTA = 1.0


@LOSSES.register("huber")
class Huber(RegressionLoss):
    def elementwise(self, error, xp):
        absolute = xp.abs(error)
        quadratic = xp.minimum(absolute, DELTA)
        return 0.5 * quadratic * quadratic + DELTA * (absolute - quadratic)
