"""`r2`: coefficient of determination (1 - SS_res / SS_tot), averaged over target dimensions."""

from polytask.compiler.metrics._pair import RegressionMetric
from polytask.spec.registry import METRICS


@METRICS.register
class R2(RegressionMetric):
    """Coefficient of determination, averaged over target dimensions."""

    name = "r2"
    higher_is_better = True

    def __call__(self, labels, predictions):
        import numpy as np

        y, p = self.pair(labels, predictions)
        residual = np.sum((y - p) ** 2, axis=0)
        total = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        return float(np.mean(1.0 - residual / np.maximum(total, 1e-12)))
