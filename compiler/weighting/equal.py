"""`equal`: no reweighting; L = sum_i w_i L_i with the tasks' declared weights (default 1)."""
from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS


@WEIGHTINGS.register
class Equal(Transform):
    """No reweighting: L = sum_i w_i L_i with the tasks' declared weights."""

    name = "equal"
    multi_task = False
    reweights = False
