"""Metrics: one module per `metrics:` name; computed in NumPy from served predictions.

A metric descriptor declares `name`, `measures` (`classification` or `regression`: the
losses it fits), `higher_is_better` (early stopping's default direction), an optional
`problem` (a finer plan-time fit check, e.g. auc needs two classes), and `__call__`: the
value from the encoded labels (float32 [n, width], missing rows already removed) and the
dict a task's serving signature returns (`probabilities`/`class`, `probability`, or
`prediction`), so training-time evaluation and `polytask evaluate` on a SavedModel agree.
"""
from __future__ import annotations

from typing import ClassVar, Optional

from polytask.errors import PolytaskError
from polytask.spec.registry import METRICS, Concept


class Metric(Concept):
    """Base of every metric descriptor."""

    measures: ClassVar[str] = "classification"  # or "regression"
    higher_is_better: ClassVar[bool] = True

    def problem(self, loss, loss_params, column) -> Optional[tuple[str, Optional[str]]]:
        """(message, hint) when this metric does not fit a task with this loss and target column.

        `column` may be None (not known). Called only when `measures` matches the loss.
        """
        return None

    def __call__(self, labels, predictions: dict) -> float:
        raise NotImplementedError

    @staticmethod
    def need(predictions: dict, key: str, metric: str):
        import numpy as np

        if key not in predictions:
            raise PolytaskError(f"metric {metric} does not apply to this task's loss",
                                hint="accuracy/auc fit classification losses; mse/mae/rmse/r2 fit regression")
        return np.asarray(predictions[key])


def compute(names, labels, predictions: dict) -> dict[str, float]:
    return {name: float(METRICS.get(name)(labels, predictions)) for name in names}
