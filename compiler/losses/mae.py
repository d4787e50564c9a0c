"""`mae`: mean absolute error."""
from polytask.compiler.losses import LOSSES
from polytask.compiler.losses._regression import RegressionLoss


@LOSSES.register("mae")
class MeanAbsoluteError(RegressionLoss):
    def elementwise(self, error, xp):
        return xp.abs(error)
