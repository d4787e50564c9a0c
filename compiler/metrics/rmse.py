"""`rmse`: root mean squared error."""

from polytask.compiler.metrics._pair import RegressionMetric
from polytask.spec.registry import METRICS


@METRICS.register
class Rmse(RegressionMetric):
    """Root mean squared error."""

    name = "rmse"

    def __call__(self, labels, predictions):
        import numpy as np

        y, p = self.pair(labels, predictions)
        return float(np.sqrt(np.mean((p - y) ** 2)))
