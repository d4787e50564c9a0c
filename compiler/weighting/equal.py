"""`equal`: no reweighting; L = sum_i w_i L_i with the tasks' declared weights (default 1)."""
from polytask.compiler.weighting import TRANSFORMS, Transform


@TRANSFORMS.register("equal")
class Equal(Transform):
    pass
