"""`mae`: mean absolute error."""
from polytask.compiler.losses._regression import RegressionLoss
from polytask.spec.registry import LOSSES


@LOSSES.register
class MeanAbsoluteError(RegressionLoss):
    """Mean absolute error; output = one linear unit per target value."""

    name = "mae"

    def elementwise(self, params, error, xp):
        return xp.abs(error)
