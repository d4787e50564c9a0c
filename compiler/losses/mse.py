"""`mse`: mean squared error."""
from polytask.compiler.losses import LOSSES
from polytask.compiler.losses._regression import RegressionLoss


@LOSSES.register("mse")
class MeanSquaredError(RegressionLoss):
    def elementwise(self, error, xp):
        return error * error
