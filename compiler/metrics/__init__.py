"""Metrics: one module per `metrics:` name; computed in NumPy from served predictions.

A metric sees the encoded labels (float32 [n, width], missing rows already removed) and the
dict a task's serving signature returns (`probabilities`/`class`, `probability`, or
`prediction`), so training-time evaluation and `polytask evaluate` on a SavedModel agree.
"""
from __future__ import annotations

import numpy as np

from polytask.compiler.registry import Registry
from polytask.errors import PolytaskError


class Metric:
    name = ""
    higher_is_better = True

    def __call__(self, labels: np.ndarray, predictions: dict) -> float:
        raise NotImplementedError

    @staticmethod
    def need(predictions: dict, key: str, metric: str):
        if key not in predictions:
            raise PolytaskError(f"metric {metric} does not apply to this task's loss",
                                hint="accuracy/auc fit classification losses; mse/mae/rmse/r2 fit regression")
        return np.asarray(predictions[key])


METRICS: Registry[Metric] = Registry("metric", __name__)


def compute(names, labels: np.ndarray, predictions: dict) -> dict[str, float]:
    return {name: float(METRICS.get(name)(labels, predictions)) for name in names}
