"""`rmse`: root mean squared error."""
import numpy as np

from polytask.compiler.metrics import METRICS, Metric
from polytask.compiler.metrics._pair import pair as _pair


@METRICS.register("rmse")
class Rmse(Metric):
    higher_is_better = False

    def __call__(self, labels, predictions):
        y, p = _pair(self, labels, predictions)
        return float(np.sqrt(np.mean((p - y) ** 2)))
