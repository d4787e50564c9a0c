"""`top5_accuracy`: fraction of examples whose label is among the 5 most probable classes."""
import numpy as np

from polytask.compiler.metrics import METRICS, Metric


@METRICS.register("top5_accuracy")
class Top5Accuracy(Metric):
    def __call__(self, labels, predictions):
        probabilities = self.need(predictions, "probabilities", self.name)
        top = np.argsort(-probabilities, axis=1)[:, :5]
        return float(np.mean((top == labels[:, :1].astype(np.int64)).any(axis=1)))
