"""`log_cosh`: log(cosh(error)), averaged over the target's values.

About error^2 / 2 for small errors and |error| - log 2 for large ones: a smooth
Huber-like loss without a threshold to choose. Computed stably as
log cosh(e) = |e| + log1p(exp(-2|e|)) - log 2 (cosh overflows float32 beyond |e| ~ 89).
"""
import math

from polytask.compiler.losses._regression import RegressionLoss
from polytask.spec.registry import LOSSES

LOG_2 = math.log(2.0)


@LOSSES.register
class LogCosh(RegressionLoss):
    """log(cosh(prediction - target)): quadratic near 0, linear far away, smooth everywhere."""

    name = "log_cosh"

    def elementwise(self, params, error, xp):
        absolute = xp.abs(error)
        return absolute + xp.log1p(xp.exp(-2.0 * absolute)) - LOG_2
