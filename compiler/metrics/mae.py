"""`mae`: mean absolute error."""

from polytask.compiler.metrics._pair import RegressionMetric
from polytask.spec.registry import METRICS


@METRICS.register
class Mae(RegressionMetric):
    """Mean absolute error."""

    name = "mae"

    def __call__(self, labels, predictions):
        import numpy as np

        y, p = self.pair(labels, predictions)
        return float(np.mean(np.abs(p - y)))
