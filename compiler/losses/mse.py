"""`mse`: mean squared error."""
from polytask.compiler.losses._regression import RegressionLoss
from polytask.spec.registry import LOSSES


@LOSSES.register
class MeanSquaredError(RegressionLoss):
    """Mean squared error; output = one linear unit per target value."""

    name = "mse"

    def elementwise(self, params, error, xp):
        return error * error
