"""`mse`: mean squared error."""

from polytask.compiler.metrics._pair import RegressionMetric
from polytask.spec.registry import METRICS


@METRICS.register
class Mse(RegressionMetric):
    """Mean squared error."""

    name = "mse"

    def __call__(self, labels, predictions):
        import numpy as np

        y, p = self.pair(labels, predictions)
        return float(np.mean((p - y) ** 2))
