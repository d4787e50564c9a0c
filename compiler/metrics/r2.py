"""`r2`: coefficient of determination (1 - SS_res / SS_tot), averaged over target dimensions."""
import numpy as np

from polytask.compiler.metrics import METRICS, Metric
from polytask.compiler.metrics._pair import pair as _pair


@METRICS.register("r2")
class R2(Metric):
    def __call__(self, labels, predictions):
        y, p = _pair(self, labels, predictions)
        residual = np.sum((y - p) ** 2, axis=0)
        total = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        return float(np.mean(1.0 - residual / np.maximum(total, 1e-12)))
