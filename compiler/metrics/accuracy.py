"""`accuracy`: fraction of examples whose predicted class is the label."""

from polytask.compiler.metrics import Metric
from polytask.spec.registry import METRICS


@METRICS.register
class Accuracy(Metric):
    """Fraction of examples whose predicted class is the label."""

    name = "accuracy"

    def __call__(self, labels, predictions):
        import numpy as np

        predicted = self.need(predictions, "class", self.name)
        return float(np.mean(predicted == labels[:, 0].astype(np.int64)))
